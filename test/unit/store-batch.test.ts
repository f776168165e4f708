import { describe, expect, it } from 'vitest';
import type { StoreChange } from '../../src/client/index.js';
import { StoreBatcher } from '../../src/client/index.js';

type P = { price: number };
const set = (seq: number, key: string, price: number, previous?: number): StoreChange<P> => ({
  kind: 'set',
  seq,
  key,
  value: { price },
  previous: previous === undefined ? undefined : { price: previous },
});
const del = (seq: number, key: string, previous: number): StoreChange<P> => ({
  kind: 'delete',
  seq,
  key,
  previous: { price: previous },
});

describe('StoreBatcher', () => {
  it('has nothing to take before a change', () => {
    const b = new StoreBatcher<P>();
    expect(b.pending).toBe(false);
    expect(b.take()).toBeNull();
  });

  it('keeps the latest value of each key and the value before the batch', () => {
    const b = new StoreBatcher<P>();
    b.add(set(1, 'A', 10, 9));
    b.add(set(2, 'B', 20));
    b.add(set(3, 'A', 11, 10));
    b.add(set(4, 'A', 12, 11));
    const batch = b.take();
    expect(batch?.replaced).toBe(false);
    expect(batch?.seq).toBe(4);
    expect([...(batch?.changes ?? [])]).toEqual([
      ['A', { value: { price: 12 }, before: { price: 9 } }],
      ['B', { value: { price: 20 }, before: undefined }],
    ]);
    expect(b.take()).toBeNull();
  });

  it('never coalesces a delete away: the key is reported deleted unless set again after it', () => {
    const b = new StoreBatcher<P>();
    b.add(set(1, 'A', 10, 9));
    b.add(del(2, 'A', 10));
    expect(b.take()?.changes.get('A')).toEqual({ value: undefined, before: { price: 9 } });
    b.add(del(3, 'B', 5));
    b.add(set(4, 'B', 6));
    expect(b.take()?.changes.get('B')).toEqual({ value: { price: 6 }, before: { price: 5 } });
  });

  it('says the content was replaced after a snapshot, with only the changes after it', () => {
    const b = new StoreBatcher<P>();
    b.add(set(1, 'A', 10, 9));
    b.add({ kind: 'snapshot', seq: 5, entries: new Map([['A', { price: 7 }]]) });
    b.add(set(6, 'B', 1));
    const batch = b.take();
    expect(batch?.replaced).toBe(true);
    expect([...(batch?.changes.keys() ?? [])]).toEqual(['B']);
    expect(b.take()).toBeNull();
  });
});
