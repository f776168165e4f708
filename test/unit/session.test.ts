/**
 * One client session (src/server/connection.ts) on its own: a real `ws` socket over
 * loopback, the real hub, auth, admission and metrics, no gateway or HTTP app in between,
 * and a manual clock, so the tests where time is the subject (auth timeout, token expiry,
 * the ping deadline, the close grace) move time instead of waiting for it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { Admission } from '../../src/server/admission.js';
import { Authenticator } from '../../src/server/auth.js';
import { MemoryBackplane } from '../../src/server/backplane/memory.js';
import { loadConfig, type Config } from '../../src/server/config.js';
import { Connection, type ConnectionContext } from '../../src/server/connection.js';
import { Hub } from '../../src/server/hub.js';
import { createLogger, LogLimiter } from '../../src/server/logging.js';
import { Metrics } from '../../src/server/metrics.js';
import { KeyedBuckets } from '../../src/server/token-bucket.js';
import { TestClient } from '../support/client.js';
import { ManualClock } from '../support/clock.js';
import { eventually } from '../support/eventually.js';
import { JWT_SECRET, signToken } from '../support/gateway.js';
import { WebSocketTransport } from '../../src/server/transport.js';

interface Harness {
  clock: ManualClock;
  config: Config;
  metrics: Metrics;
  /** The sessions the server side holds, in the order they connected. */
  sessions: Connection[];
  /** Close codes reported by onClosed, in order. */
  closed: number[];
  connect(): Promise<TestClient>;
  authed(token?: string): Promise<TestClient>;
}

const servers: Server[] = [];
const clients: TestClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  await Promise.all(
    servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))),
  );
});

