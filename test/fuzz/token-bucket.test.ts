/** Fuzz: rate limits (TokenBucket and KeyedBuckets in src/server/token-bucket.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KeyedBuckets, TokenBucket } from '../../src/server/token-bucket.js';
import { params, TIMEOUT } from './runs.js';

/** Room for floating-point rounding in refills, far below one token. */
const EPSILON = 1e-6;

const step = fc.record({
  /** Milliseconds the fake clock moves before this take. */
  dt: fc.oneof(
    fc.constant(0),
    fc.integer({ min: 0, max: 50 }),
    fc.integer({ min: 0, max: 5_000 }),
    fc.double({ min: 0, max: 100, noNaN: true }),
  ),
  n: fc.oneof(
    fc.constant(1),
    fc.integer({ min: 1, max: 20 }),
    fc.double({ min: 0.001, max: 20, noNaN: true }),
  ),
});

describe('TokenBucket', () => {
  it(
    'never allows more than capacity plus rate times the elapsed time, over any window',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.integer({ min: 1, max: 100 }),
            fc.double({ min: 0.5, max: 1e6, noNaN: true }),
          ),
          fc.oneof(
            fc.integer({ min: 1, max: 100 }),
            fc.double({ min: 0.001, max: 1e6, noNaN: true }),
          ),
          fc.integer({ min: 0, max: 2 ** 40 }),
          fc.array(step, { maxLength: 100 }),
          (capacity, perSecond, start, steps) => {
            let now = start;
            const bucket = new TokenBucket(capacity, perSecond, now);
            const allowed: { at: number; n: number }[] = [];
            for (const { dt, n } of steps) {
              now += dt;
              const wait = bucket.secondsUntil(now, n);
              expect(wait).toBeGreaterThanOrEqual(0);
              const ok = bucket.take(now, n);
              if (ok) allowed.push({ at: now, n });
              // secondsUntil says 0 exactly when a take of n passes (n > capacity never does;
              // its wait is until the bucket is full).
              if (n <= capacity) expect(wait === 0).toBe(ok);
              else expect(ok).toBe(false);
            }
            // Over every window of time, from the start or from any allowed take.
            const starts = [{ at: start, n: 0 }, ...allowed];
            starts.forEach((from, i) => {
              let taken = 0;
              for (const take of allowed.slice(Math.max(0, i - 1))) {
                taken += take.n;
                const bound = capacity + (perSecond * (take.at - from.at)) / 1000;
                expect(taken).toBeLessThanOrEqual(bound * (1 + EPSILON) + EPSILON);
              }
            });
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );
});

describe('KeyedBuckets', () => {
  it(
    'never holds more than maxKeys keys, and answers 0 or a positive wait',
    () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 20 }),
          fc.integer({ min: 1, max: 10 }),
          fc.integer({ min: 1, max: 16 }),
          fc.array(
            fc.record({
              key: fc.oneof(
                fc.nat({ max: 40 }).map(String),
                fc.constantFrom('__proto__', 'constructor'),
              ),
              dt: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3_000 })),
            }),
            { maxLength: 200 },
          ),
          (capacity, perSecond, maxKeys, takes) => {
            const buckets = new KeyedBuckets(capacity, perSecond, maxKeys);
            // The map is private; its size is the property under test.
            const held = () =>
              (buckets as unknown as { buckets: Map<string, unknown> }).buckets.size;
            let now = 0;
            for (const { key, dt } of takes) {
              now += dt;
              const wait = buckets.take(key, now);
              expect(wait).toBeGreaterThanOrEqual(0);
              expect(Number.isFinite(wait)).toBe(true);
              expect(held()).toBeLessThanOrEqual(maxKeys);
            }
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );
});
