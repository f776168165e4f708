import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  DEMO_ACCOUNTS,
  DEMO_SYMBOLS,
  startDemoFeed,
  type DemoEvent,
  type DemoFeed,
  type DemoFeedOptions,
  type DemoPosition,
} from '../../src/demo/feed.js';
import { parseChannel } from '../../src/protocol/index.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const positionCalls = (calls: DemoEvent[][]): DemoEvent[][] =>
  calls.filter((batch) => batch.every((e) => e.channel.startsWith('positions:')));

function expectValidPosition(event: DemoEvent, publishedAt: number): void {
  const info = parseChannel(event.channel);
  expect(info?.class).toBe('state');
  expect(DEMO_ACCOUNTS).toContain(info?.account);
  const p = event.data as DemoPosition;
  expect(event.key).toBe(p.symbol);
  expect(DEMO_SYMBOLS).toContain(p.symbol);
  expect(['long', 'short']).toContain(p.side);
  expect(p.size).toBeGreaterThan(0);
  expect(p.price).toBeGreaterThan(0);
  expect(p.entry_price).toBeGreaterThan(0);
  expect(Number.isInteger(p.updated_at)).toBe(true);
  expect(p.updated_at).toBe(publishedAt);
  const sign = p.side === 'long' ? 1 : -1;
  const raw = sign * (p.price - p.entry_price) * p.size;
  expect(p.pnl).toBeCloseTo(p.symbol === 'USDJPY' ? raw / p.price : raw, 1);
  expect(p.pnl_pct).toBeCloseTo(((sign * (p.price - p.entry_price)) / p.entry_price) * 100, 1);
  expect(p.pnl).toBe(Math.round(p.pnl * 100) / 100);
}

