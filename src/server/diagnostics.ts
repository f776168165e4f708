/**
 * The two unauthenticated WebSocket endpoints operators use from RB-003:
 * `/api/v1/ws/test` (the `wscat -c` connectivity check: welcome naming the server, echo,
 * rate-limited, closed after a minute, or after `?hold=<seconds>`) and `/api/v1/ws/health`
 * (handshake, one health message, close).
 *
 * A test connection is silent: after the welcome it sends nothing but echoes, neither
 * `{"type":"ping"}` messages (those are for client connections) nor WebSocket ping frames.
 * That is what lets `archon-ws check-lb --idle` see a proxy's idle timeout, which the pings
 * of a client connection keep resetting.
 */
import { randomBytes } from 'node:crypto';
import type { WebSocket } from 'ws';
import {
  CloseCode,
  HEALTH_MAX_CONNECTIONS,
  TEST_CLOSE_REASONS,
  TEST_MAX_LONG_HOLDS,
  type HealthMessage,
  type TestWelcomeMessage,
  TEST_LIFETIME_S,
  TEST_MAX_HOLD_S,
} from '../protocol/index.js';
import { TokenBucket } from './token-bucket.js';
import type { UpgradeRefusal } from './admission.js';

export const TEST_MAX_ECHO_BYTES = 1024;
export const TEST_MESSAGES_PER_SECOND = 10;
export const TEST_LIFETIME_MS = TEST_LIFETIME_S * 1000;
export const TEST_MAX_CONNECTIONS = 100;
/** These endpoints need no token: a peer that never answers our close is cut after this
 * long instead of ws's 30 s, so unanswered closes cannot pile up sockets. */
export const DIAGNOSTIC_CLOSE_GRACE_MS = 1000;
// `?hold=` is bounded by TEST_MAX_HOLD_S: test connections are unauthenticated and capped
// per instance, and a bound keeps a few held ones from blocking the endpoint for long.

export interface TestOptions {
  /** How long the connection stays open after the handshake, ms. */
  readonly lifetimeMs: number;
  /** The ping interval and timeout of client connections (seconds), told to the tester so
   * it can say why live clients survive a proxy timeout that cuts a silent connection. */
  readonly pingInterval: number;
  readonly pingTimeout: number;
}

/**
 * Reads `?hold=<seconds>` of a test endpoint request target: the lifetime in ms (60 s
 * without it), or an error message for a 400. String work only: nothing here may throw on
 * a hostile target.
 */
export function testLifetime(target: string): { lifetimeMs: number } | { error: string } {
  const at = target.indexOf('?');
  if (at === -1) return { lifetimeMs: TEST_LIFETIME_MS };
  const values = new URLSearchParams(target.slice(at + 1)).getAll('hold');
  if (values.length === 0) return { lifetimeMs: TEST_LIFETIME_MS };
  const raw = values[0] ?? '';
  const seconds = Number(raw);
  if (values.length > 1 || !/^\d{1,4}$/.test(raw) || seconds < 1 || seconds > TEST_MAX_HOLD_S)
    return {
      error: `hold must be a whole number of seconds from 1 to ${TEST_MAX_HOLD_S} (got ${JSON.stringify(values.join(','))})`,
    };
  return { lifetimeMs: seconds * 1000 };
}

export function serveTestConnection(ws: WebSocket, server: string, options: TestOptions): void {
  const { lifetimeMs } = options;
  const seconds = lifetimeMs / 1000;
  const limiter = new TokenBucket(TEST_MESSAGES_PER_SECOND, TEST_MESSAGES_PER_SECOND, Date.now());
  const timer = setTimeout(
    () => closeHard(ws, CloseCode.normal, `${TEST_CLOSE_REASONS.timeLimit} (${seconds} s)`),
    lifetimeMs,
  );
  timer.unref();
  ws.on('close', () => clearTimeout(timer));
  ws.on('error', () => ws.terminate());
  const welcome: TestWelcomeMessage = {
    type: 'welcome',
    endpoint: 'test',
    client_id: `t_${randomBytes(6).toString('hex')}`,
    server,
    closes_after: seconds,
    ping_interval: options.pingInterval,
    ping_timeout: options.pingTimeout,
    message: `connected to ${server}; text you send is echoed back; nothing else is sent; closes after ${seconds} s`,
  };
  ws.send(JSON.stringify(welcome));
  ws.on('message', (data, isBinary) => {
    try {
      echo(data, isBinary);
    } catch {
      ws.terminate(); // nothing a tester sends may throw out of this listener
    }
  });
  const echo = (data: WebSocket.RawData, isBinary: boolean): void => {
    if (ws.readyState !== ws.OPEN) return;
    if (!limiter.take(Date.now())) {
      closeHard(ws, CloseCode.policy, TEST_CLOSE_REASONS.rateLimited);
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
  };
}

export function serveHealthConnection(ws: WebSocket, server: string, draining: boolean): void {
  ws.on('error', () => ws.terminate());
  const health: HealthMessage = { type: 'health', status: draining ? 'draining' : 'ok', server };
  ws.send(JSON.stringify(health));
  closeHard(ws, CloseCode.normal, 'health check done');
}

/** Starts the close handshake and cuts the socket if the peer has not finished it in time. */
export function closeHard(ws: WebSocket, code: number, reason: string): void {
  ws.close(code, reason);
  const timer = setTimeout(() => ws.terminate(), DIAGNOSTIC_CLOSE_GRACE_MS);
  timer.unref();
  ws.once('close', () => clearTimeout(timer));
}

export type DiagnosticEndpoint = 'test' | 'health';

/**
 * The sockets of the two operator endpoints: counted against their caps (they need no
 * token), and closed on shutdown. The upgrade handler asks `admit`, then hands over.
 */
export class DiagnosticEndpoints {
  private readonly test = new Set<WebSocket>();
  /** Test connections held longer than the default minute (at most TEST_MAX_LONG_HOLDS). */
  private readonly longHolds = new Set<WebSocket>();
  private readonly health = new Set<WebSocket>();

  constructor(
    private readonly server: string,
    private readonly ping: { readonly pingInterval: number; readonly pingTimeout: number },
    private readonly draining: () => boolean,
  ) {}

  /** Null when one more may open, with `pending` handshakes under way; else why not. */
  admit(
    endpoint: DiagnosticEndpoint,
    pending: number,
    lifetimeMs: number,
  ): UpgradeRefusal | 'busy' | null {
    const [open, max] =
      endpoint === 'test'
        ? [this.test.size, TEST_MAX_CONNECTIONS]
        : [this.health.size, HEALTH_MAX_CONNECTIONS];
    if (open + pending >= max) return 'capacity';
    if (lifetimeMs > TEST_LIFETIME_MS && this.longHolds.size >= TEST_MAX_LONG_HOLDS) return 'busy';
    return null;
  }

  accept(endpoint: DiagnosticEndpoint, ws: WebSocket, lifetimeMs: number): void {
    const track = (set: Set<WebSocket>) => {
      set.add(ws);
      ws.on('close', () => set.delete(ws));
    };
    if (endpoint === 'health') {
      track(this.health);
      serveHealthConnection(ws, this.server, this.draining());
      return;
    }
    track(this.test);
    if (lifetimeMs > TEST_LIFETIME_MS) track(this.longHolds);
    serveTestConnection(ws, this.server, { lifetimeMs, ...this.ping });
  }

  /** Shutdown: test connections hold the HTTP server open (close waits for them). */
  closeAll(): void {
    for (const ws of this.test) ws.close(CloseCode.goingAway, TEST_CLOSE_REASONS.shutdown);
  }
}
