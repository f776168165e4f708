/**
 * Reads of one channel, coalesced (docs/performance.md, "Reconnect storm"). When an
 * instance stops, its thousands of clients resume on the others within seconds, most of them
 * on the same few channels from nearly the same `seq`. Each read asks the backplane (a Redis
 * round trip and a script in cluster mode) for the same events. Here the reads of a channel
 * that arrive while one is in flight wait for it to end and then share one read from the
 * lowest `sinceSeq` among them; each gets the events after its own `sinceSeq`.
 *
 * A read is never shared with a subscription that registered after the read was issued: an
 * event stored between the read and the registration would be in neither the history nor the
 * live events the subscription receives. So a caller joins only the next read, never one
 * already in flight. With no read in flight a caller's read is issued at once (no added wait).
 */
import type { HistoryRead } from './backplane/backplane.js';

interface Batch<A, R> {
  arg: A;
  readonly result: Promise<R>;
  start(): void;
}

interface ChannelReads<A, R> {
  inFlight: boolean;
  /** The next read, gathering callers until the one in flight ends. */
  next: Batch<A, R> | null;
}

/** History reads: callers share a read from the lowest `sinceSeq` among them. */
export class HistoryReads {
  private readonly reads: CoalescedReads<number, HistoryRead>;

  constructor(read: (channel: string, sinceSeq: number) => Promise<HistoryRead>) {
    this.reads = new CoalescedReads(read, Math.min);
  }

  /** Events of `channel` after `sinceSeq`, with its epoch, latest and oldest `seq`. */
  async history(channel: string, sinceSeq: number): Promise<HistoryRead> {
    const read = await this.reads.read(channel, sinceSeq);
    if (read.events.length === 0 || read.events[0]!.seq > sinceSeq) return read;
    return { ...read, events: read.events.filter((e) => e.seq > sinceSeq) };
  }
}

/** Any read of a channel by the rule above; `merge` makes one argument of two callers'. */
export class CoalescedReads<A, R> {
  private readonly channels = new Map<string, ChannelReads<A, R>>();

  constructor(
    private readonly readOnce: (channel: string, arg: A) => Promise<R>,
    private readonly merge: (a: A, b: A) => A,
  ) {}

  read(channel: string, arg: A): Promise<R> {
    let reads = this.channels.get(channel);
    if (!reads) {
      reads = { inFlight: false, next: null };
      this.channels.set(channel, reads);
    }
    let batch = reads.next;
    if (batch) batch.arg = this.merge(batch.arg, arg);
    else {
      batch = this.batch(channel, reads, arg);
      reads.next = batch;
      if (!reads.inFlight) batch.start();
    }
    return batch.result;
  }

  private batch(channel: string, reads: ChannelReads<A, R>, arg: A): Batch<A, R> {
    let settle!: (read: Promise<R>) => void;
    const result = new Promise<R>((resolve) => (settle = resolve));
    const batch: Batch<A, R> = {
      arg,
      result,
      start: () => {
        reads.next = null;
        reads.inFlight = true;
        let read: Promise<R>;
        try {
          read = this.readOnce(channel, batch.arg);
        } catch (err) {
          read = Promise.reject(err instanceof Error ? err : new Error(String(err)));
        }
        settle(read);
        const done = () => {
          reads.inFlight = false;
          if (reads.next) reads.next.start();
          else this.channels.delete(channel);
        };
        read.then(done, done);
      },
    };
    return batch;
  }
}
