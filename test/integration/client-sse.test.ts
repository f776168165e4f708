/**
 * The SDK over the HTTP streaming fallback against a real gateway (docs/client.md#when-
 * websocket-cannot-get-through): `transport: 'sse'` does what the WebSocket does; `auto`
 * falls back when a proxy refuses the upgrade, goes SSE-first after two such fallbacks, and
 * moves back to a WebSocket the moment a probe gets through, with every event of a stream
 * published across the switch handed over once, in order.
 */
import { describe, expect, it } from 'vitest';
import type {
  ArchonClient,
  ChannelEvent,
  ConnectionState,
  DisconnectInfo,
  Transport,
  TransportChange,
} from '../../src/client/index.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { admin, publish, signToken, type TestGateway } from '../support/gateway.js';
import { useSdk } from '../support/sdk.js';
import { useUpgradeProxy, type UpgradeProxy } from '../support/upgrade-proxy.js';

/** Publishes n signals, numbered from `from` in their data; returns their seqs. */
async function signals(g: TestGateway, n: number, from = 0): Promise<number[]> {
  const res = await publish(g, {
    events: Array.from({ length: n }, (_, i) => ({ channel: 'signals', data: { n: from + i } })),
  });
  expect(res.status).toBe(200);
  return (res.body as { results: { seq: number }[] }).results.map((r) => r.seq);
}

/** Closes a client's session from the gateway's side with `code`, as an operator's cleanup
 * or a restart would (its close message ends the stream). */
function closeSession(g: TestGateway, clientId: string | undefined, code: number): void {
  for (const conn of g.gateway.connections) if (conn.id === clientId) conn.close(code, 'test');
}

function transports(client: ArchonClient): [Transport, TransportChange][] {
  const seen: [Transport, TransportChange][] = [];
  client.on('transport', (t, change) => seen.push([t, change]));
  return seen;
}

