/**
 * Tools for the hostile-client suites (test/integration/hostile-*.test.ts): attack
 * payloads, raw handshakes a `ws` client cannot make (one that never answers a close, one
 * that reads the refusal's headers), and a bystander, a legitimate user who must keep being
 * served, every event in order and its pings answered, while an attack runs.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { expect } from 'vitest';
import type { HistoryAnswer } from '../../src/protocol/index.js';
import { seqs, type TestClient } from './client.js';
import { eventually } from './eventually.js';
import type { GatewayFixture } from './fixture.js';
import { publish, PUBLISH_TOKEN, type PublishAnswer, type TestGateway } from './gateway.js';

/** JSON text of arrays nested `depth` deep around `inner`: `[[…inner…]]`. */
export function nestedArrays(depth: number, inner = ''): string {
  return `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
}

/** 1, 2, …, n. */
export function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}

/** POSTs a raw body to /api/v1/publish with the publish token: JSON the helper cannot build. */
export async function publishRaw(
  tg: TestGateway,
  body: string,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${tg.http}/api/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${PUBLISH_TOKEN}` },
    body,
  });
  return { status: res.status, body: await res.json() };
}

/** GET /api/v1/history with a bearer token. */
export async function history(
  tg: TestGateway,
  query: string,
  token: string,
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${tg.http}/api/v1/history?${query}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

/** The events of a channel as GET /api/v1/history answers them (status 200 checked). */
export async function storedSeqs(tg: TestGateway, channel: string, token: string) {
  const res = await history(tg, `channel=${channel}&since_seq=0`, token);
  expect(res.status).toBe(200);
  return (res.body as HistoryAnswer).events.map((e) => e.seq);
}

/** The answer to a raw upgrade request: the status line and headers, and for a 101 the
 * open socket, which this side never writes to again (it never answers a close). */
export interface RawUpgrade {
  readonly status: number;
  readonly headers: Record<string, string>;
  /** The body of a refusal (empty for a 101). */
  readonly body: string;
  readonly socket: Socket;
  /** Settles when the socket is closed, by either side. */
  readonly closed: Promise<void>;
  /** Everything received after the head (WebSocket frames, bytes as latin1 text). */
  received(): string;
}

/**
 * Sends a WebSocket upgrade request over a plain TCP socket and resolves with the answer's
 * head; a refusal resolves once its body has arrived and the server closed the socket.
 */
export function rawUpgrade(
  tg: TestGateway,
  path: string,
  options: { headers?: Record<string, string>; localAddress?: string; protocol?: string } = {},
): Promise<RawUpgrade> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port: tg.port,
      ...(options.localAddress !== undefined && { localAddress: options.localAddress }),
    });
    const closed = new Promise<void>((done) => socket.once('close', () => done()));
    const headers: Record<string, string> = {
      Host: `127.0.0.1:${tg.port}`,
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      ...(options.protocol !== undefined && { 'Sec-WebSocket-Protocol': options.protocol }),
      ...options.headers,
    };
    let received = Buffer.alloc(0);
    let settled = false;
    socket.on('error', (err) => {
      if (!settled) reject(err);
    });
    socket.on('connect', () => {
      const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
      socket.write(`GET ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`);
    });
    const after = (): string => {
      const end = received.indexOf('\r\n\r\n');
      return end === -1 ? '' : received.subarray(end + 4).toString('latin1');
    };
    const head = (): { status: number; headers: Record<string, string>; rest: string } | null => {
      const end = received.indexOf('\r\n\r\n');
      if (end === -1) return null;
      const [statusLine = '', ...headerLines] = received.subarray(0, end).toString().split('\r\n');
      const parsed: Record<string, string> = {};
      for (const line of headerLines) {
        const at = line.indexOf(':');
        parsed[line.slice(0, at).trim().toLowerCase()] = line.slice(at + 1).trim();
      }
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
      return { status, headers: parsed, rest: received.subarray(end + 4).toString() };
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const answer = head();
      if (settled || answer?.status !== 101) return;
      settled = true;
      resolve({ status: 101, headers: answer.headers, body: '', socket, closed, received: after });
    });
    socket.once('close', () => {
      if (settled) return;
      settled = true;
      const answer = head();
      if (answer === null) reject(new Error('the server closed the socket without an answer'));
      else resolve({ ...answer, body: answer.rest, socket, closed, received: after });
    });
  });
}

/** A legitimate user (its own `sub`) subscribed to `signals` before the attack starts. */
export async function bystander(gw: GatewayFixture, sub = 'bystander'): Promise<TestClient> {
  const c = await gw.authed({ sub });
  expect(await c.subscribe('signals')).toMatchObject({ type: 'subscribed', channel: 'signals' });
  return c;
}

/** Publishes `count` signals, one request each, numbered from `from` + 1 in `data.n`. */
export async function publishSignals(tg: TestGateway, count: number, from = 0): Promise<void> {
  for (let i = 1; i <= count; i++) {
    const res = await publish(tg, { channel: 'signals', data: { n: from + i } });
    expect(res.status).toBe(200);
    expect((res.body as PublishAnswer).results[0]?.seq).toBe(from + i);
  }
}

/**
 * What the bystander must get while an attack runs: `count` signals published one at a
 * time (numbered from `from` + 1), and in their middle a `ping` op answered with `pong`.
 */
export async function serveBystander(
  tg: TestGateway,
  c: TestClient,
  count: number,
  from = 0,
): Promise<void> {
  const half = Math.floor(count / 2);
  await publishSignals(tg, half, from);
  c.send({ op: 'ping' });
  await c.type('pong', 10_000);
  await publishSignals(tg, count - half, from + half);
}

/** The bystander received exactly the signals 1..n, in order: no gap, no duplicate. */
export async function expectEverySignal(c: TestClient, n: number): Promise<void> {
  await eventually(() => c.events('signals').length >= n, `${n} signals`, { timeoutMs: 10_000 });
  expect(seqs(c.events('signals'))).toEqual(oneTo(n));
  expect(c.events('signals').map((e) => (e.data as { n: number }).n)).toEqual(oneTo(n));
  expect(c.ws.readyState).toBe(c.ws.OPEN);
}
