/**
 * The Redis backplane against a real redis-server of its own (docs/cluster.md). Each test runs
 * two RedisBackplane instances on the same Redis, as two instances of a cluster, under a
 * key prefix of its own so tests do not see each other's channels.
 */
import type { AlertAck } from '../../src/protocol/index.js';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type {
  BackplaneEvent,
  BackplaneListener,
  HistoryLimits,
  PublishInput,
} from '../../src/server/backplane/backplane.js';
import { RedisBackplane, type RedisBackplaneLog } from '../../src/server/backplane/redis.js';
import { freePort, startRedis, type TestRedis } from '../support/redis.js';

const LIMITS: HistoryLimits = {
  streamSize: 100,
  streamTtlMs: 60_000,
  alertSize: 200,
  alertTtlMs: 600_000,
};
const WAIT = { timeout: 10_000, interval: 20 };

class Recorder implements BackplaneListener {
  readonly events: BackplaneEvent[] = [];
  readonly resyncs: string[][] = [];
  readonly acks: { channel: string; epoch: string; seq: number; ack: AlertAck }[] = [];
  event(event: BackplaneEvent): void {
    this.events.push(event);
  }
  acked(channel: string, epoch: string, seq: number, ack: AlertAck): void {
    this.acks.push({ channel, epoch, seq, ack });
  }
  readonly missed: string[][] = [];
  acksMissed(channels: string[]): void {
    this.missed.push(channels);
  }
  resync(channels: string[]): void {
    this.resyncs.push(channels);
  }
  seqs(channel: string): number[] {
    return this.events.filter((e) => e.channel === channel).map((e) => e.seq);
  }
}

interface LogLine {
  level: 'warn' | 'info' | 'error';
  msg: string;
  obj: Record<string, unknown>;
}

class LogRecorder implements RedisBackplaneLog {
  readonly lines: LogLine[] = [];
  warn(obj: object, msg: string): void {
    this.lines.push({ level: 'warn', msg, obj: obj as Record<string, unknown> });
  }
  info(obj: object, msg: string): void {
    this.lines.push({ level: 'info', msg, obj: obj as Record<string, unknown> });
  }
  error(obj: object, msg: string): void {
    this.lines.push({ level: 'error', msg, obj: obj as Record<string, unknown> });
  }
}

interface Instance {
  readonly bp: RedisBackplane;
  readonly listener: Recorder;
  readonly log: LogRecorder;
}

let redis: TestRedis;
const running: RedisBackplane[] = [];
let prefixes = 0;

beforeAll(async () => {
  redis = await startRedis();
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((bp) => bp.stop()));
});

afterAll(async () => {
  await redis.stop();
});

async function instance(
  prefix: string,
  options: { limits?: HistoryLimits; now?: () => number } = {},
): Promise<Instance> {
  const listener = new Recorder();
  const log = new LogRecorder();
  const bp = new RedisBackplane({
    url: redis.url,
    limits: options.limits ?? LIMITS,
    prefix,
    log,
    ...(options.now && { now: options.now }),
  });
  await bp.start(listener);
  running.push(bp);
  return { bp, listener, log };
}

/** Two instances of one cluster: same Redis, same prefix. */
async function cluster(
  options: { limits?: HistoryLimits; now?: () => number } = {},
): Promise<{ a: Instance; b: Instance }> {
  const prefix = `t${++prefixes}:`;
  return { a: await instance(prefix, options), b: await instance(prefix, options) };
}

