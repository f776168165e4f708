/** The memory backplane of embedded mode, on an injected clock (no timers, no waiting). */
import { describe, expect, it } from 'vitest';
import { historyCovers, type BackplaneEvent } from '../../src/server/backplane/backplane.js';
import { MemoryBackplane } from '../../src/server/backplane/memory.js';

/** After the turn in which the backplane fans out what was published before. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const LIMITS = { streamSize: 3, streamTtlMs: 1000, alertSize: 5, alertTtlMs: 10_000 };

function backplane() {
  let now = 1_000_000;
  const events: BackplaneEvent[] = [];
  const bp = new MemoryBackplane(LIMITS, () => now);
  void bp.start({
    event: (e) => events.push(e),
    resync: () => {},
    acked: () => {},
    acksMissed: () => {},
  });
  return {
    bp,
    events,
    advance: (ms: number) => (now += ms),
    publish: (channel: string, data: unknown, extra: { key?: string; id?: string } = {}) =>
      bp.publish([{ channel, key: extra.key ?? null, data, id: extra.id }]),
  };
}

describe('MemoryBackplane', () => {
  it('numbers each channel on its own, without gaps', async () => {
    const { publish } = backplane();
    expect((await publish('signals', 1))[0]?.seq).toBe(1);
    expect((await publish('signals', 2))[0]?.seq).toBe(2);
    expect((await publish('signals:other', 1))[0]?.seq).toBe(1);
  });

  it('keeps a stream history bounded by size and by age', async () => {
    const { bp, publish, advance } = backplane();
    for (let n = 1; n <= 5; n++) await publish('signals', n);
    let read = await bp.history('signals', 0);
    expect(read.events.map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(historyCovers(read, 2)).toBe(true);
    expect(historyCovers(read, 1)).toBe(false);
    advance(1001);
    read = await bp.history('signals', 0);
    expect(read.events).toEqual([]);
    expect(read.seq).toBe(5);
    expect(historyCovers(read, 4)).toBe(false);
    expect(historyCovers(read, 5)).toBe(true);
  });

  it('keeps alerts longer than streams', async () => {
    const { bp, publish, advance } = backplane();
    await publish('risk:ACC1', { level: 'warning' });
    advance(5000);
    expect((await bp.history('risk:ACC1', 0)).events.map((e) => e.seq)).toEqual([1]);
  });

  it('answers a retry with the same id as a duplicate, per channel', async () => {
    const { publish } = backplane();
    const [first] = await publish('signals', 'a', { id: 'x:1' });
    const [retry] = await publish('signals', 'b', { id: 'x:1' });
    expect(retry).toEqual({ ...first, duplicate: true });
    const [other] = await publish('signals:x', 'c', { id: '1' });
    expect(other?.duplicate).toBeUndefined();
    expect(other?.seq).toBe(1);
  });

  it('keeps the latest value per key of a state channel and deletes on null', async () => {
    const { bp, publish } = backplane();
    await publish('positions:ACC1', { qty: 1 }, { key: 'EURUSD' });
    await publish('positions:ACC1', { qty: 2 }, { key: 'EURUSD' });
    await publish('positions:ACC1', { qty: 5 }, { key: 'GBPUSD' });
    await publish('positions:ACC1', null, { key: 'GBPUSD' });
    expect(await bp.snapshot('positions:ACC1')).toMatchObject({
      seq: 4,
      entries: [{ key: 'EURUSD', data: { qty: 2 } }],
    });
  });

  it('hands events only of channels subscribed here to the listener', async () => {
    const { bp, events, publish } = backplane();
    await bp.subscribe('signals');
    await publish('signals', 1);
    await publish('signals:elsewhere', 1);
    await nextTurn();
    expect(events.map((e) => e.channel)).toEqual(['signals']);
  });

  it('answers a publish before its fan-out, and fans out in publish order', async () => {
    const { bp, events, publish } = backplane();
    await bp.subscribe('signals');
    await publish('signals', 1);
    await bp.publish([
      { channel: 'signals', key: null, data: 2 },
      { channel: 'signals', key: null, data: 3 },
    ]);
    // Stored and answered; not one subscriber has been handed anything yet.
    expect(events).toEqual([]);
    await nextTurn();
    expect(events.map((e) => [e.seq, e.data])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it('stays stored when the listener throws: fan-out never fails a publish', async () => {
    const bp = new MemoryBackplane(LIMITS, () => 0);
    await bp.start({
      event: () => {
        throw new Error('listener broke');
      },
      resync: () => {},
      acked: () => {},
      acksMissed: () => {},
    });
    await bp.subscribe('signals');
    const [result] = await bp.publish([{ channel: 'signals', key: null, data: 1 }]);
    expect(result?.seq).toBe(1);
    expect((await bp.history('signals', 0)).events.map((e) => e.seq)).toEqual([1]);
  });
});
