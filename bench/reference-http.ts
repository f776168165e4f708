/**
 * What the reference servers (bare-server.ts, socketio-server.ts) share: their settings from
 * the environment, the two HTTP routes the load generator uses, the two archon.v1 replies
 * they give (welcome, subscribed), and a bounded lifetime.
 *
 *   - GET /api/health → {"status":"ok"};
 *   - POST /api/v1/publish {"channel","key"?,"data"} or {"events":[…]} → publish(channel, data,
 *     key) for each → {results: [result, …]}.
 *
 * Env: PORT (required), HOST (default 127.0.0.1), BENCH_MAX_SECONDS (the server exits by
 * itself after that long; default 900), BENCH_PARENT_PID (it exits when that process is gone).
 */
import { Buffer } from 'node:buffer';
import http from 'node:http';
import process from 'node:process';
import { setInterval, setTimeout } from 'node:timers';
import type { SubscribeOp, SubscribedMessage, WelcomeMessage } from '../src/protocol/index.js';

/** What a publish answers, per event (as the gateway's results). */
export interface PublishResult {
  channel: string;
  seq: number;
  epoch: string;
}

/** PORT and HOST from the environment; exits with a message when PORT is not a port. */
export function settings(name: string): { port: number; host: string } {
  const port = Number(process.env.PORT);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    process.stderr.write(`${name}: set PORT to a port number\n`);
    process.exit(2);
  }
  return { port, host: process.env.HOST || '127.0.0.1' };
}

/** The `welcome` of the n-th client; `ping` in seconds, as the gateway says them. */
export function welcome(
  server: string,
  n: number,
  ping: { interval: number; timeout: number },
): WelcomeMessage {
  return {
    type: 'welcome',
    client_id: `${server}-${n}`,
    server,
    ping_interval: ping.interval,
    ping_timeout: ping.timeout,
    protocol: 1,
  };
}

/** The answer to a `subscribe` op: live from `seq`, nothing to replay. */
export function subscribed(server: string, op: SubscribeOp, seq: number): SubscribedMessage {
  return {
    type: 'subscribed',
    id: op.id,
    channel: op.channel,
    epoch: server,
    seq,
    recovered: true,
    replayed: 0,
  };
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** An HTTP server with the health and publish routes; other paths are 404 unless `skip` says
 * another handler (Socket.IO) answers them. */
export function referenceHttp(
  publish: (channel: string, data: unknown, key: string | null) => PublishResult,
  skip: (req: http.IncomingMessage) => boolean = () => false,
): http.Server {
  const server = http.createServer((req, res) => {
    if (skip(req)) return;
    if (req.method === 'GET' && req.url === '/api/health') {
      reply(res, 200, { status: 'ok' });
      return;
    }
    if (req.method === 'POST' && req.url === '/api/v1/publish') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        type Event = { channel?: unknown; key?: unknown; data?: unknown } | null;
        let body: (Event & { events?: unknown }) | null;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
        } catch {
          reply(res, 400, { error: 'bad_json' });
          return;
        }
        const events = (Array.isArray(body?.events) ? body.events : [body]) as Event[];
        const valid = (e: Event): e is { channel: string; key?: unknown; data: unknown } =>
          e !== null && typeof e === 'object' && typeof e.channel === 'string' && 'data' in e;
        if (events.length === 0 || !events.every(valid)) {
          reply(res, 400, { error: 'bad_request' });
          return;
        }
        reply(res, 200, {
          results: events.map((e) =>
            publish(e.channel, e.data, typeof e.key === 'string' ? e.key : null),
          ),
        });
      });
      return;
    }
    reply(res, 404, { error: 'not_found' });
  });
  server.keepAliveTimeout = 60_000;
  return server;
}

/** Listens, and bounds the server's life: `stop` on SIGTERM/SIGINT and when the benchmark
 * that started it is gone; exit after BENCH_MAX_SECONDS whatever happens. */
export function serve(
  name: string,
  server: http.Server,
  { port, host }: { port: number; host: string },
  stop: () => void,
): void {
  server.listen({ port, host, backlog: 4096 }, () => {
    process.stderr.write(`${name}: listening on http://${host}:${port}\n`);
  });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const maxSeconds = Number(process.env.BENCH_MAX_SECONDS || 900);
  setTimeout(() => {
    process.stderr.write(`${name}: BENCH_MAX_SECONDS=${maxSeconds} reached, exiting\n`);
    process.exit(3);
  }, maxSeconds * 1000).unref();
  const parent = Number(process.env.BENCH_PARENT_PID);
  if (parent > 0) {
    setInterval(() => {
      try {
        process.kill(parent, 0);
      } catch {
        stop();
      }
    }, 1000).unref();
  }
}
