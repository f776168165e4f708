/**
 * The client SDK (archon-ws/client) against a real gateway: connecting, subscribing, state
 * stores, operator notices, refused subscriptions. The SDK runs on Node's global WebSocket.
 */
import { describe, expect, it } from 'vitest';
import {
  SDK_VERSION,
  type ChannelEvent,
  type ClientError,
  type ConnectionState,
  type StoreChange,
} from '../../src/client/index.js';
import { connections } from '../support/admin.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { useSdk } from '../support/sdk.js';
import { admin, publish, type TestGateway } from '../support/gateway.js';

interface Position {
  side: 'long' | 'short';
  size: number;
}

describe('client SDK: connecting and subscribing', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const sdk = useSdk();

  async function publishOk(g: TestGateway, body: unknown): Promise<void> {
    const res = await publish(g, body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
  }

  it('connects, subscribes and hands over the events of a channel in seq order', async () => {
    const g = await gw.start();
    const client = sdk(g);
    const states: ConnectionState[] = [client.state];
    client.on('state', (s) => states.push(s));
    const got: ChannelEvent<{ n: number }>[] = [];
    const all: ChannelEvent[] = [];
    client.on('event', (e) => all.push(e));
    const sub = client.subscribe<{ n: number }>('signals', (e) => got.push(e));
    expect(sub.state).toBe('subscribing');

    await eventually(() => sub.state === 'live', 'the subscription to go live');
    expect(states).toEqual(['connecting', 'connected']);
    expect(client.welcome).toMatchObject({ server: 'test-1', pingInterval: 30, pingTimeout: 10 });
    expect(sub.position).toEqual({ epoch: expect.any(String) as string, seq: 0 });

    await publishOk(g, { events: [1, 2, 3].map((n) => ({ channel: 'signals', data: { n } })) });
    await eventually(() => got.length === 3, 'three events');
    expect(got.map((e) => [e.seq, e.data.n, e.source])).toEqual([
      [1, 1, 'live'],
      [2, 2, 'live'],
      [3, 3, 'live'],
    ]);
    expect(got.every((e) => e.channel === 'signals' && e.epoch === sub.position?.epoch)).toBe(true);
    expect(all).toEqual(got);
    expect(sub.position?.seq).toBe(3);
  });

  it('sends its version in hello, after the name the application gives', async () => {
    const g = await gw.start();
    const client = sdk(g, { clientName: 'test-dashboard/2.0' });
    await eventually(() => client.state === 'connected', 'connected');
    const listed = await connections(g);
    expect(listed.map((c) => c.client_version)).toEqual([
      `test-dashboard/2.0 archon-ws-client/${SDK_VERSION}`,
    ]);
    expect(client.clientVersion).toBe(`test-dashboard/2.0 archon-ws-client/${SDK_VERSION}`);
  });

  it('keeps the positions of an account from the snapshot and keyed events; data:null deletes', async () => {
    const g = await gw.start();
    await publishOk(g, {
      events: [
        { channel: 'positions:ACC1', key: 'EURUSD', data: { side: 'long', size: 100 } },
        { channel: 'positions:ACC1', key: 'XAUUSD', data: { side: 'short', size: 5 } },
      ],
    });
    const client = sdk(g);
    const store = client.positions<Position>('ACC1');
    const changes: StoreChange<Position>[] = [];
    store.on('change', (c) => changes.push(c));
    await eventually(() => store.ready, 'the snapshot');
    expect(store.subscription.state).toBe('live');
    expect(Object.fromEntries(store.entries())).toEqual({
      EURUSD: { side: 'long', size: 100 },
      XAUUSD: { side: 'short', size: 5 },
    });

    await publishOk(g, {
      events: [
        { channel: 'positions:ACC1', key: 'EURUSD', data: { side: 'long', size: 150 } },
        { channel: 'positions:ACC1', key: 'XAUUSD', data: null },
        { channel: 'positions:ACC1', key: 'GBPUSD', data: { side: 'short', size: 7 } },
      ],
    });
    await eventually(() => changes.length === 4, 'three changes after the snapshot');
    expect(changes.map((c) => [c.kind, c.kind === 'snapshot' ? null : c.key])).toEqual([
      ['snapshot', null],
      ['set', 'EURUSD'],
      ['delete', 'XAUUSD'],
      ['set', 'GBPUSD'],
    ]);
    expect(changes[1]).toMatchObject({ previous: { size: 100 }, value: { size: 150 } });
    expect(store.size).toBe(2);
    expect(store.get('EURUSD')).toEqual({ side: 'long', size: 150 });
    expect(store.get('XAUUSD')).toBeUndefined();
    expect(client.positions('ACC1')).toBe(store);
  });

  it('marks a forbidden subscription failed and keeps the connection and the other channels', async () => {
    const g = await gw.start();
    const client = sdk(g);
    const errors: ClientError[] = [];
    client.on('error', (e) => errors.push(e));
    const denied = client.subscribe('positions:ACC9');
    const allowed = client.subscribe('signals');
    await eventually(() => denied.state === 'failed' && allowed.state === 'live', 'answers');
    expect(denied.error).toMatchObject({ code: 'forbidden', channel: 'positions:ACC9' });
    expect(errors).toEqual([expect.objectContaining({ code: 'forbidden' })]);
    expect(client.state).toBe('connected');

    const got: number[] = [];
    allowed.on('event', (e) => got.push(e.seq));
    await publishOk(g, { channel: 'signals', data: {} });
    await eventually(() => got.length === 1, 'an event');
  });

  it('hands over operator notices as system events', async () => {
    const g = await gw.start();
    const client = sdk(g);
    const notices: string[] = [];
    client.on('system', (n) => notices.push(n.message));
    await eventually(() => client.state === 'connected', 'connected');
    const res = await admin(g, 'POST', '/broadcast', {
      type: 'system',
      message: 'Please refresh your dashboard',
    });
    expect(res.status).toBe(200);
    await eventually(() => notices.length === 1, 'the notice');
    expect(notices).toEqual(['Please refresh your dashboard']);
  });

  it('stops the events of a channel once unsubscribed', async () => {
    const g = await gw.start();
    const client = sdk(g);
    const gone: number[] = [];
    const kept: number[] = [];
    const a = client.subscribe('signals:a', (e) => gone.push(e.seq));
    const b = client.subscribe('signals:b', (e) => kept.push(e.seq));
    await eventually(() => a.state === 'live' && b.state === 'live', 'both live');
    a.unsubscribe();
    expect(a.state).toBe('unsubscribed');
    // One connection delivers in order: once b's event is in, a's would have been too.
    await publishOk(g, { channel: 'signals:a', data: {} });
    await publishOk(g, { channel: 'signals:b', data: {} });
    await eventually(() => kept.length === 1, "b's event");
    expect(gone).toEqual([]);
  });
});