describe('demo feed', () => {
  let feed: DemoFeed | undefined;
  let calls: DemoEvent[][];
  /** Fake-clock time of each publish call, parallel to `calls`. */
  let times: number[];

  function start(overrides: Partial<DemoFeedOptions> = {}): DemoFeed {
    feed = startDemoFeed({
      publish: (events) => {
        calls.push(events);
        times.push(Date.now());
        return Promise.resolve();
      },
      random: mulberry32(42),
      ...overrides,
    });
    return feed;
  }

  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-03-02T09:00:00Z') });
    calls = [];
    times = [];
  });
  afterEach(() => {
    feed?.stop();
    feed = undefined;
    vi.useRealTimers();
  });

  it('exports three accounts and about ten distinct symbols', () => {
    expect(DEMO_ACCOUNTS).toEqual(['DEMO1', 'DEMO2', 'DEMO3']);
    expect(DEMO_SYMBOLS.length).toBeGreaterThanOrEqual(8);
    expect(new Set(DEMO_SYMBOLS).size).toBe(DEMO_SYMBOLS.length);
  });

  it('publishes a full, consistent position book on start', () => {
    start();
    expect(calls).toHaveLength(1);
    const book = calls[0] ?? [];
    for (const event of book) expectValidPosition(event, Date.now());
    for (const account of DEMO_ACCOUNTS) {
      const held = book.filter((e) => e.channel === `positions:${account}`);
      expect(held.length).toBeGreaterThanOrEqual(3);
      expect(held.length).toBeLessThanOrEqual(6);
      expect(new Set(held.map((e) => e.key)).size).toBe(held.length);
    }
    // Positions opened "earlier" so the first screen is not all zeros.
    expect(book.some((e) => (e.data as DemoPosition).pnl !== 0)).toBe(true);
  });

  it('is deterministic for a given random source', () => {
    start({ random: mulberry32(7) });
    const first = calls[0]?.map((e) => [e.channel, e.key, (e.data as DemoPosition).size]);
    feed?.stop();
    calls = [];
    start({ random: mulberry32(7) });
    expect(calls[0]?.map((e) => [e.channel, e.key, (e.data as DemoPosition).size])).toEqual(first);
  });

  it('moves prices every tick and publishes one batch per tick across accounts', async () => {
    const t0 = Date.now();
    start({ tickMs: 500 });
    const initial = new Map((calls[0] ?? []).map((e) => [`${e.channel}/${e.key}`, e.data]));
    await vi.advanceTimersByTimeAsync(5 * 500);
    const ticks = positionCalls(calls).slice(1);
    expect(ticks).toHaveLength(5);
    ticks.forEach((batch, i) => {
      expect(batch.length).toBeGreaterThan(0);
      const at = t0 + (i + 1) * 500;
      expect(times[calls.indexOf(batch)]).toBe(at);
      for (const event of batch) if (event.data !== null) expectValidPosition(event, at);
    });
    expect(ticks.some((b) => new Set(b.map((e) => e.channel)).size === DEMO_ACCOUNTS.length)).toBe(
      true,
    );
    const moved = ticks.flat().filter((e) => {
      const before = initial.get(`${e.channel}/${e.key}`) as DemoPosition | undefined;
      return before && e.data !== null && (e.data as DemoPosition).price !== before.price;
    });
    expect(moved.length).toBeGreaterThan(0);
    // Moves are a small random walk, not jumps.
    for (const e of moved) {
      const before = initial.get(`${e.channel}/${e.key}`) as DemoPosition;
      expect(Math.abs((e.data as DemoPosition).price / before.price - 1)).toBeLessThan(0.02);
    }
  });

  it('occasionally closes and opens positions, keeping each book within 3-6', async () => {
    start();
    const books = new Map<string, Map<string, DemoPosition>>();
    const apply = (batch: DemoEvent[]): void => {
      for (const e of batch) {
        if (!e.channel.startsWith('positions:') || e.key === undefined) continue;
        const book = books.get(e.channel) ?? new Map<string, DemoPosition>();
        books.set(e.channel, book);
        if (e.data === null) book.delete(e.key);
        else book.set(e.key, e.data as DemoPosition);
      }
      for (const book of books.values()) {
        expect(book.size).toBeGreaterThanOrEqual(3);
        expect(book.size).toBeLessThanOrEqual(6);
      }
    };
    apply(calls[0] ?? []);
    const opened = new Set(calls[0]?.map((e) => `${e.channel}/${e.key}`));
    for (let i = 0; i < 600; i++) {
      const before = calls.length;
      await vi.advanceTimersByTimeAsync(1000);
      for (const batch of calls.slice(before)) apply(batch);
    }
    const all = positionCalls(calls).slice(1).flat();
    const closes = all.filter((e) => e.data === null);
    const opens = all.filter((e) => e.data !== null && !opened.has(`${e.channel}/${e.key}`));
    expect(closes.length).toBeGreaterThan(0);
    expect(opens.length).toBeGreaterThan(0);
    // Rare: well under one rotation per account per 10 ticks.
    expect(closes.length).toBeLessThan(600 / 10);
  });

  it('publishes trading signals on the signals channel within 10 s', async () => {
    start();
    await vi.advanceTimersByTimeAsync(10_000);
    const signals = calls.flat().filter((e) => e.channel === 'signals');
    expect(signals.length).toBeGreaterThanOrEqual(1);
    for (const s of signals) {
      expect(s.key).toBeUndefined();
      expect(parseChannel(s.channel)?.class).toBe('stream');
      const data = s.data as Record<string, unknown>;
      expect(DEMO_SYMBOLS).toContain(data.symbol);
      expect(['buy', 'sell']).toContain(data.action);
      expect(typeof data.strength).toBe('number');
      const strength = data.strength as number;
      expect(strength).toBeGreaterThanOrEqual(0);
      expect(strength).toBeLessThanOrEqual(1);
      expect(Math.round(strength * 100) / 100).toBe(strength);
      expect(['momentum', 'mean-reversion', 'breakout', 'trend-following']).toContain(
        data.strategy,
      );
      expect(data.price as number).toBeGreaterThan(0);
      expect(typeof data.reason).toBe('string');
      expect((data.reason as string).length).toBeGreaterThan(5);
    }
  });

  it('publishes margin risk alerts on risk:<account> within a few minutes', async () => {
    start();
    await vi.advanceTimersByTimeAsync(3 * 60_000);
    const alerts = calls.flat().filter((e) => e.channel.startsWith('risk:'));
    expect(alerts.length).toBeGreaterThanOrEqual(1);
    for (const a of alerts) {
      expect(a.key).toBeUndefined();
      const info = parseChannel(a.channel);
      expect(info?.class).toBe('alert');
      expect(DEMO_ACCOUNTS).toContain(info?.account);
      const data = a.data as Record<string, unknown>;
      expect(['warning', 'critical']).toContain(data.level);
      expect(data.kind).toBe('margin_level');
      const level = data.margin_level as number;
      expect(level).toBeGreaterThan(0);
      expect(level).toBeLessThan(data.level === 'critical' ? 100 : 150);
      expect(data.message).toContain(`Margin level ${level}% on ${info?.account}`);
      expect(typeof data.ts).toBe('number');
      expect(data.ts as number).toBeLessThanOrEqual(Date.now());
    }
  });

  it('keeps running when publish rejects or throws, reporting through onError', async () => {
    const errors: unknown[] = [];
    let attempts = 0;
    start({
      publish: (events) => {
        attempts++;
        if (attempts <= 2) return Promise.reject(new Error(`down ${attempts}`));
        if (attempts === 3) throw new Error('sync failure');
        calls.push(events);
        return Promise.resolve();
      },
      onError: (err) => errors.push(err),
    });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(errors.map((e) => (e as Error).message)).toEqual(['down 1', 'down 2', 'sync failure']);
    expect(positionCalls(calls).length).toBeGreaterThan(3);
  });

  it('survives an onError handler that throws', async () => {
    let attempts = 0;
    start({
      publish: (events) => {
        attempts++;
        if (attempts === 1) return Promise.reject(new Error('down'));
        calls.push(events);
        return Promise.resolve();
      },
      onError: () => {
        throw new Error('handler bug');
      },
    });
    await vi.advanceTimersByTimeAsync(3000);
    expect(positionCalls(calls).length).toBeGreaterThan(0);
  });

  it('publishes nothing after stop() and leaves no timers behind', async () => {
    const f = start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls.length).toBeGreaterThan(1);
    f.stop();
    const count = calls.length;
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(calls).toHaveLength(count);
    f.stop(); // idempotent
  });

  it('unrefs its timers so the feed never keeps the process alive', () => {
    vi.useRealTimers();
    const spy = vi.spyOn(globalThis, 'setInterval');
    const timeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    try {
      start();
      const timers = [...spy.mock.results, ...timeoutSpy.mock.results].map(
        (r) => r.value as NodeJS.Timeout,
      );
      expect(timers.length).toBeGreaterThanOrEqual(3);
      for (const t of timers) expect(t.hasRef()).toBe(false);
    } finally {
      feed?.stop();
      spy.mockRestore();
      timeoutSpy.mockRestore();
    }
  });
});
