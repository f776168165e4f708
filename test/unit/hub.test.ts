/** The hub in-process, on the memory backplane, with recording subscribers (no sockets). */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ArchonError, parseChannel, type ChannelInfo } from '../../src/protocol/index.js';
import { MemoryBackplane } from '../../src/server/backplane/memory.js';
import type { Frame } from '../../src/server/frame.js';
import { FLUSH_SLICE, Hub, SLICE_MS, Subscription, type Subscriber } from '../../src/server/hub.js';
import { createLogger } from '../../src/server/logging.js';
import { Metrics } from '../../src/server/metrics.js';

const LIMITS = { streamSize: 100, streamTtlMs: 60_000, alertSize: 100, alertTtlMs: 60_000 };

/** A subscriber that keeps what it is sent, with a replay budget of `budget` bytes. */
class Recorder implements Subscriber {
  readonly frames: Frame[] = [];
  flushes = 0;
  resynced: string[] = [];
  readonly receivesBroadcasts = true;
  readonly userId = 'trader-1';

  constructor(
    readonly id: string,
    private budget = Infinity,
    readonly deltas = false,
  ) {}

  send(frame: Frame): boolean {
    this.frames.push(frame);
    return true;
  }

  sendLive(frame: Frame): boolean {
    return this.send(frame);
  }

  flushListed = false;

  flush(): void {
    this.flushes++;
  }

  resync(channels: string[]): void {
    this.resynced.push(...channels);
  }

  mayReplay(bytes: number): boolean {
    if (bytes > this.budget) return false;
    this.budget -= bytes;
    return true;
  }

  replayLeft(): number {
    return this.budget;
  }

  /** The messages sent, parsed. */
  get messages(): Record<string, unknown>[] {
    return this.frames.map(parse);
  }
}

function parse(f: Frame): Record<string, unknown> {
  return JSON.parse(f.wire.subarray(f.wire.length - f.size).toString()) as Record<string, unknown>;
}

function channel(name: string): ChannelInfo {
  const info = parseChannel(name);
  if (!info) throw new Error(`not a channel: ${name}`);
  return info;
}