describe('client SDK: data age and staleness', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const sdk = useSdk();

  it('tells how old a channel’s data is, and that it is stale once the link is lost', async () => {
    const g = await gw.start();
    const client = sdk(g);
    const positions = client.positions('ACC1');
    const sub = positions.subscription;
    expect(sub.asOf).toBeNull();
    expect(sub.ageMs()).toBeNull();
    expect(sub.stale).toBe(true); // not live yet
    const beforeSnapshot = Date.now();
    await eventually(() => positions.ready, 'the snapshot');
    // A snapshot is current as of its arrival.
    expect(sub.asOf).toBeGreaterThanOrEqual(beforeSnapshot);
    expect(sub.stale).toBe(false);

    const res = await publish(g, { channel: 'positions:ACC1', key: 'EURUSD', data: { size: 1 } });
    expect(res.status).toBe(200);
    await eventually(() => positions.get('EURUSD') !== undefined, 'the update');
    // An event is as old as when the gateway accepted it (its ts).
    const accepted = sub.asOf as number;
    expect(accepted).toBeGreaterThanOrEqual(beforeSnapshot);
    expect(accepted).toBeLessThanOrEqual(Date.now());
    expect(sub.ageMs(accepted + 1500)).toBe(1500);

    // The gateway goes away: the data is kept but no longer confirmed.
    await g.stop();
    await eventually(() => sub.stale, 'the subscription to be stale');
    expect(client.state).not.toBe('connected');
    expect(sub.asOf).toBe(accepted);
    expect(sub.ageMs()).toBeGreaterThanOrEqual(0);
  });
});
