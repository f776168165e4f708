/**
 * The HTTP streaming fallback (docs/protocol.md#http-streaming-fallback): the WebSocket's
 * messages as server-sent events, its admission and limits, ops by POST on any instance, and
 * resume by `Last-Event-ID` with the WebSocket's semantics.
 */
import { connect as netConnect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCursor } from '../../src/protocol/index.js';
import { useCluster } from '../support/cluster.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { admin, publish, signToken, type TestGateway } from '../support/gateway.js';
import { TestStream } from '../support/sse.js';

const streams: TestStream[] = [];
function tracked(stream: TestStream): TestStream {
  streams.push(stream);
  return stream;
}

async function openStream(
  g: TestGateway,
  options: Parameters<typeof TestStream.open>[1] = {},
): Promise<TestStream> {
  return tracked(await TestStream.open(g.http, options));
}

async function welcomed(
  g: TestGateway,
  query: Record<string, string> = {},
  claims: Parameters<typeof signToken>[0] = {},
  lastEventId?: string,
): Promise<TestStream> {
  const token = await signToken(claims);
  return tracked(
    await TestStream.welcomed(g.http, {
      token,
      query,
      ...(lastEventId !== undefined && { lastEventId }),
    }),
  );
}

function closeAll(): void {
  for (const s of streams.splice(0)) s.close();
}

