/** The in-process backplane of embedded mode: one instance, everything in memory. */
import { randomBytes } from 'node:crypto';
import { isReplayable, parseChannel, type StoredEvent } from '../../protocol/index.js';
import {
  historyBounds,
  type Backplane,
  type BackplaneEvent,
  type BackplaneListener,
  type HistoryLimits,
  type HistoryRead,
  type PublishInput,
  type PublishResult,
  type Snapshot,
} from './backplane.js';
import { History } from '../history.js';

/** How long publish ids are remembered for idempotent retries. */
const IDEMPOTENCY_TTL_MS = 10 * 60_000;
const IDEMPOTENCY_MAX = 100_000;

interface ChannelData {
  seq: number;
  readonly history: History | null;
  readonly state: Map<string, unknown> | null;
}

const EMPTY_CHANNEL: ChannelData = { seq: 0, history: null, state: null };

export function newEpoch(): string {
  return randomBytes(6).toString('base64url');
}

export class MemoryBackplane implements Backplane {
  readonly kind = 'memory';
  /** Everything lives in this process, so one epoch covers every channel: a restart loses
   * all history at once, and a client resuming across it is told recovered:false. */
  readonly epoch = newEpoch();
  private readonly channels = new Map<string, ChannelData>();
  private readonly subscribed = new Set<string>();
  private readonly seenIds = new Map<string, { at: number; result: PublishResult }>();
  private listener: BackplaneListener | null = null;

  constructor(
    private readonly limits: HistoryLimits,
    private readonly now: () => number = Date.now,
    private readonly onListenerError: (err: unknown, channel: string) => void = () => {},
  ) {}

  start(listener: BackplaneListener): Promise<void> {
    this.listener = listener;
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.listener = null;
    return Promise.resolve();
  }

  healthy(): boolean {
    return true;
  }

  publish(events: readonly PublishInput[]): Promise<PublishResult[]> {
    const now = this.now();
    this.expireIds(now);
    const fanOut: BackplaneEvent[] = [];
    const results = events.map((input) => {
      // Ids are per channel: the engine may reuse one event id on several channels.
      const idKey = input.id === undefined ? undefined : `${input.channel}\u0000${input.id}`;
      const seen = idKey === undefined ? undefined : this.seenIds.get(idKey);
      if (seen) return { ...seen.result, duplicate: true as const };
      const data = this.channel(input.channel, true);
      const event: StoredEvent = {
        channel: input.channel,
        seq: ++data.seq,
        key: input.key,
        ts: now,
        data: input.data,
      };
      data.history?.append(event, now);
      if (data.state && input.key !== null) {
        if (input.data === null) data.state.delete(input.key);
        else data.state.set(input.key, input.data);
      }
      if (this.subscribed.has(input.channel)) fanOut.push({ ...event, epoch: this.epoch });
      const result: PublishResult = { channel: input.channel, seq: event.seq, epoch: this.epoch };
      if (idKey !== undefined) this.seenIds.set(idKey, { at: now, result });
      return result;
    });
    // Stored is answered first; the fan-out runs in the next turn, after the publisher's
    // answer was written, as it does in cluster mode (events come back from Redis). So a
    // publish never waits on 10,000 subscribers being queued (docs/performance.md).
    if (fanOut.length > 0) setImmediate(this.fanOut, fanOut);
    return Promise.resolve(results);
  }

  /** Stored means answered 200: a fan-out failure never turns into a publish failure. Turns
   * run in order, so every subscriber still sees a channel's events in seq order. */
  private readonly fanOut = (events: readonly BackplaneEvent[]): void => {
    for (const event of events) {
      try {
        this.listener?.event(event);
      } catch (err) {
        this.onListenerError(err, event.channel);
      }
    }
  };

  subscribe(channel: string): Promise<void> {
    this.subscribed.add(channel);
    return Promise.resolve();
  }

  unsubscribe(channel: string): Promise<void> {
    this.subscribed.delete(channel);
    return Promise.resolve();
  }

  history(channel: string, sinceSeq: number): Promise<HistoryRead> {
    const data = this.channel(channel, false);
    const now = this.now();
    return Promise.resolve({
      epoch: this.epoch,
      seq: data.seq,
      firstSeq: data.history?.firstSeq(now) ?? data.seq + 1,
      events: data.history?.since(sinceSeq, now) ?? [],
    });
  }

  snapshot(channel: string): Promise<Snapshot> {
    const data = this.channel(channel, false);
    const entries = [...(data.state ?? [])].map(([key, value]) => ({ key, data: value }));
    return Promise.resolve({ epoch: this.epoch, seq: data.seq, entries });
  }

  /** A channel's data. Reads of a channel never published to are not stored, so clients
   * cannot grow memory by subscribing to made-up names. */
  private channel(name: string, create: boolean): ChannelData {
    const existing = this.channels.get(name);
    if (existing) return existing;
    if (!create) return EMPTY_CHANNEL;
    const cls = parseChannel(name)?.class ?? 'stream';
    const bounds = historyBounds(this.limits, cls);
    const data: ChannelData = {
      seq: 0,
      history: isReplayable(cls) ? new History(bounds.size, bounds.ttlMs) : null,
      state: cls === 'state' ? new Map() : null,
    };
    this.channels.set(name, data);
    return data;
  }

  private expireIds(now: number): void {
    // Map iterates in insertion order, so the oldest ids come first.
    for (const [id, seen] of this.seenIds) {
      if (now - seen.at < IDEMPOTENCY_TTL_MS && this.seenIds.size <= IDEMPOTENCY_MAX) break;
      this.seenIds.delete(id);
    }
  }
}
