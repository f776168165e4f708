/** A clock tests move by hand (src/server/clock.ts): timers fire when time passes them. */
import type { Clock } from '../../src/server/clock.js';

interface Timer {
  readonly at: number;
  readonly fn: () => void;
}

export class ManualClock implements Clock {
  private readonly timers = new Set<Timer>();

  constructor(private time = Date.now()) {}

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = { at: this.time + Math.max(0, ms), fn };
    this.timers.add(timer);
    return () => this.timers.delete(timer);
  }

  /** Moves time forward by `ms`, firing every timer due on the way in order of its time. */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: Timer | null = null;
      for (const t of this.timers) if (t.at <= end && (next === null || t.at < next.at)) next = t;
      if (next === null) break;
      this.timers.delete(next);
      this.time = next.at;
      next.fn();
    }
    this.time = end;
  }

  /** Timers waiting to fire. */
  get pending(): number {
    return this.timers.size;
  }
}