function event(channel: string, data: unknown, key: string | null = null): PublishInput {
  return { channel, key, data };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('RedisBackplane (two instances, one Redis)', () => {
  it('delivers an event published on A to B only while B subscribes the channel', async () => {
    const { a, b } = await cluster();
    await b.bp.subscribe('signals:barrier');
    // Pub/sub keeps publish order on a connection: once the barrier arrives, an event
    // published before it would have arrived too.
    const barrier = async (): Promise<void> => {
      const [result] = await a.bp.publish([event('signals:barrier', null)]);
      const seq = result?.seq ?? 0;
      await vi.waitFor(() => expect(b.listener.seqs('signals:barrier')).toContain(seq), WAIT);
    };

    await a.bp.publish([event('signals', { n: 1 })]);
    await barrier();
    expect(b.listener.seqs('signals')).toEqual([]);

    await b.bp.subscribe('signals');
    await a.bp.publish([event('signals', { n: 2 }), event('signals', { n: 3 })]);
    await vi.waitFor(() => expect(b.listener.seqs('signals')).toEqual([2, 3]), WAIT);

    await b.bp.unsubscribe('signals');
    await a.bp.publish([event('signals', { n: 4 })]);
    await barrier();
    expect(b.listener.seqs('signals')).toEqual([2, 3]);
    // A subscribed nothing: it stores and fans out, but receives nothing itself.
    expect(a.listener.events).toEqual([]);
  });

  it('numbers a channel 1, 2, 3 without gaps, in one epoch seen by both instances', async () => {
    const { a, b } = await cluster();
    const channel = 'signals:s1';
    await a.bp.subscribe(channel);
    await b.bp.subscribe(channel);

    const results = await a.bp.publish([
      event(channel, 'x'),
      event(channel, 'y'),
      event(channel, 'z'),
    ]);
    expect(results.map((r) => r.seq)).toEqual([1, 2, 3]);
    const epoch = results[0]?.epoch ?? '';
    expect(epoch).not.toBe('');
    expect(results.every((r) => r.epoch === epoch && r.channel === channel)).toBe(true);
    const [fromB] = await b.bp.publish([event(channel, 'w')]);
    expect(fromB).toEqual({ channel, seq: 4, epoch });

    for (const { listener } of [a, b]) {
      await vi.waitFor(() => expect(listener.seqs(channel)).toEqual([1, 2, 3, 4]), WAIT);
      expect(listener.events.map((e) => e.data)).toEqual(['x', 'y', 'z', 'w']);
      expect(listener.events.every((e) => e.epoch === epoch)).toBe(true);
    }
  });

  it('gives concurrent publishes from A and B one gapless order, the same on both', async () => {
    const { a, b } = await cluster();
    const channel = 'signals:c';
    await a.bp.subscribe(channel);
    await b.bp.subscribe(channel);

    const publishes = [];
    for (let i = 0; i < 50; i++) {
      publishes.push(a.bp.publish([event(channel, { from: 'a', i })]));
      publishes.push(b.bp.publish([event(channel, { from: 'b', i })]));
    }
    const results = (await Promise.all(publishes)).flat();
    expect(results.map((r) => r.seq).sort((x, y) => x - y)).toEqual(range(1, 100));

    await vi.waitFor(() => expect(a.listener.seqs(channel)).toEqual(range(1, 100)), WAIT);
    await vi.waitFor(() => expect(b.listener.seqs(channel)).toEqual(range(1, 100)), WAIT);
    expect(b.listener.events.map((e) => e.data)).toEqual(a.listener.events.map((e) => e.data));
    // Each instance's own publishes keep their order.
    const order = (from: string): number[] =>
      a.listener.events
        .map((e) => e.data as { from: string; i: number })
        .filter((d) => d.from === from)
        .map((d) => d.i);
    expect(order('a')).toEqual(range(0, 49));
    expect(order('b')).toEqual(range(0, 49));
  });

  it('serves on B the history and snapshot of what A published (resume on any instance)', async () => {
    let clock = 1_764_270_000_000;
    const { a, b } = await cluster({ now: () => clock });
    const channel = 'signals:h';
    const results = [];
    for (let i = 1; i <= 5; i++) {
      clock += 10;
      results.push(...(await a.bp.publish([event(channel, { i }, i % 2 ? `k${i}` : null)])));
    }
    const epoch = results[0]?.epoch;

    const all = await b.bp.history(channel, 0);
    expect(all).toMatchObject({ epoch, seq: 5, firstSeq: 1 });
    expect(all.events).toEqual(
      range(1, 5).map((i) => ({
        channel,
        seq: i,
        key: i % 2 ? `k${i}` : null,
        ts: 1_764_270_000_000 + 10 * i,
        data: { i },
      })),
    );
    expect((await b.bp.history(channel, 3)).events.map((e) => e.seq)).toEqual([4, 5]);
    const none = await b.bp.history(channel, Number.MAX_SAFE_INTEGER);
    expect(none).toEqual({ epoch, seq: 5, firstSeq: 1, events: [] });

    // A channel never published to: its epoch is created by the read and is the one its
    // first event then carries.
    const fresh = await b.bp.history('signals:fresh', 0);
    expect(fresh).toMatchObject({ seq: 0, firstSeq: 1, events: [] });
    const [first] = await a.bp.publish([event('signals:fresh', 1)]);
    expect(first).toEqual({ channel: 'signals:fresh', seq: 1, epoch: fresh.epoch });
    const emptyState = await b.bp.snapshot('positions:NEW');
    expect(emptyState).toMatchObject({ seq: 0, entries: [] });
    const [firstState] = await a.bp.publish([event('positions:NEW', { qty: 1 }, 'EURUSD')]);
    expect(firstState?.epoch).toBe(emptyState.epoch);
  });

  it('keeps the latest value per key of a state channel, and data null deletes the key', async () => {
    const { a, b } = await cluster();
    const channel = 'positions:ACC1';
    await b.bp.subscribe(channel);
    const results = await a.bp.publish([
      event(channel, { qty: 1 }, 'EURUSD'),
      event(channel, { qty: 2 }, 'GBPUSD'),
      event(channel, { qty: 3 }, 'EURUSD'),
      event(channel, null, 'GBPUSD'),
    ]);
    const snapshot = await b.bp.snapshot(channel);
    expect(snapshot).toEqual({
      epoch: results[0]?.epoch,
      seq: 4,
      entries: [{ key: 'EURUSD', data: { qty: 3 } }],
    });
    await vi.waitFor(() => expect(b.listener.seqs(channel)).toEqual([1, 2, 3, 4]), WAIT);
    expect(b.listener.events[3]).toMatchObject({ key: 'GBPUSD', data: null });
    // State channels keep no history: recovery is the snapshot.
    expect(await b.bp.history(channel, 0)).toMatchObject({ seq: 4, firstSeq: 5, events: [] });
  });

  it('stores a publish retried with the same id once, on any instance', async () => {
    const { a, b } = await cluster();
    const channel = 'signals:idem';
    await b.bp.subscribe(channel);
    const [first] = await a.bp.publish([{ ...event(channel, 'first'), id: 'order-1' }]);
    expect(first).toMatchObject({ seq: 1 });
    expect(first?.duplicate).toBeUndefined();

    const [retry] = await b.bp.publish([{ ...event(channel, 'retry'), id: 'order-1' }]);
    expect(retry).toEqual({ ...first, duplicate: true });
    // The same id twice in one batch: the second is the duplicate.
    const batch = await a.bp.publish([
      { ...event(channel, 'second'), id: 'order-2' },
      { ...event(channel, 'again'), id: 'order-2' },
    ]);
    expect(batch.map((r) => [r.seq, r.duplicate])).toEqual([
      [2, undefined],
      [2, true],
    ]);

    const history = await b.bp.history(channel, 0);
    expect(history.events.map((e) => e.data)).toEqual(['first', 'second']);
    await vi.waitFor(() => expect(b.listener.seqs(channel)).toEqual([1, 2]), WAIT);
    await a.bp.publish([event(channel, 'third')]);
    await vi.waitFor(() => expect(b.listener.seqs(channel)).toEqual([1, 2, 3]), WAIT);
  });

  it('trims stream history to its size (alerts keep more)', async () => {
    const limits = { ...LIMITS, streamSize: 3, alertSize: 5 };
    const { a, b } = await cluster({ limits });
    for (let i = 1; i <= 10; i++) {
      await a.bp.publish([event('signals:t', i), event('risk:ACC1', i)]);
    }
    const stream = await b.bp.history('signals:t', 0);
    expect(stream).toMatchObject({ seq: 10, firstSeq: 8 });
    expect(stream.events.map((e) => e.seq)).toEqual([8, 9, 10]);
    expect((await b.bp.history('signals:t', 8)).events.map((e) => e.seq)).toEqual([9, 10]);
    const alert = await b.bp.history('risk:ACC1', 0);
    expect(alert).toMatchObject({ seq: 10, firstSeq: 6 });
    expect(alert.events.map((e) => e.seq)).toEqual([6, 7, 8, 9, 10]);
  });

  it('drops history older than its TTL (alerts keep it longer)', async () => {
    let clock = 1_000_000;
    const limits = { ...LIMITS, streamTtlMs: 1000, alertTtlMs: 5000 };
    const { a, b } = await cluster({ limits, now: () => clock });
    for (const at of [0, 500, 1200]) {
      clock = 1_000_000 + at;
      await a.bp.publish([event('signals:ttl', at), event('risk:ACC2', at)]);
    }
    clock = 1_000_000 + 1600; // seq 1 (t=0) and seq 2 (t=500) are older than 1 s
    const stream = await b.bp.history('signals:ttl', 0);
    expect(stream).toMatchObject({ seq: 3, firstSeq: 3 });
    expect(stream.events.map((e) => e.data)).toEqual([1200]);
    const alert = await b.bp.history('risk:ACC2', 0);
    expect(alert).toMatchObject({ seq: 3, firstSeq: 1 });
    expect(alert.events).toHaveLength(3);

    clock = 1_000_000 + 10_000; // everything expired
    expect(await b.bp.history('signals:ttl', 0)).toMatchObject({
      seq: 3,
      firstSeq: 4,
      events: [],
    });
    expect(await a.bp.history('risk:ACC2', 0)).toMatchObject({ seq: 3, firstSeq: 4, events: [] });
  });

  it('refuses to start when Redis is unreachable, naming the URL without credentials', async () => {
    const port = await freePort();
    const bp = new RedisBackplane({
      url: `redis://archon:s3cret@127.0.0.1:${port}/0`,
      limits: LIMITS,
    });
    const failure = await bp.start(new Recorder()).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(Error);
    const message = (failure as Error).message;
    expect(message).toContain(`cannot connect to redis://127.0.0.1:${port}/0`);
    expect(message).toContain('ECONNREFUSED');
    expect(message).not.toContain('s3cret');
    expect(bp.healthy()).toBe(false);
    await expect(bp.publish([event('signals', 1)])).rejects.toThrow(/not started/);
  });

  it('replays what pub/sub lost while B was disconnected, in order, without a gap', async () => {
    const { a, b } = await cluster();
    await b.bp.subscribe('signals:o');
    await b.bp.subscribe('positions:ACC4');
    await b.bp.subscribe('positions:ACC5');
    await a.bp.publish([event('signals:o', 1), event('signals:o', 2)]);
    await vi.waitFor(() => expect(b.listener.seqs('signals:o')).toEqual([1, 2]), WAIT);

    // Only the subscriber connections drop (B's is the only one subscribed to anything):
    // Redis keeps its data, A's publishes still succeed, B's pub/sub misses them.
    const admin = new Redis(redis.url, { lazyConnect: true });
    try {
      await admin.connect();
      const killed = await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      expect(killed).toBe(1);
      // B reconnects after ~100 ms: these land while it is away.
      await a.bp.publish([event('signals:o', 3)]);
      await a.bp.publish([event('signals:o', 4), event('positions:ACC4', { qty: 1 }, 'EURUSD')]);
      await a.bp.publish([event('signals:o', 5)]);
    } finally {
      admin.disconnect();
    }

    await vi.waitFor(() => expect(b.listener.seqs('signals:o')).toEqual([1, 2, 3, 4, 5]), WAIT);
    expect(b.listener.events.filter((e) => e.channel === 'signals:o').map((e) => e.data)).toEqual([
      1, 2, 3, 4, 5,
    ]);
    // The state channel moved while away: a snapshot is the way back, so it is resynced;
    // the one that did not move is not.
    await vi.waitFor(() => expect(b.listener.resyncs).toEqual([['positions:ACC4']]), WAIT);
    const restored = b.log.lines.find((l) => l.msg === 'Redis backplane subscriptions restored');
    expect(restored?.obj).toMatchObject({ replayed: 3, resynced: ['positions:ACC4'] });
    expect(b.log.lines.some((l) => l.level === 'warn' && /subscriber/.test(l.msg))).toBe(true);

    // Live delivery goes on after the replay.
    await a.bp.publish([event('signals:o', 6)]);
    await vi.waitFor(() => expect(b.listener.seqs('signals:o')).toEqual(range(1, 6)), WAIT);
    expect(a.bp.healthy() && b.bp.healthy()).toBe(true);
  });

  it('replays an event that expired while B was away as itself (the hub sends it as expired), not as a loss', async () => {
    const { a, b } = await cluster();
    await b.bp.subscribe('signals:x');
    await a.bp.publish([event('signals:x', 1)]);
    await vi.waitFor(() => expect(b.listener.seqs('signals:x')).toEqual([1]), WAIT);
    const admin = new Redis(redis.url, { lazyConnect: true });
    try {
      await admin.connect();
      expect(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')).toBe(1);
      await a.bp.publish([{ ...event('signals:x', 2), ttl: 0.001 }, event('signals:x', 3)]);
    } finally {
      admin.disconnect();
    }
    await vi.waitFor(() => expect(b.listener.seqs('signals:x')).toEqual([1, 2, 3]), WAIT);
    expect(b.listener.resyncs).toEqual([]);
    expect(b.listener.events.find((e) => e.seq === 2)?.expires_at).toBeDefined();
  });

  it('hands over from replay to live without a gap or a duplicate while A keeps publishing', async () => {
    // Room for everything published during the outage: this test is about the hand-over,
    // not about trimming.
    const { a, b } = await cluster({ limits: { ...LIMITS, alertSize: 100_000 } });
    const channel = 'risk:ACC6';
    await b.bp.subscribe(channel);
    await b.bp.subscribe('system');
    const admin = new Redis(redis.url, { lazyConnect: true });
    await admin.connect();
    let stop = false;
    let published = 0;
    // Three publishers without pause, before, during and after the disconnect, so live
    // events keep arriving while the replay is being read.
    const loop = async (): Promise<void> => {
      while (!stop) {
        const [result] = await a.bp.publish([event(channel, 'x')]);
        published = Math.max(published, result?.seq ?? 0);
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    const publisher = Promise.all([loop(), loop(), loop()]);
    try {
      await vi.waitFor(() => expect(b.listener.seqs(channel).length).toBeGreaterThan(20), WAIT);
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await vi.waitFor(() => {
        const restored = b.log.lines.filter(
          (l) => l.msg === 'Redis backplane subscriptions restored',
        );
        expect(restored).toHaveLength(1);
      }, WAIT);
      // Live publishing goes on a moment after the restore: the hand-over is the subject.
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      stop = true;
      await publisher;
      admin.disconnect();
    }
    // The system channel (not replayed) is live again too; and being published after every
    // risk event, it arrives after them on B's connection: a late duplicate would show.
    await a.bp.publish([event('system', { message: 'back' })]);
    await vi.waitFor(() => expect(b.listener.seqs('system')).toHaveLength(1), WAIT);
    expect(b.listener.seqs(channel)).toEqual(range(1, published));
    expect(b.listener.resyncs).toEqual([]);
    // Acknowledgements are not replayed: the hub is asked to send the unacked list again.
    expect(b.listener.missed).toEqual([[channel]]);
    expect(published).toBeGreaterThan(40);
  });

  // Last: restarting Redis wipes every test's data.
  it('fails fast while Redis is down, then resyncs subscribed channels into a new epoch', async () => {
    const { a, b } = await cluster();
    await a.bp.subscribe('signals:r');
    await b.bp.subscribe('signals:r');
    await b.bp.subscribe('positions:ACC3');
    const [before] = await a.bp.publish([event('signals:r', 'before')]);
    await vi.waitFor(() => expect(b.listener.seqs('signals:r')).toEqual([1]), WAIT);

    await redis.stop();
    await vi.waitFor(() => expect([a.bp.healthy(), b.bp.healthy()]).toEqual([false, false]), WAIT);
    // Rejects rather than waiting for Redis to come back ("accepted means stored").
    const outcome = await Promise.race([
      a.bp.publish([event('signals:r', 'lost')]).then(
        () => 'stored',
        (err: unknown) => err,
      ),
      new Promise((resolve) => setTimeout(() => resolve('still waiting after 2 s'), 2000)),
    ]);
    expect(outcome).toBeInstanceOf(Error);
    await expect(b.bp.history('signals:r', 0)).rejects.toThrow();
    expect(a.log.lines.some((l) => l.level === 'warn' && /down/.test(l.msg))).toBe(true);

    await redis.restart(); // empty: the channels' epochs are gone
    await vi.waitFor(() => expect([a.bp.healthy(), b.bp.healthy()]).toEqual([true, true]), WAIT);
    await vi.waitFor(() => {
      expect(b.listener.resyncs.flat().sort()).toEqual(['positions:ACC3', 'signals:r']);
      expect(a.listener.resyncs.flat()).toEqual(['signals:r']);
    }, WAIT);
    expect(a.log.lines.some((l) => l.level === 'info' && /back/.test(l.msg))).toBe(true);

    const [after] = await a.bp.publish([event('signals:r', 'after')]);
    expect(after?.seq).toBe(1);
    expect(after?.epoch).not.toBe(before?.epoch);
    expect((await b.bp.history('signals:r', 0)).epoch).toBe(after?.epoch);
    await vi.waitFor(() => expect(b.listener.seqs('signals:r')).toEqual([1, 1]), WAIT);
    expect(b.listener.events.at(-1)).toMatchObject({ epoch: after?.epoch, data: 'after' });
  });
});