describe('client SDK over HTTP streaming (transport: sse)', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const sdk = useSdk({ transport: 'sse' });

  it('subscribes, receives events and snapshots, and acknowledges alerts as over a WebSocket', async () => {
    const g = await gw.start();
    const alert = await publish(g, { channel: 'risk:ACC1', data: { level: 'critical' } });
    const { seq: alertSeq, epoch } = (alert.body as { results: { seq: number; epoch: string }[] })
      .results[0] as { seq: number; epoch: string };
    await publish(g, { channel: 'positions:ACC1', key: 'EURUSD', data: { size: 1 } });
    const client = sdk(g);
    const changes = transports(client);
    const seen: ChannelEvent[] = [];
    const sub = client.subscribe('signals', (e) => seen.push(e));
    const store = client.positions<{ size: number }>('ACC1');
    const risk = client.subscribe('risk:ACC1');
    const waiting: number[][] = [];
    risk.on('unacked', (list) => waiting.push([...list.seqs]));
    await eventually(
      () => sub.state === 'live' && store.ready && risk.state === 'live',
      'every channel live',
    );
    expect(client.transport).toBe('sse');
    expect(changes).toEqual([['sse', { previous: null }]]);
    expect(store.get('EURUSD')).toEqual({ size: 1 });
    await eventually(() => waiting.length === 1, 'the unacked list');
    expect(waiting[0]).toEqual([alertSeq]);

    const seqs = await signals(g, 3);
    await publish(g, { channel: 'positions:ACC1', key: 'EURUSD', data: { size: 2 } });
    await eventually(() => seen.length === 3 && store.get('EURUSD')?.size === 2, 'live events');
    expect(seen.map((e) => [e.seq, e.source])).toEqual(seqs.map((s) => [s, 'live']));

    const ack = await client.ack('risk:ACC1', epoch, alertSeq);
    expect(ack).toMatchObject({ channel: 'risk:ACC1', seq: alertSeq, by: 'user-1' });

    const list = await admin(g, 'GET', '/websocket/connections');
    expect(list.body).toMatchObject([
      {
        client_id: client.welcome?.clientId,
        transport: 'sse',
        client_version: client.clientVersion,
      },
    ]);
  });

  it('asks for deltas over the stream and rebuilds full positions from them', async () => {
    const g = await gw.start();
    const base = { symbol: 'EURUSD', side: 'long', size: 10, price: 1.1, pnl: 0 };
    await publish(g, { channel: 'positions:ACC1', key: 'EURUSD', data: base });
    const client = sdk(g);
    const store = client.positions<typeof base>('ACC1');
    await eventually(() => store.ready, 'the snapshot');
    expect(client.welcome?.deltas).toBe(true);
    for (let i = 1; i <= 5; i++)
      await publish(g, {
        channel: 'positions:ACC1',
        key: 'EURUSD',
        data: { ...base, price: 1.1 + i / 100, pnl: i },
      });
    await eventually(() => store.get('EURUSD')?.pnl === 5, 'the last update');
    expect(store.get('EURUSD')).toEqual({ ...base, price: 1.1 + 5 / 100, pnl: 5 });
  });

  it('counts the stream heartbeat comments as heard: quiet ping intervals never make it stale', async () => {
    const g = await gw.start({ WEBSOCKET_PING_INTERVAL: '0.3', WEBSOCKET_PING_TIMEOUT: '0.4' });
    const client = sdk(g);
    await eventually(() => client.state === 'connected', 'connected');
    const id = client.welcome?.clientId;
    const states: ConnectionState[] = [];
    client.on('state', (s) => states.push(s));
    // The subject is that nothing happens: six ping intervals pass with nothing but comments,
    // while the SDK would call the stream stale after 0.5 s and dead after 0.7 s of silence.
    await new Promise((resolve) => setTimeout(resolve, 1800));
    expect(states).toEqual([]);
    expect(client.welcome?.clientId).toBe(id);
  });

  it('resumes with since after the gateway closes the stream with 4010, losing nothing', async () => {
    const g = await gw.start();
    const client = sdk(g);
    const closes: DisconnectInfo[] = [];
    client.on('disconnect', (d) => closes.push(d));
    const seen: number[] = [];
    const sub = client.subscribe('signals', (e) => seen.push(e.seq));
    await eventually(() => sub.state === 'live', 'live');
    const first = client.welcome?.clientId;
    await signals(g, 2);
    await eventually(() => seen.length === 2, 'two events');

    closeSession(g, first, 4010);
    await eventually(() => closes.length === 1, 'the close');
    expect(closes[0]).toEqual({ code: 4010, reason: 'test', action: 'reconnect' });
    await signals(g, 2); // while the SDK is away, or just back
    await eventually(
      () => client.state === 'connected' && client.welcome?.clientId !== first && seen.length === 4,
      'a new stream with everything',
    );
    expect(seen).toEqual([1, 2, 3, 4]);
    expect(client.transport).toBe('sse');
  });

  it('renews its token in place over the stream, and later POSTs carry the renewed token', async () => {
    const g = await gw.start();
    let issued = 0;
    const client = sdk(g, {
      token: () => {
        issued++;
        return signToken({ accounts: ['ACC1'], exp: Math.floor(Date.now() / 1000) + 3 });
      },
    });
    const refreshed: (number | null)[] = [];
    const closes: DisconnectInfo[] = [];
    client.on('refreshed', (r) => refreshed.push(r.expiresAt));
    client.on('disconnect', (d) => closes.push(d));
    const sub = client.subscribe('signals');
    await eventually(() => sub.state === 'live', 'live');
    const id = client.welcome?.clientId;
    // Two renewals: the first token has expired by the second.
    await eventually(() => refreshed.length === 2, 'two renewals', { timeoutMs: 10_000 });
    const risk = client.subscribe('risk:ACC1'); // a POST the first token could not sign
    await eventually(() => risk.state === 'live', 'a subscription after the renewals');
    expect(closes).toEqual([]);
    expect(client.welcome?.clientId).toBe(id);
    expect(issued).toBe(3);
  }, 20_000);

  it('reconnects with a fresh token after the gateway refuses the stream with 401', async () => {
    const g = await gw.start();
    let calls = 0;
    const client = sdk(g, {
      token: () => (++calls === 1 ? 'not-a-jwt' : signToken({ accounts: ['ACC1'] })),
    });
    const closes: DisconnectInfo[] = [];
    client.on('disconnect', (d) => closes.push(d));
    await eventually(() => client.state === 'connected', 'connected');
    expect(closes[0]).toMatchObject({ code: 4001, action: 'refresh-token' });
    expect(closes[0]?.reason).toMatch(/HTTP 401 unauthorized/);
    expect(calls).toBe(2);
  });
});