describe('Hub', () => {
  const metricsToClose: Metrics[] = [];
  afterEach(() => {
    for (const m of metricsToClose.splice(0)) m.close();
  });

  async function setup(subscribers: Recorder[] = []) {
    const backplane = new MemoryBackplane(LIMITS);
    const metrics = new Metrics('unit', {
      active: () => subscribers.length,
      sse: () => 0,
      unauthenticated: () => 0,
      queueDepth: () => 0,
      backplaneUp: () => true,
      alerts: () => Promise.resolve({ unacked: 0, oldestSeconds: 0 }),
    });
    metricsToClose.push(metrics);
    const log = createLogger(
      { level: 'silent', server: 'unit' },
      new Writable({ write: (_c, _e, done) => done() }),
    );
    const hub = new Hub(backplane, new Set(subscribers), metrics, log);
    await backplane.start(hub);
    await backplane.subscribe('system'); // as the gateway does at start
    // Publish answers first; the hub gets the event a turn later and hands it to the
    // subscribers in the turn after: wait for both.
    const publish = async (name: string, data: unknown, key: string | null = null) => {
      const results = await backplane.publish([{ channel: name, key, data }]);
      for (let turn = 0; turn < 2; turn++) await new Promise((resolve) => setImmediate(resolve));
      return results;
    };
    return { hub, backplane, publish };
  }

  it('names the alerts a resume already holds by seq only, and sends the list again when acknowledgements may have been missed', async () => {
    const { hub, publish, backplane } = await setup();
    for (let n = 1; n <= 4; n++) await publish('risk:ACC1', { n });
    const epoch = (await backplane.history('risk:ACC1', 0)).epoch;
    await backplane.ack('risk:ACC1', epoch, 2, { by: 'u', at: 1 });
    const fresh = new Recorder('fresh');
    const resumed = new Recorder('resumed');
    await hub.subscribe(new Subscription(fresh, channel('risk:ACC1')), undefined, 1);
    await hub.subscribe(new Subscription(resumed, channel('risk:ACC1')), { epoch, seq: 3 }, 2);
    const list = (r: Recorder) => r.messages.find((m) => m.type === 'unacked');
    expect(list(fresh)).toMatchObject({
      seqs: [
        [1, 1],
        [3, 4],
      ],
    });
    expect((list(fresh)?.alerts as { seq: number }[]).map((a) => a.seq)).toEqual([1, 3, 4]);
    // Seq 4 is in the replay, 1 and 3 are before the resume point: nothing in full.
    expect(list(resumed)).toMatchObject({
      seqs: [
        [1, 1],
        [3, 4],
      ],
      alerts: [],
    });

    await backplane.ack('risk:ACC1', epoch, 4, { by: 'u', at: 2 });
    const before = fresh.messages.length;
    hub.acksMissed(['risk:ACC1']);
    await vi.waitFor(() => expect(fresh.messages.length).toBeGreaterThan(before));
    const again = fresh.messages.filter((m) => m.type === 'unacked').at(-1);
    expect(again).toEqual({
      type: 'unacked',
      channel: 'risk:ACC1',
      epoch,
      seqs: [
        [1, 1],
        [3, 3],
      ],
      alerts: [],
    });
  });

  it('tells of an acknowledgement only after the alert it names', async () => {
    const a = new Recorder('a');
    const { hub, backplane } = await setup([a]);
    await hub.subscribe(new Subscription(a, channel('risk:ACC1')), undefined, 1);
    // The ack is stored while the alert's fan-out is still on its way to the hub.
    const [published] = await backplane.publish([{ channel: 'risk:ACC1', key: null, data: 1 }]);
    await backplane.ack('risk:ACC1', published!.epoch, published!.seq, { by: 'u', at: 1 });
    await vi.waitFor(() => expect(a.messages.some((m) => m.type === 'acked')).toBe(true));
    expect(a.messages.filter((m) => m.channel === 'risk:ACC1').map((m) => m.type)).toEqual([
      'subscribed',
      'unacked',
      'event',
      'acked',
    ]);
  });

  it('never refuses a plain risk subscription for its list: with no budget left, seqs only', async () => {
    const { hub, publish } = await setup();
    for (let n = 1; n <= 3; n++) await publish('risk:ACC1', { n });
    const broke = new Recorder('broke', 10);
    await hub.subscribe(new Subscription(broke, channel('risk:ACC1')), undefined, 1);
    expect(broke.messages.find((m) => m.type === 'unacked')).toMatchObject({
      seqs: [[1, 3]],
      alerts: [],
    });
    expect(broke.replayLeft()).toBe(10);
  });

  it('fans one event out as one frame shared by every subscriber', async () => {
    const a = new Recorder('a');
    const b = new Recorder('b');
    const { hub, publish } = await setup([a, b]);
    await hub.subscribe(new Subscription(a, channel('signals')), undefined, 1);
    await hub.subscribe(new Subscription(b, channel('signals')), undefined, 2);
    await publish('signals', { n: 1 });
    const [fromA] = a.frames.slice(-1);
    const [fromB] = b.frames.slice(-1);
    expect(fromA).toBe(fromB);
    expect(a.messages.at(-1)).toMatchObject({ type: 'event', channel: 'signals', seq: 1 });
  });

  it('replays what a resume missed after `subscribed`, with the frames shared between resumers', async () => {
    const { hub, publish, backplane } = await setup();
    for (let n = 1; n <= 3; n++) await publish('signals', { n });
    const epoch = (await backplane.history('signals', 0)).epoch;
    const a = new Recorder('a');
    const b = new Recorder('b');
    await hub.subscribe(new Subscription(a, channel('signals')), { epoch, seq: 1 }, 7);
    await hub.subscribe(new Subscription(b, channel('signals')), { epoch, seq: 1 }, 8);
    expect(a.messages.map((m) => [m.type, m.seq])).toEqual([
      ['subscribed', 3],
      ['event', 2],
      ['event', 3],
    ]);
    expect(a.messages[0]).toMatchObject({ id: 7, recovered: true, replayed: 2 });
    expect(a.frames[1]).toBe(b.frames[1]);
    expect(a.frames[2]).toBe(b.frames[2]);
  });

  it('refuses a resume over the replay budget with replay_limited and registers nothing', async () => {
    const { hub, publish, backplane } = await setup();
    for (let n = 1; n <= 3; n++) await publish('signals', { n, pad: 'x'.repeat(100) });
    const epoch = (await backplane.history('signals', 0)).epoch;
    const poor = new Recorder('poor', 150);
    const sub = new Subscription(poor, channel('signals'));
    const refusal = hub.subscribe(sub, { epoch, seq: 0 }, 1);
    await expect(refusal).rejects.toBeInstanceOf(ArchonError);
    await expect(refusal).rejects.toMatchObject({ code: 'replay_limited' });
    expect(poor.frames).toEqual([]);
    // Not registered: a live event does not reach it.
    await publish('signals', { n: 4 });
    expect(poor.frames).toEqual([]);
  });

  it('refuses before reading once the budget is spent, and still lets a plain subscribe through', async () => {
    const { hub, publish, backplane } = await setup();
    await publish('signals', { n: 1 });
    const epoch = (await backplane.history('signals', 0)).epoch;
    const spent = new Recorder('spent', 0);
    await expect(
      hub.subscribe(new Subscription(spent, channel('signals')), { epoch, seq: 0 }, 1),
    ).rejects.toMatchObject({ code: 'replay_limited' });
    // Without since there is nothing to replay: no budget needed.
    await hub.subscribe(new Subscription(spent, channel('signals')), undefined, 2);
    expect(spent.messages.at(-1)).toMatchObject({ type: 'subscribed', id: 2, replayed: 0 });
  });

  it('sends a state channel its snapshot after `subscribed`', async () => {
    const { hub, publish } = await setup();
    await publish('positions:ACC1', { qty: 1 }, 'EURUSD');
    await publish('positions:ACC1', { qty: 2 }, 'GBPUSD');
    const a = new Recorder('a');
    await hub.subscribe(new Subscription(a, channel('positions:ACC1')), undefined, 1);
    expect(a.messages.map((m) => m.type)).toEqual(['subscribed', 'snapshot']);
    expect(a.messages[1]).toMatchObject({
      seq: 2,
      entries: [
        { key: 'EURUSD', data: { qty: 1 } },
        { key: 'GBPUSD', data: { qty: 2 } },
      ],
    });
  });

  it('stops delivering after unsubscribe', async () => {
    const a = new Recorder('a');
    const { hub, publish } = await setup([a]);
    const sub = new Subscription(a, channel('signals'));
    await hub.subscribe(sub, undefined, 1);
    hub.unsubscribe(sub);
    const before = a.frames.length;
    await publish('signals', { n: 1 });
    expect(a.frames).toHaveLength(before);
  });

  it('reaches every registered connection with a system broadcast', async () => {
    const a = new Recorder('a');
    const b = new Recorder('b');
    const { hub, publish } = await setup([a, b]);
    await publish('system', { message: 'maintenance at 22:00' });
    for (const r of [a, b])
      expect(r.messages).toEqual([
        expect.objectContaining({ type: 'system', message: 'maintenance at 22:00' }),
      ]);
    expect(hub.broadcastAudience()).toBe(2);
  });

  it('hands a large fan-out out and writes it in slices of FLUSH_SLICE, serving other work between them', async () => {
    const n = FLUSH_SLICE * 2 + 500;
    const subscribers = Array.from({ length: n }, (_, i) => new Recorder(`r${i}`));
    const { hub, backplane } = await setup(subscribers);
    for (const r of subscribers)
      await hub.subscribe(new Subscription(r, channel('signals')), undefined, 1);
    // The subscribe answers are flushed in slices too: let every slice run.
    for (let turn = 0; turn < Math.ceil(n / FLUSH_SLICE) + 1; turn++)
      await new Promise((resolve) => setImmediate(resolve));
    for (const r of subscribers) r.flushes = 0;
    const framesBefore = subscribers.map((r) => r.frames.length);
    await backplane.publish([{ channel: 'signals', key: null, data: { n: 1 } }]);
    const handed = () => subscribers.filter((r, i) => r.frames.length > framesBefore[i]!).length;
    const flushed = () => subscribers.filter((r) => r.flushes > 0).length;
    const seen: { handed: number; flushed: number }[] = [];
    // Turn by turn until everyone was written: work queued meanwhile runs in between.
    for (let turn = 0; turn < 500 && flushed() < n; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      seen.push({ handed: handed(), flushed: flushed() });
    }
    // No turn handed out or wrote more than one slice (a slice also ends after SLICE_MS, so
    // on a slow machine some are shorter), and it took several.
    const steps = (key: 'handed' | 'flushed') =>
      seen.map((x, i) => x[key] - (i === 0 ? 0 : seen[i - 1]![key]));
    expect(Math.max(...steps('handed'))).toBeLessThanOrEqual(FLUSH_SLICE);
    expect(Math.max(...steps('flushed'))).toBeLessThanOrEqual(FLUSH_SLICE);
    expect(steps('handed').filter((x) => x > 0).length).toBeGreaterThanOrEqual(3);
    expect(seen.at(-1)).toEqual({ handed: n, flushed: n });
    // Every connection was written exactly once, and got the event once.
    expect(subscribers.every((r) => r.flushes === 1)).toBe(true);
    expect(subscribers.every((r, i) => r.frames.length === framesBefore[i]! + 1)).toBe(true);
    expect(subscribers.every((r) => r.messages.at(-1)?.seq === 1)).toBe(true);
  });

  it('ends a slice after SLICE_MS when deliveries are slow, so other work waits little', async () => {
    // Each live write takes 100 µs: 1,000 of them would hold the loop for 100 ms.
    class Slow extends Recorder {
      override sendLive(frame: Frame): boolean {
        const until = performance.now() + 0.1;
        while (performance.now() < until);
        return super.sendLive(frame);
      }
    }
    const n = 600;
    const subscribers = Array.from({ length: n }, (_, i) => new Slow(`s${i}`));
    const { hub, backplane } = await setup(subscribers);
    for (const r of subscribers)
      await hub.subscribe(new Subscription(r, channel('signals')), undefined, 1);
    for (let turn = 0; turn < 50; turn++) await new Promise((resolve) => setImmediate(resolve));
    const before = subscribers.map((r) => r.frames.length);
    await backplane.publish([{ channel: 'signals', key: null, data: { n: 1 } }]);
    const handed = () => subscribers.filter((r, i) => r.frames.length > before[i]!).length;
    const steps: number[] = [];
    for (let turn = 0, last = 0; turn < 500 && last < n; turn++) {
      await new Promise((resolve) => setImmediate(resolve));
      steps.push(handed() - last);
      last = handed();
    }
    expect(steps.reduce((a, b) => a + b, 0)).toBe(n);
    // At most SLICE_MS of 100 µs writes, plus the writes between two clock checks.
    expect(Math.max(...steps)).toBeLessThanOrEqual(SLICE_MS / 0.1 + 64);
  });

  it('hands events out in the order they arrived, even across slices', async () => {
    const n = FLUSH_SLICE + 10;
    const subscribers = Array.from({ length: n }, (_, i) => new Recorder(`r${i}`));
    const { hub, backplane } = await setup(subscribers);
    for (const r of subscribers)
      await hub.subscribe(new Subscription(r, channel('signals')), undefined, 1);
    await backplane.publish([1, 2, 3].map((k) => ({ channel: 'signals', key: null, data: { k } })));
    for (let turn = 0; turn < 200; turn++) await new Promise((resolve) => setImmediate(resolve));
    for (const r of subscribers) {
      const seqs = r.messages.filter((m) => m.type === 'event').map((m) => m.seq);
      expect(seqs).toEqual([1, 2, 3]);
    }
  });

  describe('state updates for connections that get deltas', () => {
    const position = { symbol: 'EURUSD', side: 'long', size: 160000, entry_price: 1.0842 };

    it('keeps nothing and builds no delta while no subscriber of the channel gets deltas', async () => {
      const plain = new Recorder('plain');
      const { hub, publish } = await setup([plain]);
      await hub.subscribe(new Subscription(plain, channel('positions:ACC1')), undefined, 1);
      await publish('positions:ACC1', { ...position, price: 1.085 }, 'EURUSD');
      await publish('positions:ACC1', { ...position, price: 1.086 }, 'EURUSD');
      const events = plain.frames.filter((f) => parse(f).type === 'event');
      expect(events).toHaveLength(2);
      for (const f of events) expect(f.stateChange).toBeNull();
    });

    it("builds one delta per update on the key's previous value, shared by every subscriber", async () => {
      const a = new Recorder('a', Infinity, true);
      const b = new Recorder('b', Infinity, true);
      const plain = new Recorder('plain');
      const { hub, publish } = await setup([a, b, plain]);
      for (const [i, r] of [a, b, plain].entries())
        await hub.subscribe(new Subscription(r, channel('positions:ACC1')), undefined, i);
      await publish('positions:ACC1', { ...position, price: 1.085 }, 'EURUSD');
      await publish('positions:ACC1', { ...position, price: 1.086 }, 'EURUSD');

      const [first, second] = a.frames.filter((f) => parse(f).type === 'event');
      // The first update of a key has no base here: it goes in full.
      expect(first?.stateChange).toEqual({ kind: 'value', seq: 1, delta: null });
      expect(second?.stateChange).toMatchObject({ kind: 'value', seq: 2, delta: { baseSeq: 1 } });
      const change = second?.stateChange;
      if (change?.kind !== 'value' || change.delta === null) throw new Error('no delta');
      expect(parse(change.delta.frame)).toEqual({
        type: 'event',
        channel: 'positions:ACC1',
        seq: 2,
        base_seq: 1,
        key: 'EURUSD',
        ts: expect.any(Number) as number,
        data: { price: 1.086 },
      });
      expect(change.delta.frame.size).toBeLessThan(second?.size ?? 0);
      // It moves an HTTP stream's cursor as the full event does.
      expect(change.delta.frame.position).toEqual(second?.position);
      // One frame, and so one delta, for every subscriber; a subscriber without deltas gets
      // the same frame and writes it whole.
      expect(b.frames.at(-1)).toBe(second);
      expect(plain.frames.at(-1)).toBe(second);
    });

    it('sends a value in full when its patch would not be smaller, and drops the key on delete', async () => {
      const a = new Recorder('a', Infinity, true);
      const { hub, publish } = await setup([a]);
      await hub.subscribe(new Subscription(a, channel('positions:ACC1')), undefined, 1);
      await publish('positions:ACC1', { a: 1, b: 2 }, 'K');
      await publish('positions:ACC1', { c: 3 }, 'K');
      await publish('positions:ACC1', null, 'K');
      await publish('positions:ACC1', { c: 4 }, 'K');
      expect(a.frames.filter((f) => parse(f).type === 'event').map((f) => f.stateChange)).toEqual([
        { kind: 'value', seq: 1, delta: null },
        { kind: 'value', seq: 2, delta: null },
        { kind: 'drop' },
        { kind: 'value', seq: 4, delta: null },
      ]);
    });

    it('lets go of the values once the last subscriber that gets deltas leaves', async () => {
      const a = new Recorder('a', Infinity, true);
      const plain = new Recorder('plain');
      const { hub, publish } = await setup([a, plain]);
      const sub = new Subscription(a, channel('positions:ACC1'));
      await hub.subscribe(sub, undefined, 1);
      await hub.subscribe(new Subscription(plain, channel('positions:ACC1')), undefined, 2);
      await publish('positions:ACC1', { ...position, price: 1 }, 'EURUSD');
      hub.unsubscribe(sub);
      await publish('positions:ACC1', { ...position, price: 2 }, 'EURUSD');
      expect(plain.frames.at(-1)?.stateChange).toBeNull();
    });
  });
});
