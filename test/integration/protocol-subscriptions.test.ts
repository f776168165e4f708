/**
 * Wire protocol v1, subscriptions (docs/protocol.md): who may join which channel, unknown
 * channels, unsubscribe, the system channel, and the state class (snapshot, keyed updates,
 * deletes).
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { Message } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { publish } from '../support/gateway.js';

// One gateway per test, for both groups below.
const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

beforeEach(async () => {
  await gw.start();
});

async function published(body: unknown): Promise<void> {
  const res = await publish(gw.tg, body);
  expect(res.status).toBe(200);
}

describe('protocol: subscriptions', () => {
  it('answers a subscribe to another account with forbidden and the request id, and keeps the connection open', async () => {
    const c = await gw.authed({ accounts: ['ACC1'] });
    const denied = await c.subscribe('positions:ACC9', undefined, 41);
    expect(denied).toMatchObject({ type: 'error', id: 41, code: 'forbidden' });
    const deniedRisk = await c.subscribe('risk:ACC9', undefined, 42);
    expect(deniedRisk).toMatchObject({ type: 'error', id: 42, code: 'forbidden' });

    expect(c.ws.readyState).toBe(c.ws.OPEN);
    const allowed = await c.subscribe('positions:ACC1', undefined, 43);
    expect(allowed).toMatchObject({ type: 'subscribed', id: 43, channel: 'positions:ACC1' });

    // Nothing published to the forbidden account reaches this client.
    await published({ channel: 'positions:ACC9', key: 'EURUSD', data: { qty: 9 } });
    await published({ channel: 'positions:ACC1', key: 'EURUSD', data: { qty: 1 } });
    await c.next((m) => m.type === 'event' && m.channel === 'positions:ACC1');
    expect(c.events('positions:ACC9')).toEqual([]);
  });

  it('lets a token with accounts ["*"] join any account', async () => {
    const c = await gw.authed({ accounts: ['*'] });
    expect(await c.subscribe('positions:ACC9', undefined, 1)).toMatchObject({
      type: 'subscribed',
      channel: 'positions:ACC9',
    });
    expect(await c.subscribe('risk:ANY-ACCOUNT.2', undefined, 2)).toMatchObject({
      type: 'subscribed',
      channel: 'risk:ANY-ACCOUNT.2',
    });
    await published({ channel: 'positions:ACC9', key: 'EURUSD', data: { qty: 9 } });
    expect(await c.next((m) => m.type === 'event')).toMatchObject({
      channel: 'positions:ACC9',
      key: 'EURUSD',
      data: { qty: 9 },
    });
  });

  it('answers a subscribe to an unknown channel with unknown_channel and keeps the connection open', async () => {
    const c = await gw.authed();
    const answer = await c.subscribe('orders:ACC1', undefined, 7);
    expect(answer).toMatchObject({ type: 'error', id: 7, code: 'unknown_channel' });
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect(await c.subscribe('signals', undefined, 8)).toMatchObject({
      type: 'subscribed',
      id: 8,
      channel: 'signals',
    });
  });

  it('answers unsubscribe with unsubscribed and delivers no more events of that channel', async () => {
    const c = await gw.authed();
    await c.subscribe('signals');
    await c.subscribe('signals:alpha');
    await published({ channel: 'signals', data: { n: 1 } });
    expect(await c.type('event')).toMatchObject({ channel: 'signals', seq: 1 });

    c.send({ op: 'unsubscribe', id: 9, channel: 'signals' });
    expect(await c.type('unsubscribed')).toMatchObject({
      type: 'unsubscribed',
      id: 9,
      channel: 'signals',
    });

    await published({ channel: 'signals', data: { n: 2 } });
    // A still-subscribed channel published afterwards marks when delivery has caught up.
    await published({ channel: 'signals:alpha', data: { sentinel: true } });
    await c.next((m) => m.type === 'event' && m.channel === 'signals:alpha');
    expect(c.events('signals').map((m) => m.seq)).toEqual([1]);
  });

  it('answers a subscribe to the system channel with subscribed', async () => {
    const c = await gw.authed();
    expect(await c.subscribe('system', undefined, 3)).toMatchObject({
      type: 'subscribed',
      id: 3,
      channel: 'system',
    });
    expect(c.ws.readyState).toBe(c.ws.OPEN);
  });
});

describe('protocol: state channels', () => {
  function entriesOf(snapshot: Message): { key: string; data: unknown }[] {
    const entries = snapshot.entries as { key: string; data: unknown }[];
    return [...entries].sort((a, b) => a.key.localeCompare(b.key));
  }

  it('sends subscribed and then a snapshot holding every key with the channel seq', async () => {
    await published({
      events: [
        { channel: 'positions:ACC1', key: 'EURUSD', data: { qty: 1 } },
        { channel: 'positions:ACC1', key: 'GBPUSD', data: { qty: 2 } },
        { channel: 'positions:ACC1', key: 'EURUSD', data: { qty: 3 } },
      ],
    });
    const c = await gw.authed();
    const subscribed = await c.subscribe('positions:ACC1', undefined, 5);
    expect(subscribed).toMatchObject({
      type: 'subscribed',
      id: 5,
      channel: 'positions:ACC1',
      seq: 3,
    });
    const snapshot = await c.type('snapshot');
    expect(snapshot).toMatchObject({
      type: 'snapshot',
      channel: 'positions:ACC1',
      seq: 3,
      epoch: subscribed.epoch,
    });
    expect(entriesOf(snapshot)).toEqual([
      { key: 'EURUSD', data: { qty: 3 } },
      { key: 'GBPUSD', data: { qty: 2 } },
    ]);
    // The snapshot comes right after its subscribed answer.
    expect(c.messages.indexOf(snapshot)).toBe(c.messages.indexOf(subscribed) + 1);
  });

  it('delivers later updates as events carrying their key and the next seq', async () => {
    await published({ channel: 'positions:ACC1', key: 'EURUSD', data: { qty: 1 } });
    const c = await gw.authed();
    await c.subscribe('positions:ACC1');
    await c.type('snapshot');

    await published({ channel: 'positions:ACC1', key: 'GBPUSD', data: { qty: 5 } });
    await published({ channel: 'positions:ACC1', key: 'EURUSD', data: { qty: 6 } });
    await c.next((m) => m.type === 'event' && m.seq === 3);
    expect(c.events('positions:ACC1')).toEqual([
      expect.objectContaining({
        seq: 2,
        key: 'GBPUSD',
        data: { qty: 5 },
        ts: expect.any(Number) as number,
      }),
      expect.objectContaining({
        seq: 3,
        key: 'EURUSD',
        data: { qty: 6 },
        ts: expect.any(Number) as number,
      }),
    ]);
  });

  it('deletes a key on data: null, so a new subscriber snapshot no longer holds it', async () => {
    await published({
      events: [
        { channel: 'positions:ACC1', key: 'EURUSD', data: { qty: 1 } },
        { channel: 'positions:ACC1', key: 'GBPUSD', data: { qty: 2 } },
      ],
    });
    const live = await gw.authed();
    await live.subscribe('positions:ACC1');
    expect(entriesOf(await live.type('snapshot')).map((e) => e.key)).toEqual(['EURUSD', 'GBPUSD']);

    await published({ channel: 'positions:ACC1', key: 'EURUSD', data: null });
    expect(await live.type('event')).toMatchObject({
      channel: 'positions:ACC1',
      seq: 3,
      key: 'EURUSD',
      data: null,
    });

    const late = await gw.authed();
    expect(await late.subscribe('positions:ACC1')).toMatchObject({ seq: 3 });
    const snapshot = await late.type('snapshot');
    expect(snapshot.seq).toBe(3);
    expect(entriesOf(snapshot)).toEqual([{ key: 'GBPUSD', data: { qty: 2 } }]);
  });
});

describe('subscription limit', () => {
  const gw = useGateway({ WEBSOCKET_MAX_SUBSCRIPTIONS: '2' });

  it('refuses a subscription beyond WEBSOCKET_MAX_SUBSCRIPTIONS with too_many_subscriptions and keeps the connection', async () => {
    await gw.start();
    const c = await gw.authed();
    expect(await c.subscribe('signals:a')).toMatchObject({ type: 'subscribed' });
    expect(await c.subscribe('signals:b')).toMatchObject({ type: 'subscribed' });
    expect(await c.subscribe('signals:c')).toMatchObject({
      type: 'error',
      code: 'too_many_subscriptions',
    });
    // Resubscribing to a channel it has is not a new subscription.
    expect(await c.subscribe('signals:a')).toMatchObject({ type: 'subscribed' });
    c.send({ op: 'unsubscribe', channel: 'signals:b' });
    await c.type('unsubscribed');
    expect(await c.subscribe('signals:c')).toMatchObject({ type: 'subscribed' });
  });
});
