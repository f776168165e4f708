/**
 * The client SDK recovers what it missed: resume with `since`, history reads when the server
 * could not replay, gaps when nothing can fill the hole, gateway restarts on the same port,
 * and token expiry. The network's `offline`/`online` events (an EventTarget here) hold the
 * SDK disconnected while the test publishes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  ArchonClient,
  type ChannelEvent,
  type ClientError,
  type ConnectionState,
  type DisconnectInfo,
  type Gap,
  type RetryInfo,
} from '../../src/client/index.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { useSdk } from '../support/sdk.js';
import { publish, signToken, startGateway, type TestGateway } from '../support/gateway.js';

type Seen = ChannelEvent | Gap;

describe('client SDK: recovery', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const extraGateways: TestGateway[] = [];
  afterEach(async () => {
    for (const g of extraGateways.splice(0)) await g.stop();
  });
  // Registered last, so its clients close first.
  const sdk = useSdk();

  /** Publishes n signals; returns their seqs. */
  async function signals(g: TestGateway, n: number, channel = 'signals'): Promise<number[]> {
    const res = await publish(g, {
      events: Array.from({ length: n }, () => ({ channel, data: {} })),
    });
    expect(res.status).toBe(200);
    return (res.body as { results: { seq: number }[] }).results.map((r) => r.seq);
  }

  /** Events and gaps of one channel, in the order the application saw them. */
  function record(client: ArchonClient, channel: string): Seen[] {
    const seen: Seen[] = [];
    client.on('event', (e) => {
      if (e.channel === channel) seen.push(e);
    });
    client.on('gap', (g) => {
      if (g.channel === channel) seen.push(g);
    });
    return seen;
  }

  function describeSeen(seen: Seen[]): string[] {
    return seen.map((s) =>
      'seq' in s
        ? `${s.seq} ${s.source}`
        : `gap ${s.reason} ${s.after.epoch}:${s.after.seq} → ${s.before.epoch}:${s.before.seq}`,
    );
  }

  /** Cuts the SDK's connection from the gateway side, as a lost network would. */
  async function dropConnection(g: TestGateway): Promise<void> {
    const [conn] = g.gateway.connections;
    if (!conn) throw new Error('no connection to drop');
    conn.terminate();
    await eventually(() => g.gateway.connections.size === 0, 'the connection to go');
  }

  it('resumes with since after a lost connection: what was published meanwhile is replayed, none twice', async () => {
    const g = await gw.start();
    const net = new EventTarget();
    const client = sdk(g, { network: net });
    const seen = record(client, 'signals');
    const retries: RetryInfo[] = [];
    client.on('retry', (r) => retries.push(r));
    const sub = client.subscribe('signals');
    await eventually(() => sub.state === 'live', 'live');
    await signals(g, 3);
    await eventually(() => seen.length === 3, 'three events');

    net.dispatchEvent(new Event('offline'));
    expect(client.state).toBe('stale');
    await dropConnection(g);
    await eventually(() => client.state === 'reconnecting', 'reconnecting');
    expect(client.nextRetryAt).toBeNull(); // offline: no retries until online
    expect(retries).toEqual([expect.objectContaining({ at: null, delayMs: null })]);
    expect(sub.state).toBe('subscribing');
    await signals(g, 4); // 4..7, missed
    expect(g.gateway.connections.size).toBe(0);

    net.dispatchEvent(new Event('online'));
    await eventually(() => seen.length === 7, 'the missed events');
    await signals(g, 1);
    await eventually(() => seen.length === 8, 'a live event');
    expect(describeSeen(seen)).toEqual([
      '1 live',
      '2 live',
      '3 live',
      '4 replay',
      '5 replay',
      '6 replay',
      '7 replay',
      '8 live',
    ]);
    expect(client.state).toBe('connected');
  });

  it('reads from history what a resume could not replay, and reports the trimmed part as a gap', async () => {
    const g = await gw.start({ WEBSOCKET_HISTORY_SIZE: '3' });
    const net = new EventTarget();
    const client = sdk(g, { network: net });
    const seen = record(client, 'signals');
    const sub = client.subscribe('signals');
    const states: string[] = [];
    sub.on('state', (s) => states.push(s));
    await eventually(() => sub.state === 'live', 'live');
    await signals(g, 2);
    await eventually(() => seen.length === 2, 'two events');
    const epoch = sub.position?.epoch;

    net.dispatchEvent(new Event('offline'));
    await dropConnection(g);
    await signals(g, 6); // 3..8; history keeps 6..8
    net.dispatchEvent(new Event('online'));
    await eventually(() => seen.length === 6, 'the gap and the events history still holds');
    await signals(g, 1);
    await eventually(() => seen.length === 7, 'a live event');

    expect(describeSeen(seen)).toEqual([
      '1 live',
      '2 live',
      `gap trimmed ${epoch}:2 → ${epoch}:6`,
      '6 history',
      '7 history',
      '8 history',
      '9 live',
    ]);
    expect(states).toEqual(['live', 'subscribing', 'recovering', 'live']);
    expect(sub.position).toEqual({ epoch, seq: 9 });
  });

  it('reconnects to a gateway restarted on the same port and resubscribes every channel', async () => {
    const g1 = await gw.start();
    const client = sdk(g1);
    const states: ConnectionState[] = [];
    client.on('state', (s) => states.push(s));
    const closes: DisconnectInfo[] = [];
    client.on('disconnect', (d) => closes.push(d));
    const seen = record(client, 'signals');
    const sub = client.subscribe('signals');
    const store = client.positions('ACC1');
    await eventually(() => sub.state === 'live' && store.ready, 'live');
    await publish(g1, { channel: 'positions:ACC1', key: 'EURUSD', data: { size: 1 } });
    await signals(g1, 2);
    await eventually(() => seen.length === 2 && store.size === 1, 'events');
    const firstEpoch = sub.position?.epoch;
    const firstClient = client.welcome?.clientId;

    states.length = 0;
    await g1.stop();
    await eventually(() => closes.length > 0, 'the close');
    expect(closes[0]).toMatchObject({ code: 1012, action: 'reconnect' });
    expect(client.state).toBe('reconnecting');
    const g2 = await startGateway({ PORT: String(g1.port), WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
    extraGateways.push(g2);

    await eventually(
      () =>
        client.state === 'connected' && sub.state === 'live' && store.subscription.state === 'live',
      'connected to the new gateway',
    );
    expect(client.welcome?.clientId).not.toBe(firstClient);
    expect(states).toEqual(['reconnecting', 'connected']);
    // The new gateway starts a new epoch with empty history: the rest of the old one is lost.
    const epoch = sub.position?.epoch;
    expect(epoch).not.toBe(firstEpoch);
    expect(describeSeen(seen)).toEqual([
      '1 live',
      '2 live',
      `gap epoch-changed ${firstEpoch}:2 → ${epoch}:1`,
    ]);
    expect(store.size).toBe(0); // the new snapshot replaced the old content

    await signals(g2, 1);
    await publish(g2, { channel: 'positions:ACC1', key: 'GBPUSD', data: { size: 2 } });
    await eventually(() => seen.length === 4 && store.size === 1, 'live events');
    expect(describeSeen(seen).at(-1)).toBe('1 live');
    expect(store.get('GBPUSD')).toEqual({ size: 2 });
  });

  it('after a restart, reads the new epoch from history before handing over live events', async () => {
    const g1 = await gw.start();
    const net = new EventTarget();
    const client = sdk(g1, { network: net });
    const seen = record(client, 'signals');
    const sub = client.subscribe('signals');
    await eventually(() => sub.state === 'live', 'live');
    await signals(g1, 2);
    await eventually(() => seen.length === 2, 'events');
    const firstEpoch = sub.position?.epoch;

    await g1.stop();
    net.dispatchEvent(new Event('offline'));
    const g2 = await startGateway({ PORT: String(g1.port), WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
    extraGateways.push(g2);
    await signals(g2, 3); // the new epoch's 1..3, published while the SDK is away
    net.dispatchEvent(new Event('online'));
    await eventually(() => seen.length === 6, 'the gap and the new epoch from history');
    await signals(g2, 1);
    await eventually(() => seen.length === 7, 'a live event');

    const epoch = sub.position?.epoch;
    expect(describeSeen(seen)).toEqual([
      '1 live',
      '2 live',
      `gap epoch-changed ${firstEpoch}:2 → ${epoch}:1`,
      '1 history',
      '2 history',
      '3 history',
      '4 live',
    ]);
  });

  it('gets a fresh token from the provider when the server closes an expired one (4001) and resumes', async () => {
    const g = await gw.start();
    let calls = 0;
    const client = sdk(g, {
      token: () => {
        calls++;
        // The first token expires in a second or two; the provider fails when the SDK asks
        // for a renewal ahead of expiry (docs/client.md), so the server closes it with 4001
        // at expiry; later tokens live an hour.
        if (calls === 2) throw new Error('identity provider down');
        return calls === 1
          ? signToken({ exp: Math.floor(Date.now() / 1000) + 2 })
          : signToken({ accounts: ['ACC1'] });
      },
    });
    const errors: ClientError[] = [];
    client.on('error', (e) => errors.push(e));
    const closes: DisconnectInfo[] = [];
    client.on('disconnect', (d) => closes.push(d));
    const seen = record(client, 'signals');
    const sub = client.subscribe('signals');
    await eventually(() => sub.state === 'live', 'live');
    await signals(g, 1);

    await eventually(() => closes.length === 1, 'the token to expire');
    expect(closes[0]).toMatchObject({ code: 4001, action: 'refresh-token' });
    expect(errors).toEqual([
      expect.objectContaining({ code: 'token_failed' }),
      expect.objectContaining({ code: 'token_expired' }),
    ]);
    await eventually(() => client.state === 'connected' && sub.state === 'live', 'reconnected');
    expect(calls).toBe(3);

    await signals(g, 1);
    await eventually(() => seen.length === 2, 'an event on the new connection');
    expect(describeSeen(seen)).toEqual(['1 live', '2 live']);
  });

  it('gives up on a token provider that hangs, reports token_failed and connects once it answers', async () => {
    const g = await gw.start();
    let calls = 0;
    const client = sdk(g, {
      tokenTimeoutMs: 300,
      // The first call never settles (an auth server that does not answer).
      token: () => (++calls === 1 ? new Promise<string>(() => {}) : signToken()),
    });
    const errors: ClientError[] = [];
    client.on('error', (e) => errors.push(e));
    await eventually(() => client.state === 'connected', 'connected after the retry');
    expect(calls).toBe(2);
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'token_failed',
        message: expect.stringMatching(/no answer within 300 ms/) as unknown,
      }),
    ]);
  });
});
