/**
 * History reads of one channel, coalesced (docs/performance.md, "Reconnect storm"). When an
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

interface Batch {
  sinceSeq: number;
  readonly result: Promise<HistoryRead>;
  start(): void;
}

interface ChannelReads {
  inFlight: boolean;
  /** The next read, gathering callers until the one in flight ends. */
  next: Batch | null;
}

export class HistoryReads {
  private readonly channels = new Map<string, ChannelReads>();

  constructor(private readonly read: (channel: string, sinceSeq: number) => Promise<HistoryRead>) {}

  /** Events of `channel` after `sinceSeq`, with its epoch, latest and oldest `seq`. */
  async history(channel: string, sinceSeq: number): Promise<HistoryRead> {
    let reads = this.channels.get(channel);
    if (!reads) {
      reads = { inFlight: false, next: null };
      this.channels.set(channel, reads);
    }
    let batch = reads.next;
    if (batch) batch.sinceSeq = Math.min(batch.sinceSeq, sinceSeq);
    else {
      batch = this.batch(channel, reads, sinceSeq);
      reads.next = batch;
      if (!reads.inFlight) batch.start();
    }
    const read = await batch.result;
    if (read.events.length === 0 || read.events[0]!.seq > sinceSeq) return read;
    return { ...read, events: read.events.filter((e) => e.seq > sinceSeq) };
  }

  private batch(channel: string, reads: ChannelReads, sinceSeq: number): Batch {
    let settle!: (read: Promise<HistoryRead>) => void;
    const result = new Promise<HistoryRead>((resolve) => (settle = resolve));
    const batch: Batch = {
      sinceSeq,
      result,
      start: () => {
        reads.next = null;
        reads.inFlight = true;
        let read: Promise<HistoryRead>;
        try {
          read = this.read(channel, batch.sinceSeq);
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