describe('HTTP streaming fallback', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  // Registered after the fixture, so it runs before it: streams close before the gateway
  // waits for its connections to go.
  afterEach(closeAll);

  it('streams the welcome, the subscriptions of the request and live events, with the token in the Authorization header', async () => {
    const g = await gw.start();
    await publish(g, { channel: 'positions:ACC1', key: 'EURUSD', data: { qty: 1 } });
    const s = await welcomed(g, { channels: 'signals,positions:ACC1', client: 'test-sse/1' });
    expect(s.messages[0]).toMatchObject({ type: 'welcome', transport: 'sse', protocol: 1 });
    await s.next((m) => m.type === 'subscribed' && m.channel === 'signals');
    const snapshot = await s.type('snapshot');
    expect(snapshot).toMatchObject({
      channel: 'positions:ACC1',
      entries: [{ key: 'EURUSD', data: { qty: 1 } }],
    });
    await publish(g, { channel: 'signals', data: { n: 1 } });
    const event = await s.type('event');
    expect(event).toMatchObject({ channel: 'signals', seq: 1, data: { n: 1 } });
    closeAll();
    await eventually(() => g.gateway.connections.size === 0, 'the stream to close');
  });

  it('counts streams in the status answer, the connections list and the metrics by transport', async () => {
    const g = await gw.start();
    const s = await welcomed(g, { channels: 'signals', client: 'test-sse/1' });
    await s.type('subscribed');
    const ws = await gw.authed();
    const status = await admin(g, 'GET', '/websocket/status');
    expect(status.body).toMatchObject({ active_connections: 2, sse_connections: 1 });
    const list = (await admin(g, 'GET', '/websocket/connections')).body as Record<
      string,
      unknown
    >[];
    expect(list.map((c) => c.transport).sort()).toEqual(['sse', 'websocket']);
    expect(list.find((c) => c.transport === 'sse')).toMatchObject({
      client_id: s.clientId,
      client_version: 'test-sse/1',
      channels: ['signals'],
      state: 'open',
    });
    const metrics = await (await fetch(`${g.http}/metrics`)).text();
    expect(metrics).toMatch(/archon_websocket_connections_active\{[^}]*transport="sse"[^}]*\} 1/);
    expect(metrics).toMatch(
      /archon_websocket_connections_active\{[^}]*transport="websocket"[^}]*\} 1/,
    );
    expect(metrics).toMatch(/archon_websocket_connections_total\{[^}]*transport="sse"[^}]*\} 1/);
    ws.close();
    closeAll();
  });

  it('refuses a stream without a token, with a bad token or a bad cursor before it starts, with a clear error', async () => {
    const g = await gw.start();
    const none = await openStream(g);
    expect(none.status).toBe(401);
    expect(none.refusal?.error?.message).toMatch(/Authorization: Bearer/);
    const bad = await openStream(g, { token: 'not-a-jwt' });
    expect(bad.status).toBe(401);
    expect(bad.refusal?.error?.code).toBe('unauthorized');
    const token = await signToken();
    const cursor = await openStream(g, { token, lastEventId: 'signals@x' });
    expect(cursor.status).toBe(400);
    expect(cursor.refusal?.error?.message).toMatch(/Last-Event-ID: entry "signals@x"/);
    const many = await openStream(g, {
      token,
      query: { channels: Array.from({ length: 101 }, (_, i) => `signals:s${i}`).join(',') },
    });
    expect(many.status).toBe(400);
    expect(g.gateway.connections.size).toBe(0);
  });

  it('applies the origin list and the per-user limit to streams as to WebSockets', async () => {
    const g = await gw.start({
      WEBSOCKET_ALLOWED_ORIGINS: 'https://app.example',
      WEBSOCKET_MAX_CONNECTIONS_PER_USER: '1',
    });
    const token = await signToken();
    const foreign = await openStream(g, { token, headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.refusal?.error?.code).toBe('origin_not_allowed');
    const first = await welcomed(g);
    expect(first.status).toBe(200);
    const second = await openStream(g, { token, headers: { origin: 'https://app.example' } });
    expect(second.status).toBe(429);
    expect(second.refusal?.error?.code).toBe('user_connection_limit');
    closeAll();
  });

  it('takes ops by POST in order and answers them on the stream, as over a WebSocket', async () => {
    const g = await gw.start();
    const token = await signToken();
    const s = await welcomed(g);
    const answer = await s.post(
      [
        { op: 'subscribe', id: 1, channel: 'risk:ACC1' },
        { op: 'subscribe', id: 2, channel: 'positions:ACC9' },
        { op: 'unsubscribe', id: 3, channel: 'risk:ACC1' },
        { op: 'ping' },
      ],
      token,
    );
    expect(answer).toEqual({ status: 202, body: { accepted: 4 } });
    await s.type('pong');
    // As over a WebSocket, answers about a risk channel travel in the alert lane.
    expect(s.messages.slice(1).map((m) => [m.type, m.id])).toEqual([
      ['subscribed', 1],
      ['unsubscribed', 3],
      ['error', 2],
      ['pong', undefined],
    ]);
    expect(s.messages[3]).toMatchObject({ code: 'forbidden' });

    // Acknowledging a risk alert over the fallback.
    await s.post({ op: 'subscribe', id: 4, channel: 'risk:ACC1' }, token);
    const sub = await s.next((m) => m.id === 4);
    await publish(g, { channel: 'risk:ACC1', data: { level: 'high' } });
    const alert = await s.next((m) => m.type === 'event' && m.channel === 'risk:ACC1');
    await s.post(
      { op: 'ack', id: 5, channel: 'risk:ACC1', epoch: sub.epoch, seq: alert.seq },
      token,
    );
    expect(await s.next((m) => m.id === 5)).toMatchObject({ type: 'acked', by: 'user-1' });
    closeAll();
  });

  it('refuses a POST that is malformed, for another user or for no open stream, and accepts nothing of it', async () => {
    const g = await gw.start();
    const token = await signToken();
    const s = await welcomed(g);
    const malformed = await s.post(
      [{ op: 'subscribe', id: 1, channel: 'signals' }, { op: 'nope' }],
      token,
    );
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatchObject({ error: { code: 'bad_request' } });
    expect(String((malformed.body.error as { message: string }).message)).toMatch(
      /^op 1: unknown op/,
    );
    const hello = await s.post({ op: 'hello', token }, token);
    expect(hello.status).toBe(400);
    const notJson = await s.post('{"op":', token);
    expect(notJson.status).toBe(400);
    const tooMany = await s.post(
      Array.from({ length: 33 }, () => ({ op: 'ping' })),
      token,
    );
    expect(tooMany.status).toBe(400);
    const other = await s.post({ op: 'ping' }, await signToken({ sub: 'user-2' }));
    expect(other.status).toBe(403);
    const unknown = await s.post({ op: 'ping' }, token, 'c_0123456789abcdef');
    expect(unknown).toMatchObject({
      status: 404,
      body: { error: { code: 'sse_session_unknown' } },
    });
    const noToken = await fetch(`${g.http}/api/v1/sse/${s.clientId}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '[{"op":"ping"}]',
    });
    expect(noToken.status).toBe(401);
    // Nothing of the refused requests reached the session.
    await s.post({ op: 'ping' }, token);
    await s.type('pong');
    expect(s.messages.filter((m) => m.type === 'subscribed' || m.type === 'pong')).toHaveLength(1);
    closeAll();
  });

  it('resumes every channel from Last-Event-ID: the missed events replayed once, in order, then live', async () => {
    const g = await gw.start();
    const first = await welcomed(g, { channels: 'signals,risk:ACC1' });
    for (let i = 1; i <= 3; i++) await publish(g, { channel: 'signals', data: { i } });
    await publish(g, { channel: 'risk:ACC1', data: { level: 'low' } });
    await first.next((m) => m.type === 'event' && m.channel === 'signals' && m.seq === 3);
    await first.next((m) => m.type === 'event' && m.channel === 'risk:ACC1');
    const lastId = first.lastEventId as string;
    const cursor = parseCursor(lastId);
    if ('error' in cursor) throw new Error(cursor.error);
    expect([...cursor.cursor].map(([c, s]) => [c, s.seq])).toEqual([
      ['risk:ACC1', 1],
      ['signals', 3],
    ]);
    first.close();
    await eventually(() => g.gateway.connections.size === 0, 'the first stream to close');

    for (let i = 4; i <= 6; i++) await publish(g, { channel: 'signals', data: { i } });
    await publish(g, { channel: 'risk:ACC1', data: { level: 'high' } });

    const second = await welcomed(g, { channels: 'signals,risk:ACC1' }, {}, lastId);
    await second.next(
      (m) => m.type === 'subscribed' && m.channel === 'signals' && m.recovered === true,
    );
    await publish(g, { channel: 'signals', data: { i: 7 } });
    await second.next((m) => m.type === 'event' && m.channel === 'signals' && m.seq === 7);
    expect(second.events('signals').map((m) => m.seq)).toEqual([4, 5, 6, 7]);
    expect(second.events('risk:ACC1').map((m) => m.seq)).toEqual([2]);
    closeAll();
  });

  it('sends state updates as deltas to a stream that asked with deltas=1, and full values otherwise', async () => {
    const g = await gw.start();
    const position = { symbol: 'EURUSD', side: 'long', size: 10, price: 1.1, pnl: 0 };
    await publish(g, { channel: 'positions:ACC1', key: 'EURUSD', data: position });
    const withDeltas = await welcomed(g, { channels: 'positions:ACC1', deltas: '1' });
    const plain = await welcomed(g, { channels: 'positions:ACC1' });
    expect(withDeltas.messages[0]).toMatchObject({ type: 'welcome', deltas: true });
    expect(plain.messages[0]).not.toHaveProperty('deltas');
    await withDeltas.type('snapshot');
    await plain.type('snapshot');
    // The first update after a snapshot is full; the next one a patch on it.
    await publish(g, {
      channel: 'positions:ACC1',
      key: 'EURUSD',
      data: { ...position, price: 1.2 },
    });
    await publish(g, {
      channel: 'positions:ACC1',
      key: 'EURUSD',
      data: { ...position, price: 1.3 },
    });
    const first = await withDeltas.type('event');
    const second = await withDeltas.type('event');
    expect(first).not.toHaveProperty('base_seq');
    expect(second).toMatchObject({ base_seq: first.seq, data: { price: 1.3 } });
    expect(Object.keys(second.data as object)).toEqual(['price']);
    await plain.next((m) => m.type === 'event' && m.seq === second.seq);
    expect(plain.events('positions:ACC1').every((m) => !('base_seq' in m))).toBe(true);
    expect(
      await (
        await fetch(`${g.http}/api/v1/sse?deltas=yes`, {
          headers: { authorization: `Bearer ${await signToken()}` },
        })
      ).json(),
    ).toMatchObject({ error: { code: 'bad_request', message: 'deltas must be 1 or 0' } });
  });

  it('tells a stream resumed from an epoch it cannot replay recovered:false', async () => {
    const g = await gw.start();
    const s = await welcomed(g, { channels: 'signals', since: 'signals@gone:5' });
    expect(await s.type('subscribed')).toMatchObject({ channel: 'signals', recovered: false });
    closeAll();
  });

  it('writes a comment at least every ping interval and never expects a pong', async () => {
    const g = await gw.start({ WEBSOCKET_PING_INTERVAL: '1', WEBSOCKET_PING_TIMEOUT: '1' });
    const s = await welcomed(g);
    await eventually(() => s.comments >= 3, 'three heartbeats', { timeoutMs: 6000 });
    expect(s.messages.some((m) => m.type === 'ping')).toBe(false);
    expect(g.gateway.connections.size).toBe(1);
    closeAll();
  });

  it('ends the stream with a close message the client acts on when the gateway shuts down', async () => {
    const g = await gw.start();
    const s = await welcomed(g, { channels: 'signals' });
    await s.type('subscribed');
    await g.gateway.shutdown();
    await s.ended;
    expect(s.messages.at(-1)).toEqual({ type: 'close', code: 1012, reason: 'server restarting' });
  });

  it('closes a stream whose reader stopped, with a slow-consumer close, and never slows the others', async () => {
    const g = await gw.start({ WEBSOCKET_QUEUE_SIZE: '50', WEBSOCKET_BROADCAST_TIMEOUT: '2' });
    const token = await signToken();
    // A raw socket that sends the request and then reads nothing.
    const socket = netConnect(g.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    socket.write(
      `GET /api/v1/sse?channels=signals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    socket.pause();
    const healthy = await welcomed(g, { channels: 'signals' });
    await healthy.type('subscribed');
    await eventually(() => g.gateway.connections.size === 2, 'both streams open');
    const data = { pad: 'x'.repeat(8000) };
    let sent = 0;
    while (g.gateway.connections.size === 2 && sent < 3000) {
      await publish(g, {
        events: Array.from({ length: 20 }, () => ({ channel: 'signals', data })),
      });
      sent += 20;
    }
    await eventually(() => g.gateway.connections.size === 1, 'the stalled stream to be closed');
    expect(g.logs.some((l) => l.message === 'Slow consumer closed')).toBe(true);
    await healthy.next((m) => m.type === 'event' && m.seq === sent);
    expect(healthy.events('signals')).toHaveLength(sent);
    socket.destroy();
    closeAll();
  });
});

