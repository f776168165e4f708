/**
 * A token bucket: `capacity` tokens at most, refilled continuously at `perSecond`. The
 * inbound message rate (tokens = messages), the replay budget (tokens = bytes) and the
 * history endpoint's rate (tokens = requests) are all one of these.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = capacity;
    this.last = now;
  }

  /** Takes `n` tokens if there are that many; false (and takes none) otherwise. */
  take(now: number, n = 1): boolean {
    this.refill(now);
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Tokens there are at `now`. */
  available(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** Whether the bucket is full again at `now` (an idle entry that can be forgotten). */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }

  /** Seconds until `n` tokens are available (0 when they are now). */
  secondsUntil(now: number, n = 1): number {
    this.refill(now);
    return this.tokens >= n ? 0 : (Math.min(n, this.capacity) - this.tokens) / this.perSecond;
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.last);
    this.tokens = Math.min(this.capacity, this.tokens + (elapsed / 1000) * this.perSecond);
    this.last = now;
  }
}

/**
 * One bucket per key (a user, an address), for limits shared by many requests. Bounded:
 * past `maxKeys` the idle (full) buckets are forgotten, then the oldest.
 */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    private readonly maxKeys = 10_000,
  ) {}

  /** Takes `n` tokens for `key`: 0 when allowed, else the seconds to wait. */
  take(key: string, now: number, n = 1): number {
    const bucket = this.bucket(key, now);
    return bucket.take(now, n) ? 0 : bucket.secondsUntil(now, n);
  }

  /** Tokens `key` has now (a request can be refused before any work is done). */
  available(key: string, now: number): number {
    return this.buckets.get(key)?.available(now) ?? this.capacity;
  }

  private bucket(key: string, now: number): TokenBucket {
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= this.maxKeys) this.prune(now);
      bucket = new TokenBucket(this.capacity, this.perSecond, now);
      this.buckets.set(key, bucket);
    }
    return bucket;
  }

  private prune(now: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.full(now)) this.buckets.delete(key);
    // Every key busy: the oldest half go (they refill to full in a few seconds anyway).
    let excess = this.buckets.size - this.maxKeys / 2;
    for (const key of this.buckets.keys()) {
      if (excess-- <= 0) break;
      this.buckets.delete(key);
    }
  }
}
