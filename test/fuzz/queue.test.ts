/**
 * Fuzz: a connection's outbound queue (src/server/queue.ts) against a model of what it
 * promises, under any interleaving of queueing, writing, dropping and clearing: alerts
 * first, FIFO within a lane, a state value replaced in place while it waits, and every
 * frame let go exactly once. The lanes reuse their slots between turns, which is where an
 * off-by-one would hide.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Frame } from '../../src/server/frame.js';
import { OutboundQueue } from '../../src/server/queue.js';
import { params, TIMEOUT } from './runs.js';

type Command =
  | { op: 'stream'; channel: string }
  | { op: 'alert'; channel: string }
  | { op: 'state'; channel: string; key: string }
  | { op: 'shift'; times: number }
  | { op: 'dropChannel'; channel: string }
  | { op: 'clear' };

const channel = fc.constantFrom('signals', 'risk:A', 'positions:A');
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('stream' as const), channel }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('alert' as const), channel }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('state' as const),
      channel,
      key: fc.constantFrom('EURUSD', 'GBPUSD'),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('shift' as const),
      times: fc.integer({ min: 1, max: 40 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('dropChannel' as const), channel }) },
  { weight: 1, arbitrary: fc.constant({ op: 'clear' as const }) },
);

interface Queued {
  readonly frame: Frame;
  readonly channel: string;
  readonly key: string | null;
}

describe('OutboundQueue', () => {
  it(
    'behaves as two FIFO lanes with in-place conflation, and releases every frame once',
    () => {
      fc.assert(
        fc.property(fc.array(command, { maxLength: 400 }), (commands) => {
          const q = new OutboundQueue(100_000, 1 << 30);
          const settled = new Map<Frame, number>();
          const make = (cls: 'stream' | 'alert' | 'state', ch: string, key: string | null) =>
            new Frame(Buffer.from(`${ch}:${key ?? ''}:${settled.size}`), {
              cls,
              channel: ch,
              conflateKey: key === null ? null : `${ch}\u0000${key}`,
              onSettled: (f) => settled.set(f, (settled.get(f) ?? 0) + 1),
            });
          const all: Frame[] = [];
          const priority: Queued[] = [];
          const normal: Queued[] = [];
          const take = (frame: Frame) => {
            // The caller of shift() owns the frame and lets it go once written.
            frame.release();
          };
          for (const c of commands) {
            if (c.op === 'stream' || c.op === 'alert' || c.op === 'state') {
              const key = c.op === 'state' ? c.key : null;
              const frame = make(c.op, c.channel, key);
              all.push(frame);
              // A fan-out holds the frame while it queues it (as the hub does).
              frame.retain();
              const result = q.enqueue(frame, 0);
              const waiting =
                key === null
                  ? -1
                  : normal.findIndex(
                      (x) => x.key !== null && x.channel === c.channel && x.key === key,
                    );
              if (waiting >= 0) {
                expect(result).toBe('conflated');
                normal[waiting] = { frame, channel: c.channel, key };
              } else {
                expect(result).toBe('queued');
                (c.op === 'alert' ? priority : normal).push({ frame, channel: c.channel, key });
              }
              frame.release();
            } else if (c.op === 'shift') {
              for (let i = 0; i < c.times; i++) {
                const expected = priority.shift() ?? normal.shift();
                const got = q.shift();
                expect(got).toBe(expected?.frame);
                if (got) take(got);
              }
            } else if (c.op === 'dropChannel') {
              const before = priority.length + normal.length;
              for (const lane of [priority, normal]) {
                const kept = lane.filter((x) => x.channel !== c.channel);
                lane.splice(0, lane.length, ...kept);
              }
              expect(q.dropChannel(c.channel)).toBe(before - priority.length - normal.length);
            } else {
              expect(q.clear()).toBe(priority.length + normal.length);
              priority.length = normal.length = 0;
            }
            expect(q.depth).toBe(priority.length + normal.length);
          }
          // Drain: what is left comes out in the model's order, then every frame has been
          // let go exactly once (written, dropped or replaced).
          for (let got = q.shift(); got; got = q.shift()) {
            expect(got).toBe((priority.shift() ?? normal.shift())?.frame);
            take(got);
          }
          expect(priority.length + normal.length).toBe(0);
          expect(q.bytes).toBe(0);
          for (const frame of all) expect(settled.get(frame)).toBe(1);
        }),
        params(),
      );
    },
    TIMEOUT,
  );
});
