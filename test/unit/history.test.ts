import { describe, expect, it } from 'vitest';
import { History } from '../../src/server/history.js';

const event = (seq: number) => ({ channel: 'signals', seq, key: null, ts: seq, data: { seq } });

describe('History', () => {
  it('returns the events after a seq, oldest first', () => {
    const h = new History(10, 60_000);
    for (let s = 1; s <= 5; s++) h.append(event(s), 0);
    expect(h.since(2, 0).map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(h.since(5, 0)).toEqual([]);
    expect(h.firstSeq(0)).toBe(1);
  });

  it('keeps at most its size, dropping the oldest', () => {
    const h = new History(3, 60_000);
    for (let s = 1; s <= 10; s++) h.append(event(s), 0);
    expect(h.size).toBe(3);
    expect(h.firstSeq(0)).toBe(8);
    expect(h.since(0, 0).map((e) => e.seq)).toEqual([8, 9, 10]);
  });

  it('forgets events older than its TTL', () => {
    const h = new History(100, 1000);
    h.append(event(1), 0);
    h.append(event(2), 600);
    expect(h.firstSeq(1200)).toBe(2);
    expect(h.firstSeq(1700)).toBeNull();
    expect(h.since(0, 1700)).toEqual([]);
  });

  it('stays correct across many appends (internal compaction)', () => {
    const h = new History(50, 60_000);
    for (let s = 1; s <= 5000; s++) h.append(event(s), 0);
    expect(h.since(4990, 0).map((e) => e.seq)).toEqual([
      4991, 4992, 4993, 4994, 4995, 4996, 4997, 4998, 4999, 5000,
    ]);
    expect(h.firstSeq(0)).toBe(4951);
  });
});