describe('client SDK: falling back to HTTP streaming and back (transport: auto)', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const proxy = useUpgradeProxy();
  // Registered last, so its clients close first.
  const sdk = useSdk();

  /** A client whose WebSocket and HTTP both go through a proxy refusing upgrades. */
  async function behindProxy(
    g: TestGateway,
    probeIntervalMs = 60_000,
  ): Promise<{ client: ArchonClient; p: UpgradeProxy }> {
    const p = await proxy(g.port);
    const client = sdk(g, {
      url: `${p.ws}/api/v1/ws`,
      httpUrl: p.http,
      probeIntervalMs,
    });
    return { client, p };
  }

  it('falls back to HTTP streaming at once when a proxy refuses the WebSocket upgrade', async () => {
    const g = await gw.start();
    const { client, p } = await behindProxy(g);
    const states: ConnectionState[] = [];
    client.on('state', (s) => states.push(s));
    const retries: unknown[] = [];
    client.on('retry', (r) => retries.push(r));
    const changes = transports(client);
    const seen: number[] = [];
    const sub = client.subscribe('signals', (e) => seen.push(e.seq));
    await eventually(() => sub.state === 'live', 'live');
    expect(client.transport).toBe('sse');
    expect(p.upgrades).toBe(1);
    expect(changes).toEqual([['sse', { previous: null }]]);
    expect(states).toEqual(['connected']); // straight from connecting: no backoff wait
    expect(retries).toEqual([]);
    await signals(g, 2);
    await eventually(() => seen.length === 2, 'events through the proxy');
    expect(seen).toEqual([1, 2]);
  });

  it('goes straight to HTTP streaming after two fallbacks in a row, and only probes WebSocket', async () => {
    const g = await gw.start();
    const { client, p } = await behindProxy(g);
    const closes: DisconnectInfo[] = [];
    client.on('disconnect', (d) => closes.push(d));
    await eventually(() => client.transport === 'sse', 'the first fallback');
    const kick = async (n: number) => {
      const id = client.welcome?.clientId;
      closeSession(g, id, 4010);
      await eventually(
        () => client.transport === 'sse' && client.welcome?.clientId !== id,
        `stream ${n}`,
      );
    };
    await kick(2);
    expect(p.upgrades).toBe(2); // WebSocket first again: one fallback is not a pattern
    await kick(3);
    expect(p.upgrades).toBe(2); // two fallbacks in a row: SSE first, no WebSocket tried
    await kick(4);
    expect(p.upgrades).toBe(2);
    expect(closes.map((c) => c.code)).toEqual([1006, 4010, 1006, 4010, 4010]);
  });

  it('moves back to WebSocket when a probe gets through, handing over every event once and in order', async () => {
    const g = await gw.start({ WEBSOCKET_HISTORY_SIZE: '5000' });
    const { client, p } = await behindProxy(g, 150);
    const changes = transports(client);
    const states: ConnectionState[] = [];
    const closes: DisconnectInfo[] = [];
    const seen: ChannelEvent<{ n: number }>[] = [];
    const sub = client.subscribe<{ n: number }>('signals', (e) => seen.push(e));
    const store = client.positions<{ size: number }>('ACC1');
    await eventually(() => sub.state === 'live' && store.ready, 'live over SSE');
    expect(client.transport).toBe('sse');
    client.on('state', (s) => states.push(s));
    client.on('disconnect', (d) => closes.push(d));
    const sseId = client.welcome?.clientId;

    // A publisher numbering its signals, running across the switch.
    let sent = 0;
    let switchedAt: number | null = null;
    const publisher = (async () => {
      // Bounded: a switch that never comes fails the assertions below, not the timeout.
      while (sent < 2000 && (switchedAt === null || sent < switchedAt + 50)) {
        await signals(g, 5, sent);
        await publish(g, { channel: 'positions:ACC1', key: 'EURUSD', data: { size: sent } });
        sent += 5;
        if (switchedAt === null && client.transport === 'websocket') switchedAt = sent;
        if (sent === 100) p.passUpgrades = true; // the network lets WebSockets through now
      }
    })();
    await publisher;
    await eventually(() => seen.length === sent, `all ${sent} events`, { timeoutMs: 10_000 });

    expect(changes).toEqual([
      ['sse', { previous: null }],
      ['websocket', { previous: 'sse' }],
    ]);
    expect(client.transport).toBe('websocket');
    expect(client.welcome?.clientId).not.toBe(sseId);
    expect(closes).toEqual([]); // no disconnect across the switch
    expect(states).toEqual([]); // and the client never left `connected`
    expect(seen.map((e) => e.data.n)).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect(seen.map((e) => e.seq)).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
    await eventually(() => store.get('EURUSD')?.size === sent - 5, 'the latest position');
    // The SSE session is gone from the gateway; only the WebSocket stays.
    await eventually(() => g.gateway.connections.size === 1, 'the stream closed');
    const list = await admin(g, 'GET', '/websocket/connections');
    expect(list.body).toMatchObject([
      { client_id: client.welcome?.clientId, transport: 'websocket' },
    ]);
  });

  it('stays on HTTP streaming without a word while probes are refused', async () => {
    const g = await gw.start();
    const { client, p } = await behindProxy(g, 50);
    const closes: DisconnectInfo[] = [];
    client.on('disconnect', (d) => closes.push(d));
    const errors: unknown[] = [];
    client.on('error', (e) => errors.push(e));
    await eventually(() => client.transport === 'sse', 'on SSE');
    const id = client.welcome?.clientId;
    await eventually(() => p.upgrades >= 4, 'three refused probes');
    expect(client.transport).toBe('sse');
    expect(client.state).toBe('connected');
    expect(client.welcome?.clientId).toBe(id);
    expect(closes).toEqual([{ code: 1006, reason: '', action: 'reconnect' }]); // the first try
    expect(errors).toEqual([]);
  });
});
