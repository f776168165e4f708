/**
 * Fuzz: coalesced history reads (src/server/history-reads.ts) against what a resuming
 * subscriber needs, under any interleaving of callers, publishes, and reads that end or fail:
 * each caller gets exactly the channel's events after its own `since`, from a read issued no
 * earlier than its call (an event stored before the call is never missing), at most one read
 * of a channel is in flight at a time, and every caller is answered.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/protocol/index.js';
import type { HistoryRead } from '../../src/server/backplane/backplane.js';
import { HistoryReads } from '../../src/server/history-reads.js';
import { params, TIMEOUT } from './runs.js';

type Command =
  | { op: 'call'; channel: string; since: number }
  | { op: 'publish'; channel: string }
  | { op: 'end'; ok: boolean };

const channel = fc.constantFrom('signals', 'risk:A');
const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constant('call' as const),
      channel,
      since: fc.oneof({ weight: 4, arbitrary: fc.nat(8) }, fc.constant(Number.MAX_SAFE_INTEGER)),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('publish' as const), channel }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('end' as const), ok: fc.boolean() }) },
);

interface Read {
  readonly channel: string;
  readonly sinceSeq: number;
  /** The store when the read was issued (the earliest a real backplane could read it). */
  readonly result: HistoryRead;
  resolve(read: HistoryRead): void;
  reject(err: Error): void;
}

interface Caller {
  readonly channel: string;
  readonly since: number;
  /** The channel's latest seq when the caller asked. */
  readonly seqAtCall: number;
  outcome: { read: HistoryRead } | { error: Error } | null;
}

function event(channel: string, seq: number): StoredEvent {
  return { channel, seq, key: null, ts: seq, data: { n: seq } };
}

describe('coalesced history reads', () => {
  it(
    'give each caller the events after its since, read no earlier than its call',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(command, { maxLength: 60 }), async (commands) => {
          const store = new Map<string, number>([
            ['signals', 0],
            ['risk:A', 0],
          ]);
          const inFlight: Read[] = [];
          const readsOf = new Map<string, number>();
          const history = new HistoryReads((ch, sinceSeq) => {
            const seq = store.get(ch)!;
            expect(readsOf.get(ch) ?? 0, `one read of ${ch} in flight at a time`).toBe(0);
            readsOf.set(ch, 1);
            const events: StoredEvent[] = [];
            for (let s = Math.max(0, sinceSeq) + 1; s <= seq; s++) events.push(event(ch, s));
            return new Promise<HistoryRead>((resolve, reject) => {
              inFlight.push({
                channel: ch,
                sinceSeq,
                result: { epoch: 'e', seq, firstSeq: 1, events },
                resolve,
                reject,
              });
            });
          });
          const callers: Caller[] = [];
          const settle = () => new Promise((r) => setImmediate(r));
          const endOldest = async (ok: boolean) => {
            const read = inFlight.shift();
            if (!read) return;
            readsOf.set(read.channel, 0);
            if (ok) read.resolve(read.result);
            else read.reject(new Error('backplane unavailable'));
            await settle();
          };
          for (const c of commands) {
            if (c.op === 'publish') store.set(c.channel, store.get(c.channel)! + 1);
            else if (c.op === 'end') await endOldest(c.ok);
            else {
              const caller: Caller = {
                channel: c.channel,
                since: c.since,
                seqAtCall: store.get(c.channel)!,
                outcome: null,
              };
              callers.push(caller);
              history.history(c.channel, c.since).then(
                (read) => (caller.outcome = { read }),
                (error: Error) => (caller.outcome = { error }),
              );
              await settle();
            }
          }
          // Every read ends: every caller is answered (and the reads do not go on forever).
          for (let i = 0; inFlight.length > 0 && i < 200; i++) await endOldest(true);
          expect(inFlight, 'reads still issued after every caller was served').toEqual([]);
          for (const caller of callers) {
            expect(caller.outcome, 'every caller is answered').not.toBeNull();
            if (caller.outcome === null || 'error' in caller.outcome) continue;
            const { read } = caller.outcome;
            expect(read.seq, 'read no earlier than the call').toBeGreaterThanOrEqual(
              caller.seqAtCall,
            );
            const want = [];
            for (let s = caller.since + 1; s <= read.seq; s++) want.push(s);
            expect(read.events.map((e) => e.seq)).toEqual(want);
            expect(read.events.every((e) => e.channel === caller.channel)).toBe(true);
          }
        }),
        params(0.5),
      );
    },
    TIMEOUT,
  );

  it('shares one read among the callers that arrive while one is in flight', async () => {
    const issued: number[] = [];
    const ends: ((r: HistoryRead) => void)[] = [];
    const history = new HistoryReads((channel, sinceSeq) => {
      issued.push(sinceSeq);
      return new Promise((resolve) => ends.push(resolve));
    });
    const first = history.history('signals', 7);
    const rest = [9, 5, 8].map((since) => history.history('signals', since));
    expect(issued).toEqual([7]); // the others wait: the read in flight began before them
    ends[0]!({
      epoch: 'e',
      seq: 10,
      firstSeq: 1,
      events: [8, 9, 10].map((s) => event('signals', s)),
    });
    await new Promise((r) => setImmediate(r));
    expect(issued).toEqual([7, 5]); // one read for the three, from the lowest since
    ends[1]!({
      epoch: 'e',
      seq: 11,
      firstSeq: 1,
      events: [6, 7, 8, 9, 10, 11].map((s) => event('signals', s)),
    });
    expect((await first).events.map((e) => e.seq)).toEqual([8, 9, 10]);
    const [nine, five, eight] = await Promise.all(rest);
    expect(nine!.events.map((e) => e.seq)).toEqual([10, 11]);
    expect(five!.events.map((e) => e.seq)).toEqual([6, 7, 8, 9, 10, 11]);
    expect(eight!.events.map((e) => e.seq)).toEqual([9, 10, 11]);
  });

  it('a read that throws at once fails its callers and not the next read', async () => {
    let calls = 0;
    const history = new HistoryReads(() => {
      if (++calls === 1) throw new Error('not started');
      return Promise.resolve({ epoch: 'e', seq: 0, firstSeq: 1, events: [] });
    });
    await expect(history.history('signals', 0)).rejects.toThrow('not started');
    await expect(history.history('signals', 0)).resolves.toMatchObject({ seq: 0 });
  });
});