async function harness(env: Record<string, string> = {}): Promise<Harness> {
  const clock = new ManualClock();
  const config = loadConfig({
    ARCHON_SERVER_ID: 'unit-1',
    ARCHON_JWT_SECRET: JWT_SECRET,
    WEBSOCKET_AUTH_TIMEOUT: '5',
    ...env,
  });
  const sessions: Connection[] = [];
  const live = new Set<Connection>();
  const closed: number[] = [];
  const log = createLogger(
    { level: 'silent', server: config.serverId },
    new Writable({ write: (_c, _e, done) => done() }),
  );
  const admission = new Admission<Connection>(config);
  const metrics = new Metrics(config.serverId, {
    active: () => live.size,
    sse: () => 0,
    unauthenticated: () => admission.unauthenticatedCount,
    queueDepth: () => 0,
    backplaneUp: () => true,
    alerts: () => Promise.resolve({ unacked: 0, oldestSeconds: 0 }),
  });
  const backplane = new MemoryBackplane({
    streamSize: config.historySize,
    streamTtlMs: config.historyTtlMs,
    alertSize: config.alertHistorySize,
    alertTtlMs: config.alertHistoryTtlMs,
  });
  const ctx: ConnectionContext = {
    config,
    auth: new Authenticator(config),
    hub: new Hub(backplane, live, metrics, log),
    metrics,
    log,
    noisyLog: new LogLimiter(log),
    admission,
    replayBudgets: new KeyedBuckets(
      config.replayBytesPerMinute,
      config.replayBytesPerMinute / 60,
      100,
    ),
    onClosed: (conn, code) => {
      live.delete(conn);
      closed.push(code);
    },
    clock,
  };
  const wss = new WebSocketServer({ noServer: true, handleProtocols: () => 'archon.v1' });
  const server = createServer();
  server.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => {
      const conn = new Connection(new WebSocketTransport(ws, socket), '127.0.0.1', ctx);
      admission.opened(conn);
      live.add(conn);
      sessions.push(conn);
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/ws`;
  const connect = async () => {
    const c = new TestClient(url);
    clients.push(c);
    await c.opened;
    await eventually(() => sessions.length >= clients.length, 'the session to exist');
    return c;
  };
  return {
    clock,
    config,
    metrics,
    sessions,
    closed,
    connect,
    async authed(token) {
      const c = await connect();
      c.send({ op: 'hello', token: token ?? (await signToken()), client: 'unit/1.0' });
      await c.type('welcome');
      return c;
    },
  };
}

describe('session', () => {
  it('closes a socket that sends no hello when WEBSOCKET_AUTH_TIMEOUT passes, not before', async () => {
    const h = await harness();
    const c = await h.connect();
    h.clock.advance(4_999);
    expect(h.sessions[0]?.state).toBe('authenticating');
    h.clock.advance(1);
    expect(await c.type('error')).toMatchObject({ code: 'auth_timeout' });
    expect((await c.closed).code).toBe(4001);
    await eventually(() => h.closed.length === 1, 'onClosed');
    expect(h.closed).toEqual([4001]);
    // Every timer of the session went with it.
    expect(h.clock.pending).toBe(0);
  });

  it('keeps an authenticated session past the auth timeout, holding no timer', async () => {
    const h = await harness();
    const c = await h.authed();
    expect(h.clock.pending).toBe(0);
    h.clock.advance(60_000);
    c.send({ op: 'ping' });
    expect(await c.type('pong')).toEqual({ type: 'pong' });
    expect(h.sessions[0]?.state).toBe('open');
  });

  it('closes with token_expired when the token expires, at its expiry and not before', async () => {
    const h = await harness();
    const exp = Math.floor(h.clock.now() / 1000) + 120;
    const c = await h.authed(await signToken({ exp }));
    const s = h.sessions[0] as Connection;
    // No timer waits for it: the sweep (check) judges expiry with the others.
    expect(h.clock.pending).toBe(0);
    h.clock.advance(exp * 1000 - h.clock.now() - 1);
    s.check(h.clock.now());
    expect(s.state).toBe('open');
    h.clock.advance(1);
    s.check(h.clock.now());
    expect(await c.type('error')).toMatchObject({ code: 'token_expired' });
    expect((await c.closed).code).toBe(4001);
  });

  it('pings an idle session each interval and closes it when no pong comes within the timeout', async () => {
    const h = await harness({ WEBSOCKET_PING_INTERVAL: '30', WEBSOCKET_PING_TIMEOUT: '10' });
    const c = await h.authed();
    const s = h.sessions[0] as Connection;
    s.check(h.clock.now());
    expect(c.messages.filter((m) => m.type === 'ping')).toHaveLength(0);
    h.clock.advance(30_000);
    s.check(h.clock.now());
    await c.type('ping');
    // The client stays silent: it is closed once more than the ping timeout has passed
    // since the first unanswered ping.
    h.clock.advance(10_000);
    s.check(h.clock.now());
    expect(s.state).toBe('open');
    h.clock.advance(1);
    s.check(h.clock.now());
    expect(await c.type('error')).toMatchObject({ code: 'ping_timeout' });
    expect((await c.closed).code).toBe(4009);
  });

  it('a pong, or any message, keeps the session alive past the ping deadline', async () => {
    const h = await harness({ WEBSOCKET_PING_INTERVAL: '30', WEBSOCKET_PING_TIMEOUT: '10' });
    const c = await h.authed();
    const s = h.sessions[0] as Connection;
    h.clock.advance(30_000);
    s.check(h.clock.now());
    await c.type('ping');
    c.send({ op: 'pong' });
    await eventually(() => s.awaitingPongSince === null, 'the pong to be read');
    h.clock.advance(15_000);
    s.check(h.clock.now());
    expect(s.state).toBe('open');
  });

  it('cuts a peer that never finishes the close handshake after the grace period', async () => {
    const h = await harness();
    const c = await h.authed();
    const s = h.sessions[0] as Connection;
    // The client stops reading: its socket will not answer our close frame.
    c.ws.pause();
    s.close(4010, 'operator cleanup');
    h.clock.advance(2_999);
    expect(h.closed).toEqual([]);
    h.clock.advance(1);
    await eventually(() => h.closed.length === 1, 'the socket to be cut');
    expect(h.closed).toEqual([4010]);
  });

  it('closes a session whose first message is not hello', async () => {
    const h = await harness();
    const c = await h.connect();
    c.send({ op: 'subscribe', id: 1, channel: 'signals' });
    expect(await c.type('error')).toMatchObject({ code: 'not_authenticated' });
    expect((await c.closed).code).toBe(4001);
  });

  it('answers every op in arrival order, errors included, without a gateway in between', async () => {
    const h = await harness();
    const c = await h.connect();
    c.send({ op: 'hello', token: await signToken(), client: 'unit/1.0' });
    c.send({ op: 'subscribe', id: 1, channel: 'positions:OTHER' });
    c.send({ op: 'subscribe', id: 2, channel: 'nope' });
    c.send({ op: 'subscribe', id: 3, channel: 'signals' });
    c.send({ op: 'ping' });
    await c.type('pong');
    expect(c.messages.map((m) => [m.type, m.code ?? m.id ?? null])).toEqual([
      ['welcome', null],
      ['error', 'forbidden'],
      ['error', 'unknown_channel'],
      ['subscribed', 3],
      ['pong', null],
    ]);
    expect(h.sessions[0]?.info('unit-1')).toMatchObject({
      state: 'open',
      user_id: 'user-1',
      client_version: 'unit/1.0',
      channels: ['signals'],
    });
  });
});
