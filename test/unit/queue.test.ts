import { describe, expect, it } from 'vitest';
import { Frame, type FrameOptions } from '../../src/server/frame.js';
import { OutboundQueue } from '../../src/server/queue.js';

const frame = (text: string, options: Partial<FrameOptions> = {}) =>
  new Frame(Buffer.from(text), { cls: 'stream', ...options });
const payload = (f: Frame | undefined) => f?.wire.subarray(f.wire.length - f.size).toString();

describe('OutboundQueue', () => {
  it('returns frames in the order they were queued', () => {
    const q = new OutboundQueue(10, 1 << 20);
    for (const t of ['a', 'b', 'c']) q.enqueue(frame(t), 0);
    expect([q.shift(), q.shift(), q.shift()].map(payload)).toEqual(['a', 'b', 'c']);
    expect(q.shift()).toBeUndefined();
    expect(q.depth).toBe(0);
  });

  it('puts alert frames ahead of stream and state frames already queued', () => {
    const q = new OutboundQueue(10, 1 << 20);
    q.enqueue(frame('s1'), 0);
    q.enqueue(frame('p1', { cls: 'state', conflateKey: 'positions:A\0X' }), 0);
    q.enqueue(frame('alert', { cls: 'alert' }), 0);
    expect(payload(q.shift())).toBe('alert');
    expect(payload(q.shift())).toBe('s1');
  });

  it('replaces a queued state value of the same key in place and keeps its position', () => {
    const q = new OutboundQueue(10, 1 << 20);
    q.enqueue(frame('p:X=1', { cls: 'state', conflateKey: 'k\0X' }), 0);
    q.enqueue(frame('s1'), 0);
    expect(q.enqueue(frame('p:X=2', { cls: 'state', conflateKey: 'k\0X' }), 5)).toBe('conflated');
    expect(q.depth).toBe(2);
    expect(payload(q.shift())).toBe('p:X=2');
    expect(payload(q.shift())).toBe('s1');
  });

  it('never conflates alerts or stream events', () => {
    const q = new OutboundQueue(10, 1 << 20);
    q.enqueue(frame('a1', { cls: 'alert' }), 0);
    q.enqueue(frame('a2', { cls: 'alert' }), 0);
    q.enqueue(frame('s1'), 0);
    q.enqueue(frame('s2'), 0);
    expect(q.depth).toBe(4);
  });

  it('keeps the first queue time through conflation, so a stuck client still times out', () => {
    const q = new OutboundQueue(10, 1 << 20);
    q.enqueue(frame('v1', { cls: 'state', conflateKey: 'k' }), 100);
    q.enqueue(frame('v2', { cls: 'state', conflateKey: 'k' }), 900);
    expect(q.oldestQueuedAt()).toBe(100);
  });

  it('reports overflow at the count bound instead of dropping', () => {
    const q = new OutboundQueue(2, 1 << 20);
    expect(q.enqueue(frame('a'), 0)).toBe('queued');
    expect(q.enqueue(frame('b'), 0)).toBe('queued');
    expect(q.enqueue(frame('c'), 0)).toBe('overflow');
    expect(q.depth).toBe(2);
  });

  it('reports overflow at the byte bound', () => {
    const q = new OutboundQueue(100, 10);
    expect(q.enqueue(frame('12345678'), 0)).toBe('queued');
    expect(q.enqueue(frame('123'), 0)).toBe('overflow');
    expect(q.bytes).toBe(8);
  });

  it('settles a frame once every queue holding it has written or dropped it', () => {
    const settled: Frame[] = [];
    const f = new Frame(Buffer.from('x'), { cls: 'stream', onSettled: (fr) => settled.push(fr) });
    const q1 = new OutboundQueue(10, 1 << 20);
    const q2 = new OutboundQueue(10, 1 << 20);
    f.retain(); // the publisher's hold during fan-out
    q1.enqueue(f, 0);
    q2.enqueue(f, 0);
    f.release();
    q1.shift()?.release();
    expect(settled).toHaveLength(0);
    expect(q2.clear()).toBe(1);
    expect(settled).toEqual([f]);
  });

  it('frames each message once as an unmasked final text frame', () => {
    const f = frame('hello');
    expect([...f.wire.subarray(0, 2)]).toEqual([0x81, 5]);
    expect(f.wire.subarray(2).toString()).toBe('hello');
    const big = frame('x'.repeat(300));
    expect([...big.wire.subarray(0, 4)]).toEqual([0x81, 126, 1, 44]);
  });
});