describe('HTTP streaming fallback in cluster mode', () => {
  const cluster = useCluster();
  afterEach(closeAll);

  it('accepts ops for a stream on any instance and answers them on the stream', async () => {
    const a = await cluster.instance('sse-a');
    const b = await cluster.instance('sse-b');
    const token = await signToken();
    const s = tracked(await TestStream.welcomed(a.http, { token }));
    const answer = await s.post(
      { op: 'subscribe', id: 9, channel: 'signals' },
      token,
      s.clientId,
      b.http,
    );
    expect(answer).toEqual({ status: 202, body: { accepted: 1 } });
    expect(await s.next((m) => m.id === 9)).toMatchObject({ type: 'subscribed' });
    await publish(b, { channel: 'signals', data: { via: 'b' } });
    expect(await s.type('event')).toMatchObject({ data: { via: 'b' } });

    const other = await s.post(
      { op: 'ping' },
      await signToken({ sub: 'user-2' }),
      s.clientId,
      b.http,
    );
    expect(other.status).toBe(403);
    s.close();
    await eventually(() => a.gateway.connections.size === 0, 'the stream to close');
    const gone = await s.post({ op: 'ping' }, token, s.clientId, b.http);
    expect(gone).toMatchObject({ status: 404, body: { error: { code: 'sse_session_unknown' } } });
    closeAll();
  });
});
