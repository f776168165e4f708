/**
 * Reconnect delays: exponential backoff with full jitter (delay uniform in
 * [0, min(cap, base · 2^attempt)]), so clients dropped together by a restart do not come
 * back together. The attempt counter resets once a connection has stayed up for a while.
 */

export interface BackoffOptions {
  /** Window of the first retry, ms (default 500). */
  readonly baseMs?: number;
  /** Largest window, ms (default 20 000). */
  readonly capMs?: number;
  /** A connection that stayed up this long resets the attempt counter, ms (default 10 000). */
  readonly resetAfterMs?: number;
  /**
   * Smallest window after the server asked to back off (1008, 1013), ms (default 5 000).
   * Such a retry waits at least half its window: a server at capacity gets a real rest.
   */
  readonly slowMs?: number;
  /** Uniform random number in [0, 1) (default Math.random); injectable for tests. */
  readonly random?: () => number;
}

export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  readonly resetAfterMs: number;
  readonly slowMs: number;
  private readonly random: () => number;
  private attempts = 0;
  private upSince: number | null = null;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.capMs = options.capMs ?? 20_000;
    this.resetAfterMs = options.resetAfterMs ?? 10_000;
    this.slowMs = options.slowMs ?? 5_000;
    this.random = options.random ?? Math.random;
  }

  /** Retries counted since the last reset. */
  get attempt(): number {
    return this.attempts;
  }

  /** The jitter window of retry number `attempt` (0-based): min(cap, base · 2^attempt). */
  window(attempt: number): number {
    return Math.min(this.capMs, this.baseMs * 2 ** attempt);
  }

  /** The delay before the next retry, in ms; counts the retry. */
  next(slow = false): number {
    const window = this.window(this.attempts);
    this.attempts++;
    if (!slow) return this.random() * window;
    const slowWindow = Math.max(window, Math.min(this.capMs, this.slowMs));
    return slowWindow / 2 + (this.random() * slowWindow) / 2;
  }

  /** A connection became usable at `now` (ms). */
  up(now: number): void {
    this.upSince = now;
  }

  /** The connection ended at `now` (ms): one that stayed up long enough starts the count over. */
  down(now: number): void {
    if (this.upSince !== null && now - this.upSince >= this.resetAfterMs) this.attempts = 0;
    this.upSince = null;
  }

  reset(): void {
    this.attempts = 0;
    this.upSince = null;
  }
}
