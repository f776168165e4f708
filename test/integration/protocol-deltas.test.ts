/**
 * State updates as JSON merge patches (docs/protocol.md#deltas), end to end with raw clients
 * on a real gateway: only a client that asked in `hello` gets them, each names the value it
 * patches (`base_seq`), and a value goes in full whenever the client may not hold that base:
 * the first update of a key, after a resubscribe, after a delete, and when the base was
 * conflated away in a slow reader's queue.
 */
import { describe, expect, it } from 'vitest';
import { applyMergePatch } from '../../src/protocol/index.js';
import { queueDepth } from '../support/admin.js';
import { clientId, type Message, type TestClient } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { publish, signToken, type TestGateway } from '../support/gateway.js';

const CHANNEL = 'positions:ACC1';

/** A demo position (src/demo/feed.ts) at a price: a tick changes price, pnl and updated_at. */
function position(price: number) {
  return {
    symbol: 'EURUSD',
    side: 'long',
    size: 160000,
    entry_price: 1.0842,
    price,
    pnl: Math.round((price - 1.0842) * 160000 * 100) / 100,
    pnl_pct: Math.round(((price - 1.0842) / 1.0842) * 10000) / 100,
    updated_at: 1795812884200 + Math.round(price * 1e5),
  };
}

describe('state updates as deltas', () => {
  const gw = useGateway({
    WEBSOCKET_SHUTDOWN_TIMEOUT: '2',
    // The stalled client must not be closed as a slow consumer during the test.
    WEBSOCKET_BROADCAST_TIMEOUT: '60',
    WEBSOCKET_PING_INTERVAL: '60',
    WEBSOCKET_MESSAGE_QUEUE_BYTES: String(64 << 20),
  });

  /** A client signed in with `deltas` in its hello; resolves once welcomed. */
  async function client(deltas: boolean | undefined): Promise<{ c: TestClient; welcome: Message }> {
    const c = await gw.connect();
    c.send({
      op: 'hello',
      token: await signToken(),
      client: 'test/1.0',
      ...(deltas !== undefined && { deltas }),
    });
    return { c, welcome: await c.type('welcome') };
  }

  async function subscribed(c: TestClient): Promise<Message> {
    expect(await c.subscribe(CHANNEL)).toMatchObject({ type: 'subscribed' });
    return c.next((m) => m.type === 'snapshot' && m.channel === CHANNEL);
  }

  async function set(g: TestGateway, key: string, data: unknown): Promise<number> {
    const res = await publish(g, { channel: CHANNEL, key, data });
    expect(res.status).toBe(200);
    return (res.body as { results: { seq: number }[] }).results[0]!.seq;
  }

  /** The event of `seq`, once it arrived. */
  const eventOf = (c: TestClient, seq: number) =>
    c.next((m) => m.type === 'event' && m.channel === CHANNEL && m.seq === seq);

  it('sends consecutive updates of a key as patches on the previous seq, once asked in hello', async () => {
    const g = await gw.start();
    const { c, welcome } = await client(true);
    expect(welcome.deltas).toBe(true);
    await subscribed(c);

    const s1 = await set(g, 'EURUSD', position(1.085));
    const s2 = await set(g, 'EURUSD', position(1.08513));
    const s3 = await set(g, 'EURUSD', position(1.08517));
    const first = await eventOf(c, s1);
    const second = await eventOf(c, s2);
    const third = await eventOf(c, s3);

    expect(first).not.toHaveProperty('base_seq');
    expect(first.data).toEqual(position(1.085));
    expect(second).toMatchObject({ key: 'EURUSD', base_seq: s1 });
    expect(third).toMatchObject({ key: 'EURUSD', base_seq: s2 });
    // Only what moved travels, and it rebuilds the value.
    expect(Object.keys(second.data as object).sort()).toEqual(
      ['pnl', 'pnl_pct', 'price', 'updated_at'].sort(),
    );
    const rebuilt = applyMergePatch(applyMergePatch(first.data, second.data), third.data);
    expect(rebuilt).toEqual(position(1.08517));
  });

  it('sends full values after a resubscribe and after a delete', async () => {
    const g = await gw.start();
    const { c } = await client(true);
    // Another subscriber that gets deltas stays: patches on s2 are built for it.
    const { c: witness } = await client(true);
    await subscribed(c);
    await subscribed(witness);
    const s1 = await set(g, 'EURUSD', position(1.085));
    const s2 = await set(g, 'EURUSD', position(1.086));
    expect(await eventOf(c, s2)).toMatchObject({ base_seq: s1 });

    // A resubscribe starts over from its snapshot: the next update goes in full.
    const snapshot = await subscribed(c);
    expect(snapshot.entries).toEqual([{ key: 'EURUSD', data: position(1.086) }]);
    const s3 = await set(g, 'EURUSD', position(1.087));
    const s4 = await set(g, 'EURUSD', position(1.088));
    expect(await eventOf(witness, s3)).toMatchObject({ base_seq: s2 });
    const afterResubscribe = await eventOf(c, s3);
    expect(afterResubscribe).not.toHaveProperty('base_seq');
    expect(afterResubscribe.data).toEqual(position(1.087));
    expect(await eventOf(c, s4)).toMatchObject({ base_seq: s3 });

    // A delete is full (data null), and so is the key's next value.
    const s5 = await set(g, 'EURUSD', null);
    const s6 = await set(g, 'EURUSD', position(1.089));
    const s7 = await set(g, 'EURUSD', position(1.09));
    const deleted = await eventOf(c, s5);
    expect(deleted.data).toBeNull();
    expect(deleted).not.toHaveProperty('base_seq');
    const reopened = await eventOf(c, s6);
    expect(reopened).not.toHaveProperty('base_seq');
    expect(reopened.data).toEqual(position(1.089));
    expect(await eventOf(c, s7)).toMatchObject({ base_seq: s6 });
  });

  it('never sends base_seq to a client that did not ask, also beside one that did', async () => {
    const g = await gw.start();
    const { c: asked } = await client(true);
    const { c: older, welcome } = await client(undefined);
    const { c: declined, welcome: declinedWelcome } = await client(false);
    expect(welcome).not.toHaveProperty('deltas');
    expect(declinedWelcome).not.toHaveProperty('deltas');
    for (const c of [asked, older, declined]) await subscribed(c);

    let last = 0;
    for (let i = 0; i < 5; i++) last = await set(g, 'EURUSD', position(1.085 + i / 1e4));
    for (const c of [asked, older, declined]) await eventOf(c, last);

    expect(asked.events(CHANNEL).filter((m) => 'base_seq' in m)).toHaveLength(4);
    for (const c of [older, declined]) {
      const events = c.events(CHANNEL);
      expect(events).toHaveLength(5);
      for (const [i, m] of events.entries()) {
        expect(m).not.toHaveProperty('base_seq');
        expect(m.data).toEqual(position(1.085 + i / 1e4));
      }
    }
  });

  it('writes in full a value whose base was conflated away in a slow reader queue', async () => {
    const g = await gw.start();
    const { c } = await client(true);
    const id = clientId(c);
    await subscribed(c);
    expect(await c.subscribe('signals')).toMatchObject({ type: 'subscribed' });
    const s1 = await set(g, 'EURUSD', position(1.085));
    const s2 = await set(g, 'EURUSD', position(1.086));
    expect(await eventOf(c, s2)).toMatchObject({ base_seq: s1 });

    // The client stops reading; large signals fill its socket until frames wait in the queue.
    c.ws.pause();
    const pad = 'x'.repeat(200_000);
    for (let i = 0; (await queueDepth(g, id)) === 0; i++) {
      if (i > 400) throw new Error('the socket never filled up');
      expect((await publish(g, { channel: 'signals', data: { i, pad } })).status).toBe(200);
    }
    // Seq s3 waits in the queue; s4 (a patch on s3) replaces it there, then s5 (on s4).
    const depth = await queueDepth(g, id);
    await set(g, 'EURUSD', position(1.087));
    expect(await queueDepth(g, id)).toBe(depth + 1);
    await set(g, 'EURUSD', position(1.088));
    const s5 = await set(g, 'EURUSD', position(1.089));
    expect(await queueDepth(g, id)).toBe(depth + 1);

    c.ws.resume();
    const conflated = await eventOf(c, s5);
    // The client holds s2, not s4: the value comes whole, and the next patches build on it.
    expect(conflated).not.toHaveProperty('base_seq');
    expect(conflated.data).toEqual(position(1.089));
    const s6 = await set(g, 'EURUSD', position(1.09));
    expect(await eventOf(c, s6)).toMatchObject({ base_seq: s5 });
    expect(
      c.events(CHANNEL).map((m) => [m.seq, (m.base_seq as number | undefined) ?? null]),
    ).toEqual([
      [s1, null],
      [s2, s1],
      [s5, null],
      [s6, s5],
    ]);
  });
});
