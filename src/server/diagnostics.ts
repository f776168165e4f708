/**
 * The two unauthenticated WebSocket endpoints operators use from RB-003:
 * `/api/v1/ws/test` (the `wscat -c` connectivity check: welcome naming the server, echo,
 * rate-limited, closed after a minute) and `/api/v1/ws/health` (handshake, one health
 * message, close).
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import { CloseCode } from '../protocol/index.js';
import { RateLimiter } from './inbound.js';

export const TEST_MAX_ECHO_BYTES = 1024;
export const TEST_MESSAGES_PER_SECOND = 10;
export const TEST_LIFETIME_MS = 60_000;
export const TEST_MAX_CONNECTIONS = 100;

export function serveTestConnection(
  ws: WebSocket,
  server: string,
  lifetimeMs = TEST_LIFETIME_MS,
): void {
  const limiter = new RateLimiter(TEST_MESSAGES_PER_SECOND, Date.now());
  const timer = setTimeout(
    () => ws.close(CloseCode.normal, 'test connection time limit (60 s)'),
    lifetimeMs,
  );
  timer.unref();
  ws.on('close', () => clearTimeout(timer));
  ws.on('error', () => ws.terminate());
  ws.send(
    JSON.stringify({
      type: 'welcome',
      endpoint: 'test',
      client_id: `t_${randomBytes(6).toString('hex')}`,
      server,
      message: `connected to ${server}; text you send is echoed back; closes after ${lifetimeMs / 1000} s`,
    }),
  );
  ws.on('message', (data, isBinary) => {
    if (!limiter.take(Date.now())) {
      ws.close(CloseCode.policy, 'rate limited');
      return;
    }
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as Buffer);
    if (isBinary || bytes.length > TEST_MAX_ECHO_BYTES) {
      ws.send(
        JSON.stringify({
          type: 'error',
          code: 'bad_request',
          message: `only text up to ${TEST_MAX_ECHO_BYTES} bytes is echoed`,
        }),
      );
      return;
    }
    ws.send(bytes.toString('utf8'));
  });
}

export function serveHealthConnection(ws: WebSocket, server: string, draining: boolean): void {
  ws.on('error', () => ws.terminate());
  ws.send(JSON.stringify({ type: 'health', status: draining ? 'draining' : 'ok', server }));
  ws.close(CloseCode.normal, 'health check done');
}
