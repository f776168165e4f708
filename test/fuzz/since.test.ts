/** Fuzz: resuming with `since` (historyCovers and the memory backplane's history). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isReplayable, parseChannel } from '../../src/protocol/channels.js';
import { historyCovers, type HistoryLimits } from '../../src/server/backplane/backplane.js';
import { MemoryBackplane } from '../../src/server/backplane/memory.js';
import { params, TIMEOUT } from './runs.js';

interface Publish {
  /** Milliseconds since the previous publish. */
  readonly dt: number;
  /** Idempotency ids of the batch (null: no id). */
  readonly ids: readonly (string | null)[];
}

const limitsArb: fc.Arbitrary<HistoryLimits> = fc.record({
  streamSize: fc.integer({ min: 1, max: 8 }),
  streamTtlMs: fc.integer({ min: 1, max: 5_000 }),
  alertSize: fc.integer({ min: 1, max: 8 }),
  alertTtlMs: fc.integer({ min: 1, max: 5_000 }),
});

const publishArb: fc.Arbitrary<Publish> = fc.record({
  dt: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 2_000 })),
  ids: fc.array(fc.option(fc.constantFrom('a', 'b', 'c', 'd'), { nil: null, freq: 2 }), {
    minLength: 1,
    maxLength: 3,
  }),
});

const channelArb = fc.constantFrom(
  'signals',
  'signals:s1',
  'risk:ACC1',
  'positions:ACC1',
  'system',
);

describe('since handling', () => {
  it(
    'covers a since exactly when every later event is held, and then returns exactly those',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          limitsArb,
          channelArb,
          fc.array(publishArb, { maxLength: 25 }),
          fc.integer({ min: 0, max: 6_000 }),
          fc.array(fc.oneof(fc.nat({ max: 200 }), fc.constant(Number.MAX_SAFE_INTEGER)), {
            maxLength: 4,
          }),
          async (limits, channel, publishes, wait, extraSinces) => {
            let clock = 1_000_000;
            const bp = new MemoryBackplane(limits, () => clock);
            // The model: when each seq was stored, and which ids were seen.
            const storedAt: number[] = [];
            const seen = new Set<string>();
            for (const { dt, ids } of publishes) {
              clock += dt;
              const results = await bp.publish(
                ids.map((id) => ({
                  channel,
                  key: 'k',
                  data: { n: storedAt.length },
                  ...(id !== null && { id }),
                })),
              );
              results.forEach((r, i) => {
                const id = ids[i] ?? null;
                if (id !== null && seen.has(id)) {
                  expect(r.duplicate).toBe(true);
                } else {
                  storedAt.push(clock);
                  expect(r.seq).toBe(storedAt.length);
                  if (id !== null) seen.add(id);
                }
              });
            }
            clock += wait;
            const seq = storedAt.length;
            const cls = parseChannel(channel)?.class ?? 'stream';
            const size = cls === 'alert' ? limits.alertSize : limits.streamSize;
            const ttl = cls === 'alert' ? limits.alertTtlMs : limits.streamTtlMs;
            const held = (s: number) =>
              isReplayable(cls) && s > seq - size && clock - (storedAt[s - 1] ?? 0) <= ttl;

            const sinces = [...Array(2 * seq + 2).keys(), ...extraSinces];
            for (const since of sinces) {
              const read = await bp.history(channel, since);
              expect(read.seq).toBe(seq);
              expect(read.epoch).toBe(bp.epoch);
              const heldSeqs = storedAt.map((_, i) => i + 1).filter(held);
              expect(read.firstSeq).toBe(heldSeqs[0] ?? seq + 1);
              const got = read.events.map((e) => e.seq);
              expect(got).toEqual(heldSeqs.filter((s) => s > since));
              read.events.forEach((e) => expect(e.channel).toBe(channel));

              const later = Array.from(
                { length: Math.max(0, seq - since) },
                (_, i) => since + 1 + i,
              );
              const covered = historyCovers(read, since);
              expect(covered).toBe(since <= seq && later.every(held));
              if (covered) {
                expect(got).toEqual(later);
              } else {
                // Ahead of the channel, or older than the oldest event held.
                expect(since > read.seq || read.firstSeq > since + 1).toBe(true);
              }
            }
          },
        ),
        params(0.3),
      );
    },
    TIMEOUT,
  );

  it(
    'never covers a since ahead of the channel, however large',
    () => {
      const read = fc.tuple(fc.nat({ max: 1_000 }), fc.nat({ max: 1_000 })).map(([seq, held]) => {
        const firstSeq = seq + 1 - Math.min(seq, held);
        return { seq, firstSeq };
      });
      fc.assert(
        fc.property(
          read,
          fc.oneof(fc.integer({ min: 1, max: 2_000 }), fc.constant(Number.MAX_SAFE_INTEGER)),
          ({ seq, firstSeq }, ahead) => {
            const since = Math.min(Number.MAX_SAFE_INTEGER, seq + ahead);
            const events = Array.from({ length: seq + 1 - firstSeq }, (_, i) => ({
              channel: 'signals',
              seq: firstSeq + i,
              key: null,
              ts: 0,
              data: null,
            })).filter((e) => e.seq > since);
            expect(historyCovers({ epoch: 'e', seq, firstSeq, events }, since)).toBe(false);
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );
});
