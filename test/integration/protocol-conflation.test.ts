/**
 * Delivery classes under backpressure (docs/protocol.md#channels-and-delivery-classes): state
 * updates are conflated per key (latest value wins, never stale), alerts jump ahead of queued
 * state/stream messages, and nothing is dropped silently. First at the level of a connection's
 * real OutboundQueue and Frame, then end to end with a client that really stops reading its
 * socket.
 */
import { describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { Frame } from '../../src/server/frame.js';
import type { DeliveryClass } from '../../src/server/metrics.js';
import { OutboundQueue } from '../../src/server/queue.js';
import { queueDepth } from '../support/admin.js';
import { clientId, type Message, type TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { publish, type TestGateway } from '../support/gateway.js';

// --- unit level: the real queue and frames -------------------------------------------------

let seq = 0;

/** A frame as the hub builds it for a published event. */
function eventFrame(channel: string, cls: DeliveryClass, key: string | null, data: unknown): Frame {
  const message: ServerMessage = { type: 'event', channel, seq: ++seq, key, ts: 0, data };
  return new Frame(Buffer.from(JSON.stringify(message)), {
    cls,
    conflateKey: cls === 'state' && key !== null ? `${channel}\u0000${key}` : null,
  });
}

const state = (key: string, data: unknown) => eventFrame('positions:ACC1', 'state', key, data);
const stream = (data: unknown) => eventFrame('signals', 'stream', null, data);
const alert = (data: unknown) => eventFrame('risk:ACC1', 'alert', null, data);

/** Drains the queue, decoding each frame's payload from its wire bytes. */
function drain(queue: OutboundQueue): Message[] {
  const out: Message[] = [];
  let frame: Frame | undefined;
  while ((frame = queue.shift())) {
    // Unmasked text frame: 2-byte header, plus 2 or 8 bytes of extended length.
    const len = frame.wire[1]! & 0x7f;
    const offset = len === 126 ? 4 : len === 127 ? 10 : 2;
    out.push(JSON.parse(frame.wire.subarray(offset).toString('utf8')) as Message);
    frame.release();
  }
  return out;
}

describe('outbound queue: conflation of state updates', () => {
  it('replaces a queued value with the newer one for the same key, keeping its place in line', () => {
    const q = new OutboundQueue(100, 1 << 20);
    expect(q.enqueue(state('EURUSD', { v: 1 }), 0)).toBe('queued');
    expect(q.enqueue(state('GBPUSD', { v: 1 }), 0)).toBe('queued');
    expect(q.enqueue(state('EURUSD', { v: 2 }), 0)).toBe('conflated');
    expect(q.enqueue(state('EURUSD', { v: 3 }), 0)).toBe('conflated');
    expect(q.depth).toBe(2);
    expect(drain(q).map((m) => [m.key, m.data])).toEqual([
      ['EURUSD', { v: 3 }],
      ['GBPUSD', { v: 1 }],
    ]);
    expect(q.depth).toBe(0);
    expect(q.bytes).toBe(0);
  });

  it('lets a deletion (data: null) replace the queued value of its key', () => {
    const q = new OutboundQueue(100, 1 << 20);
    q.enqueue(state('EURUSD', { v: 1 }), 0);
    expect(q.enqueue(state('EURUSD', null), 0)).toBe('conflated');
    expect(drain(q)).toEqual([expect.objectContaining({ key: 'EURUSD', data: null })]);
  });

  it('counts the bytes of the replacing value, not of the replaced one', () => {
    const q = new OutboundQueue(100, 1 << 20);
    const small = state('EURUSD', { v: 1 });
    const big = state('EURUSD', { v: 2, pad: 'x'.repeat(500) });
    q.enqueue(small, 0);
    expect(q.bytes).toBe(small.size);
    q.enqueue(big, 0);
    expect(q.bytes).toBe(big.size);
  });

  it('settles a replaced frame at once, so fan-out bookkeeping does not wait for it', () => {
    const q = new OutboundQueue(100, 1 << 20);
    const settled: Frame[] = [];
    const old = new Frame(Buffer.from('{"type":"event"}'), {
      cls: 'state',
      conflateKey: 'positions:ACC1\u0000EURUSD',
      onSettled: (f) => settled.push(f),
    });
    q.enqueue(old, 0);
    expect(settled).toEqual([]);
    q.enqueue(state('EURUSD', { v: 2 }), 0);
    expect(settled).toEqual([old]);
  });

  it('queues a new value normally once the previous one for its key has been written', () => {
    const q = new OutboundQueue(100, 1 << 20);
    q.enqueue(state('EURUSD', { v: 1 }), 0);
    expect(drain(q)).toHaveLength(1);
    expect(q.enqueue(state('EURUSD', { v: 2 }), 0)).toBe('queued');
    expect(drain(q).map((m) => m.data)).toEqual([{ v: 2 }]);
  });

  it('never conflates stream or alert events, even with identical content', () => {
    const q = new OutboundQueue(100, 1 << 20);
    q.enqueue(stream({ same: true }), 0);
    q.enqueue(stream({ same: true }), 0);
    q.enqueue(alert({ same: true }), 0);
    q.enqueue(alert({ same: true }), 0);
    expect(q.depth).toBe(4);
    expect(drain(q)).toHaveLength(4);
  });

  it('conflates a key without needing room in a full queue, and reports overflow instead of dropping', () => {
    const q = new OutboundQueue(2, 1 << 20);
    q.enqueue(state('EURUSD', { v: 1 }), 0);
    q.enqueue(state('GBPUSD', { v: 1 }), 0);
    expect(q.enqueue(state('EURUSD', { v: 2 }), 0)).toBe('conflated');
    expect(q.enqueue(state('USDJPY', { v: 1 }), 0)).toBe('overflow');
    expect(q.enqueue(stream({ n: 1 }), 0)).toBe('overflow');
    expect(q.depth).toBe(2);
  });
});

describe('outbound queue: alerts jump ahead', () => {
  it('shifts an alert before the state and stream messages queued ahead of it', () => {
    const q = new OutboundQueue(100, 1 << 20);
    q.enqueue(stream({ n: 1 }), 0);
    q.enqueue(state('EURUSD', { v: 1 }), 0);
    q.enqueue(stream({ n: 2 }), 0);
    q.enqueue(Frame.of({ type: 'pong' }), 0);
    q.enqueue(alert({ margin: 'call' }), 0);
    const out = drain(q);
    expect(out[0]).toMatchObject({ channel: 'risk:ACC1', data: { margin: 'call' } });
    expect(out.slice(1).map((m) => m.type)).toEqual(['event', 'event', 'event', 'pong']);
    expect(out.slice(1, 4).map((m) => m.channel)).toEqual(['signals', 'positions:ACC1', 'signals']);
  });

  it('keeps alerts in their own order while they jump ahead', () => {
    const q = new OutboundQueue(100, 1 << 20);
    q.enqueue(alert({ n: 1 }), 0);
    q.enqueue(stream({ n: 1 }), 0);
    q.enqueue(alert({ n: 2 }), 0);
    q.enqueue(state('EURUSD', { v: 1 }), 0);
    q.enqueue(alert({ n: 3 }), 0);
    expect(drain(q).map((m) => [m.channel, m.data])).toEqual([
      ['risk:ACC1', { n: 1 }],
      ['risk:ACC1', { n: 2 }],
      ['risk:ACC1', { n: 3 }],
      ['signals', { n: 1 }],
      ['positions:ACC1', { v: 1 }],
    ]);
  });
});

// --- end to end: a client that stops reading -----------------------------------------------

describe('delivery under real backpressure', () => {
  const gw = useGateway({
    WEBSOCKET_SHUTDOWN_TIMEOUT: '2',
    // The stalled client must not be closed as a slow consumer during the test.
    WEBSOCKET_BROADCAST_TIMEOUT: '60',
    WEBSOCKET_PING_INTERVAL: '60',
    WEBSOCKET_MESSAGE_QUEUE_BYTES: String(64 << 20),
  });
  /** Filler big enough that a few of them fill the socket buffers. */
  const PAD = 'x'.repeat(200_000);

  async function published(g: TestGateway, body: unknown): Promise<void> {
    const res = await publish(g, body);
    expect(res.status).toBe(200);
  }

  /**
   * Stops the client reading, then publishes filler on `channel` until frames wait in the
   * gateway's queue for this client (the socket is full). Returns how many fillers it took.
   */
  async function stall(g: TestGateway, c: TestClient, id: string, channel: string) {
    c.ws.pause();
    for (let i = 0; i < 400; i++) {
      await published(g, {
        channel,
        ...(channel.startsWith('positions:') && { key: `FILL${i}` }),
        data: { fill: i, pad: PAD },
      });
      if ((await queueDepth(g, id)) > 0) return i + 1;
    }
    throw new Error('the socket never filled up');
  }

  it('delivers only the latest value per key to a client that cannot drain, never a stale one', async () => {
    const g = await gw.start();
    const c = await gw.authed();
    const id = clientId(c);
    await c.subscribe('positions:ACC1');
    await c.type('snapshot');

    const fillers = await stall(g, c, id, 'positions:ACC1');
    const depthBefore = await queueDepth(g, id);
    for (let v = 1; v <= 50; v++) {
      await published(g, { channel: 'positions:ACC1', key: 'EURUSD', data: { v } });
    }
    // Fifty updates of one key take one place in the queue.
    expect(await queueDepth(g, id)).toBe(depthBefore + 1);

    c.ws.resume();
    await c.next(
      (m) => m.type === 'event' && m.key === 'EURUSD' && (m.data as { v: number }).v === 50,
    );
    await published(g, { channel: 'positions:ACC1', key: 'SENTINEL', data: { done: true } });
    await c.next((m) => m.type === 'event' && m.key === 'SENTINEL');

    const values = c
      .events('positions:ACC1')
      .filter((m) => m.key === 'EURUSD')
      .map((m) => (m.data as { v: number }).v);
    expect(values.at(-1)).toBe(50);
    expect(values.length).toBeLessThan(50);
    // Never stale: each value delivered is newer than the one before.
    for (let i = 1; i < values.length; i++) expect(values[i]).toBeGreaterThan(values[i - 1]!);
    // And nothing else was dropped: every filler arrived.
    const fills = c.events('positions:ACC1').filter((m) => String(m.key).startsWith('FILL'));
    expect(fills).toHaveLength(fillers);
    expect(c.ws.readyState).toBe(c.ws.OPEN);
  });

  it('delivers a risk alert ahead of stream events queued before it', async () => {
    const g = await gw.start();
    const c = await gw.authed();
    const id = clientId(c);
    await c.subscribe('signals');
    await c.subscribe('risk:ACC1');

    await stall(g, c, id, 'signals');
    await published(g, {
      events: Array.from({ length: 10 }, (_, i) => ({ channel: 'signals', data: { queued: i } })),
    });
    await published(g, { channel: 'risk:ACC1', data: { margin: 'call' } });
    expect(await queueDepth(g, id)).toBeGreaterThanOrEqual(11);

    c.ws.resume();
    const seen = (pred: (m: Message) => boolean) => c.messages.some(pred);
    await eventually(
      () =>
        seen((m) => m.type === 'event' && (m.data as { queued?: number }).queued === 9) &&
        seen((m) => m.type === 'event' && m.channel === 'risk:ACC1'),
      'the queued signals and the alert',
    );
    const alertAt = c.messages.findIndex((m) => m.type === 'event' && m.channel === 'risk:ACC1');
    const queuedAt = c.messages.findIndex(
      (m) => m.type === 'event' && (m.data as { queued?: number }).queued === 0,
    );
    expect(alertAt).toBeGreaterThan(-1);
    expect(alertAt).toBeLessThan(queuedAt);
    // The stream itself stays complete and in order.
    const signalSeqs = c.events('signals').map((m) => m.seq as number);
    expect(signalSeqs).toEqual(signalSeqs.map((_, i) => i + 1));
  });

  it('never lets a conflated update overtake a newer snapshot after a resubscribe', async () => {
    const g = await gw.start();
    const c = await gw.authed();
    const id = clientId(c);
    await c.subscribe('positions:ACC1');
    await c.type('snapshot');
    await c.subscribe('signals');

    // Fill the socket with another channel's events, so only v1 is queued for this one.
    await stall(g, c, id, 'signals');
    // v1 waits in the queue; the client (which can still send) subscribes again, which
    // queues a snapshot holding v1; then v2 is published.
    await published(g, { channel: 'positions:ACC1', key: 'EURUSD', data: { v: 1 } });
    const depth = await queueDepth(g, id);
    c.send({ op: 'subscribe', id: 'again', channel: 'positions:ACC1' });
    // The answer and the snapshot wait in the queue too (what was queued for the old
    // subscription may be dropped, so the depth grows by at least one).
    for (let i = 0; (await queueDepth(g, id)) <= depth; i++) {
      if (i > 200) throw new Error('resubscribe never queued its snapshot');
      await new Promise((r) => setTimeout(r, 10));
    }
    await published(g, { channel: 'positions:ACC1', key: 'EURUSD', data: { v: 2 } });

    c.ws.resume();
    await published(g, { channel: 'positions:ACC1', key: 'SENTINEL', data: { done: true } });
    await c.next((m) => m.type === 'event' && m.key === 'SENTINEL');

    // Replay what the client saw, as a dashboard would: a snapshot replaces the view, an
    // event sets or deletes one key. The final view must hold the latest value.
    const view = new Map<string, unknown>();
    for (const m of c.messages) {
      if (m.channel !== 'positions:ACC1') continue;
      if (m.type === 'snapshot') {
        view.clear();
        for (const e of m.entries as { key: string; data: unknown }[]) view.set(e.key, e.data);
      } else if (m.type === 'event') {
        if (m.data === null) view.delete(m.key as string);
        else view.set(m.key as string, m.data);
      }
    }
    expect(view.get('EURUSD')).toEqual({ v: 2 });
  });
});
