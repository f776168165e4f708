/**
 * The client SDK's pure parts, in-process: the backoff curve, the close-code policy, the plan
 * that merges a history read into a resume, the stale-link watchdog (fake timers), and the
 * version and URL helpers.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Backoff } from '../../src/client/backoff.js';
import { closePolicy } from '../../src/client/close-policy.js';
import { httpBaseFromWs, historyUrl } from '../../src/client/history.js';
import { planRecovery, type RecoveryStep } from '../../src/client/recovery.js';
import { clientVersion, SDK_NAME, SDK_VERSION } from '../../src/client/version.js';
import { Watchdog } from '../../src/client/watchdog.js';
import type { HistoryAnswer, StoredEvent } from '../../src/protocol/index.js';

/** A deterministic uniform generator (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Backoff', () => {
  it('doubles the jitter window from base up to cap', () => {
    const backoff = new Backoff({ baseMs: 500, capMs: 20_000, random: () => 0.999999 });
    const delays = Array.from({ length: 9 }, () => Math.round(backoff.next()));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16_000, 20_000, 20_000, 20_000]);
    expect(backoff.attempt).toBe(9);
  });

  it('draws every delay from [0, min(cap, base·2^n)] (full jitter)', () => {
    const random = seeded(42);
    const backoff = new Backoff({ baseMs: 500, capMs: 20_000, random });
    const delays: number[] = [];
    for (let n = 0; n < 200; n++) {
      const window = backoff.window(n);
      const delay = backoff.next();
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(window);
      delays.push(delay / window);
    }
    // Spread over the whole window, not bunched at its end (that would be no jitter).
    expect(Math.min(...delays)).toBeLessThan(0.1);
    expect(Math.max(...delays)).toBeGreaterThan(0.9);
    expect(new Backoff({ random: () => 0 }).next()).toBe(0);
  });

  it('starts over after a connection that stayed up for resetAfterMs, not after a short one', () => {
    const backoff = new Backoff({ baseMs: 100, capMs: 10_000, resetAfterMs: 10_000 });
    for (let i = 0; i < 4; i++) backoff.next();
    backoff.up(1_000);
    backoff.down(10_999); // up 9.999 s: the server may be dropping every client
    expect(backoff.attempt).toBe(4);
    expect(backoff.window(backoff.attempt)).toBe(1600);
    backoff.up(20_000);
    backoff.down(30_000); // up 10 s: stable
    expect(backoff.attempt).toBe(0);
    expect(backoff.window(backoff.attempt)).toBe(100);
  });

  it('waits at least half of a slow window when the server asked to back off', () => {
    const low = new Backoff({ baseMs: 500, capMs: 20_000, slowMs: 5000, random: () => 0 });
    expect(low.next(true)).toBe(2500);
    const high = new Backoff({ baseMs: 500, capMs: 20_000, slowMs: 5000, random: () => 0.999999 });
    expect(Math.round(high.next(true))).toBe(5000);
    // Past the slow window the exponential one is larger: half of it at least.
    for (let i = 0; i < 6; i++) low.next();
    expect(low.next(true)).toBe(10_000);
  });
});

describe('close policy', () => {
  it('maps close codes to the actions of docs/protocol.md', () => {
    const table = Object.fromEntries(
      [1000, 1002, 1005, 1006, 1007, 1008, 1009, 1011, 1012, 1013, 4001, 4003, 4008, 4009]
        .concat([4010, 4400])
        .map((code) => [code, closePolicy(code)]),
    );
    expect(table).toEqual({
      1000: 'stop',
      1002: 'stop',
      1005: 'reconnect',
      1006: 'reconnect',
      1007: 'stop',
      1008: 'backoff',
      1009: 'stop',
      1011: 'reconnect',
      1012: 'reconnect',
      1013: 'backoff',
      4001: 'refresh-token',
      4003: 'stop',
      4008: 'reconnect',
      4009: 'reconnect',
      4010: 'reconnect',
      4400: 'stop',
    });
  });
});

describe('planRecovery', () => {
  const event = (seq: number): StoredEvent => ({
    channel: 'signals',
    seq,
    key: null,
    ts: 1,
    data: { seq },
  });
  const answer = (epoch: string, seqs: number[], extra: Partial<HistoryAnswer> = {}) =>
    ({
      channel: 'signals',
      epoch,
      seq: Math.max(0, ...seqs),
      first_seq: seqs[0] ?? 1,
      complete: false,
      epoch_changed: false,
      events: seqs.map(event),
      ...extra,
    }) satisfies HistoryAnswer;
  const show = (steps: RecoveryStep[]) =>
    steps.map((s) =>
      s.kind === 'event'
        ? s.event.seq
        : `gap ${s.gap.reason} ${s.gap.after.epoch}:${s.gap.after.seq}→${s.gap.before.epoch}:${s.gap.before.seq}`,
    );

  it('hands over the whole hole when history still holds it', () => {
    const steps = planRecovery(
      'signals',
      { epoch: 'A', seq: 3 },
      { epoch: 'A', seq: 6 },
      answer('A', [4, 5, 6, 7], { complete: true }),
    );
    expect(show(steps)).toEqual([4, 5, 6]); // 7 arrives live
  });

  it('takes the holes of a complete answer for expired events, not for a gap', () => {
    const steps = planRecovery(
      'signals',
      { epoch: 'A', seq: 3 },
      { epoch: 'A', seq: 9 },
      answer('A', [5, 7], { seq: 9, complete: true }),
    );
    expect(show(steps)).toEqual([5, 7]);
  });

  it('reports what history no longer holds as a gap before the rest', () => {
    const steps = planRecovery(
      'signals',
      { epoch: 'A', seq: 3 },
      { epoch: 'A', seq: 9 },
      answer('A', [7, 8, 9]),
    );
    expect(show(steps)).toEqual(['gap trimmed A:3→A:7', 7, 8, 9]);
  });

  it('reports a gap up to the live events when history holds none of the hole', () => {
    const steps = planRecovery(
      'signals',
      { epoch: 'A', seq: 3 },
      { epoch: 'A', seq: 9 },
      answer('A', []),
    );
    expect(show(steps)).toEqual(['gap trimmed A:3→A:10']);
  });

  it('across an epoch change: the old epoch is lost, the new one comes from history', () => {
    const steps = planRecovery(
      'signals',
      { epoch: 'A', seq: 3 },
      { epoch: 'B', seq: 2 },
      answer('B', [1, 2], { epoch_changed: true }),
    );
    expect(show(steps)).toEqual(['gap epoch-changed A:3→B:1', 1, 2]);
    const none = planRecovery(
      'signals',
      { epoch: 'A', seq: 3 },
      { epoch: 'B', seq: 0 },
      answer('B', [], { epoch_changed: true }),
    );
    expect(show(none)).toEqual(['gap epoch-changed A:3→B:1']);
  });

  it('drops duplicate and out-of-order seqs from history, keeping seq order', () => {
    const steps = planRecovery(
      'signals',
      { epoch: 'A', seq: 1 },
      { epoch: 'A', seq: 4 },
      answer('A', [3, 2, 3, 4, 1]),
    );
    expect(show(steps)).toEqual([2, 3, 4]);
  });

  it('reports the whole hole when history cannot be read or moved to yet another epoch', () => {
    const since = { epoch: 'A', seq: 3 };
    expect(show(planRecovery('signals', since, { epoch: 'A', seq: 5 }, null))).toEqual([
      'gap history-unavailable A:3→A:6',
    ]);
    expect(show(planRecovery('signals', since, { epoch: 'B', seq: 5 }, answer('C', [1])))).toEqual([
      'gap epoch-changed A:3→B:6',
    ]);
  });
});

describe('Watchdog', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function watch() {
    const calls: string[] = [];
    const dog = new Watchdog({ stale: () => calls.push('stale'), dead: () => calls.push('dead') });
    return { dog, calls };
  }

  it('calls a quiet link stale, then dead, once each', () => {
    vi.useFakeTimers();
    const { dog, calls } = watch();
    dog.start(35_000, 40_000);
    vi.advanceTimersByTime(34_999);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(calls).toEqual(['stale']);
    vi.advanceTimersByTime(5000);
    expect(calls).toEqual(['stale', 'dead']);
    vi.advanceTimersByTime(60_000);
    expect(calls).toEqual(['stale', 'dead']);
  });

  it('counts quiet from the last message heard', () => {
    vi.useFakeTimers();
    const { dog, calls } = watch();
    dog.start(35_000, 40_000);
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(30_000);
      dog.heard(); // a ping every 30 s
    }
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(36_000);
    dog.heard(); // stale, then heard again in time
    vi.advanceTimersByTime(36_000);
    expect(calls).toEqual(['stale', 'stale']);
    dog.stop();
    vi.advanceTimersByTime(60_000);
    expect(calls).toEqual(['stale', 'stale']);
  });

  it('after a blocked event loop, gives queued messages one turn before calling the link dead', () => {
    vi.useFakeTimers();
    const { dog, calls } = watch();
    dog.start(35_000, 40_000);
    vi.setSystemTime(Date.now() + 120_000); // the page slept; the timer has not run yet
    vi.advanceTimersByTime(35_000);
    expect(calls).toEqual([]);
    dog.heard(); // the pings that waited in the socket
    vi.advanceTimersByTime(0);
    expect(calls).toEqual([]);
    vi.advanceTimersByTime(40_000);
    expect(calls).toEqual(['stale', 'dead']);
  });
});

describe('version and URLs', () => {
  it('keeps SDK_VERSION equal to the package version', () => {
    const pkg = JSON.parse(
      readFileSync(new URL('../../package.json', import.meta.url), 'utf8'),
    ) as {
      version: string;
    };
    expect(SDK_VERSION).toBe(pkg.version);
    expect(clientVersion()).toBe(`${SDK_NAME}/${SDK_VERSION}`);
  });

  it("puts the application's name first and fits hello's 100 characters", () => {
    expect(clientVersion('my-dashboard/1.4.2')).toBe(
      `my-dashboard/1.4.2 ${SDK_NAME}/${SDK_VERSION}`,
    );
    const long = clientVersion('x'.repeat(300));
    expect(long.length).toBeLessThanOrEqual(100);
    expect(long.endsWith(` ${SDK_NAME}/${SDK_VERSION}`)).toBe(true);
  });

  it('derives the HTTP base URL from the WebSocket URL', () => {
    expect(httpBaseFromWs('wss://api.archon.ai/api/v1/ws')).toBe('https://api.archon.ai');
    expect(httpBaseFromWs('ws://127.0.0.1:8000/api/v1/ws')).toBe('http://127.0.0.1:8000');
    expect(httpBaseFromWs('wss://h.example/archon/api/v1/ws/')).toBe('https://h.example/archon');
    expect(httpBaseFromWs('ws://h.example/other')).toBe('http://h.example');
    expect(historyUrl('https://h.example/', 'signals:a b', { epoch: 'x/y', seq: 12 })).toBe(
      'https://h.example/api/v1/history?channel=signals%3Aa+b&since_seq=12&epoch=x%2Fy',
    );
  });
});
