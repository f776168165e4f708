/** Progress on stderr (src/cli/format.ts): only for slow work, a live line on a terminal,
 * one line per step for doctor (on a terminal or not), and nothing for --json. */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Steps, withProgress, type ProgressStream } from '../../src/cli/format.js';

function stream(isTTY: boolean): ProgressStream & { text: () => string } {
  const chunks: string[] = [];
  return { isTTY, write: (t: string) => chunks.push(t), text: () => chunks.join('') };
}

function later<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(value), ms));
}

describe('withProgress', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('shows nothing for work done within a second', async () => {
    const s = stream(true);
    const done = withProgress('asking', false, later(900, 'ok'), { stream: s });
    await vi.advanceTimersByTimeAsync(900);
    expect(await done).toBe('ok');
    expect(s.text()).toBe('');
  });

  it('updates a countdown on a terminal every second and clears the line at the end', async () => {
    const s = stream(true);
    const began = Date.now();
    const done = withProgress('check-lb', false, later(3500, 'ok'), {
      stream: s,
      tick: () => {
        const n = Math.floor((Date.now() - began) / 1000);
        return `holding the connection idle: ${n} s of 3 s`;
      },
    });
    await vi.advanceTimersByTimeAsync(3500);
    await done;
    const frames = s
      .text()
      .split('\r\x1b[K')
      .filter((f) => f.length > 0);
    const seconds = [...new Set(frames.map((f) => /idle: (\d) s/.exec(f)?.[1]))];
    expect(seconds).toEqual(['1', '2', '3']);
    expect(frames[0]).toMatch(/^[|/\\-] check-lb… holding the connection idle: 1 s of 3 s$/);
    expect(s.text().endsWith('\r\x1b[K')).toBe(true);
  });

  it('writes one plain line when stderr is not a terminal', async () => {
    const s = stream(false);
    const done = withProgress('check-lb', false, later(5000, 1), { stream: s, tick: () => 'x' });
    await vi.advanceTimersByTimeAsync(5000);
    await done;
    expect(s.text()).toBe('check-lb…\n');
  });

  it('is silent with --json', async () => {
    const s = stream(true);
    const done = withProgress('check-lb', true, later(5000, 1), { stream: s });
    await vi.advanceTimersByTimeAsync(5000);
    await done;
    expect(s.text()).toBe('');
  });
});

describe('Steps', () => {
  it('writes one line per step on a terminal, with the outcome', async () => {
    const s = stream(true);
    const steps = new Steps(false, s);
    await steps.run(
      'status',
      () => Promise.resolve(3),
      (n) => `ok (${n} instances)`,
    );
    await steps.run('stats', () => Promise.resolve(null));
    await expect(steps.run('health', () => Promise.reject(new Error('down')))).rejects.toThrow(
      'down',
    );
    expect(s.text()).toBe(
      'checking status… ok (3 instances)\nchecking stats… ok\nchecking health… failed\n',
    );
  });

  it('writes each whole line when its step ends off a terminal, nothing for a failed one', async () => {
    const s = stream(false);
    const steps = new Steps(false, s);
    await steps.run(
      'status',
      () => Promise.resolve(3),
      (n) => `ok (${n} instances)`,
    );
    await expect(steps.run('health', () => Promise.reject(new Error('down')))).rejects.toThrow(
      'down',
    );
    // The command's one-line error says what failed.
    expect(s.text()).toBe('checking status… ok (3 instances)\n');
  });

  it('writes nothing with --json, on a terminal or not', async () => {
    for (const tty of [true, false]) {
      const s = stream(tty);
      await new Steps(true, s).run('status', () => Promise.resolve(1));
      expect(s.text()).toBe('');
    }
  });
});
