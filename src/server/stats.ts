/**
 * Per-minute counters for the last hour: what RB-003's "did it start suddenly or
 * gradually?" and the stats endpoint read. The hot path only increments fields of the
 * current bucket; a one-second tick rolls buckets over at each minute boundary.
 */
import type { StatsAnswer } from '../protocol/index.js';

export interface MinuteBucket {
  /** Start of the minute, ms since epoch. */
  readonly minute: number;
  /** Most connections open at once during the minute. */
  connections: number;
  messages: number;
  errors: number;
  connects: number;
  disconnects: number;
  readonly errorsByType: Record<string, number>;
  readonly disconnectsByCode: Record<string, number>;
}

export const SERIES_MINUTES = 60;

function bucket(minute: number, connections: number): MinuteBucket {
  return {
    minute,
    connections,
    messages: 0,
    errors: 0,
    connects: 0,
    disconnects: 0,
    errorsByType: {},
    disconnectsByCode: {},
  };
}

export function minuteOf(ms: number): number {
  return ms - (ms % 60_000);
}

export class MinuteSeries {
  private readonly buckets: MinuteBucket[];
  current: MinuteBucket;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly activeConnections: () => number = () => 0,
  ) {
    this.current = bucket(minuteOf(now()), 0);
    this.buckets = [this.current];
  }

  /** Called every second or so: starts a new bucket when the minute changed. */
  roll(): void {
    const minute = minuteOf(this.now());
    if (minute === this.current.minute) return;
    this.current = bucket(minute, this.activeConnections());
    this.buckets.push(this.current);
    while (this.buckets.length > SERIES_MINUTES) this.buckets.shift();
  }

  error(type: string): void {
    this.current.errors++;
    this.current.errorsByType[type] = (this.current.errorsByType[type] ?? 0) + 1;
  }

  disconnect(code: string): void {
    this.current.disconnects++;
    const key = code;
    this.current.disconnectsByCode[key] = (this.current.disconnectsByCode[key] ?? 0) + 1;
  }

  connect(active: number): void {
    this.current.connects++;
    if (active > this.current.connections) this.current.connections = active;
  }

  /** Buckets of the last `minutes` minutes (current one included), oldest first, with
   * minutes that saw no activity (process idle, just started) filled in as zeros. */
  last(minutes: number): MinuteBucket[] {
    this.roll();
    const out: MinuteBucket[] = [];
    const end = this.current.minute;
    const byMinute = new Map(this.buckets.map((b) => [b.minute, b]));
    for (let i = minutes - 1; i >= 0; i--) {
      const minute = end - i * 60_000;
      out.push(byMinute.get(minute) ?? bucket(minute, 0));
    }
    return out;
  }
}

/** Adds up several instances' buckets minute by minute (cluster-wide stats). */
export function mergeBuckets(lists: readonly (readonly MinuteBucket[])[]): MinuteBucket[] {
  const byMinute = new Map<number, MinuteBucket>();
  for (const list of lists) {
    for (const b of list) {
      const sum = byMinute.get(b.minute) ?? bucket(b.minute, 0);
      sum.connections += b.connections;
      sum.messages += b.messages;
      sum.errors += b.errors;
      sum.connects += b.connects;
      sum.disconnects += b.disconnects;
      addCounts(sum.errorsByType, b.errorsByType);
      addCounts(sum.disconnectsByCode, b.disconnectsByCode);
      byMinute.set(b.minute, sum);
    }
  }
  return [...byMinute.values()].sort((x, y) => x.minute - y.minute);
}

/** The stats endpoint's answer over the given buckets (the last `minutes` minutes). */
export function summarize(buckets: readonly MinuteBucket[], minutes: number): StatsAnswer {
  const total = (f: (b: MinuteBucket) => number) => buckets.reduce((n, b) => n + f(b), 0);
  const counts = (f: (b: MinuteBucket) => Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const b of buckets) addCounts(out, f(b));
    return out;
  };
  const perMinute = (n: number) => Math.round((n / minutes) * 100) / 100;
  return {
    minutes,
    errors_per_minute: perMinute(total((b) => b.errors)),
    messages_per_minute: perMinute(total((b) => b.messages)),
    connects_per_minute: perMinute(total((b) => b.connects)),
    disconnects_per_minute: perMinute(total((b) => b.disconnects)),
    errors_by_type: counts((b) => b.errorsByType),
    disconnects_by_code: counts((b) => b.disconnectsByCode),
    series: buckets.map((b) => ({
      minute: new Date(b.minute).toISOString(),
      connections: b.connections,
      messages: b.messages,
      errors: b.errors,
    })),
  };
}

function addCounts(into: Record<string, number>, from: Readonly<Record<string, number>>): void {
  for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v;
}
