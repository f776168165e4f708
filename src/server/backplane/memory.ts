/** The in-process backplane of embedded mode: one instance, everything in memory. */
import { randomBytes } from 'node:crypto';
import {
  isExpired,
  isReplayable,
  parseChannel,
  type AlertAck,
  type StoredEvent,
} from '../../protocol/index.js';
import {
  historyBounds,
  type Backplane,
  type BackplaneEvent,
  type BackplaneListener,
  type DeliveryCount,
  type HeldAlert,
  type HistoryLimits,
  type HistoryRead,
  type PublishInput,
  type PublishResult,
  type Snapshot,
  type UnackedRead,
} from './backplane.js';
import { History } from '../history.js';

/** How long publish ids are remembered for idempotent retries. */
const IDEMPOTENCY_TTL_MS = 10 * 60_000;
const IDEMPOTENCY_MAX = 100_000;

interface ChannelData {
  seq: number;
  readonly history: History | null;
  readonly state: Map<string, unknown> | null;
  /** Alert channels: acknowledgements and deliveries by seq, forgotten with their alert. */
  readonly alerts: AlertBook | null;
  /** State channels: when each key published with a ttl expires (ms). */
  readonly expiries: Map<string, number> | null;
}

interface AlertBook {
  readonly acks: Map<number, AlertAck>;
  readonly deliveries: Map<number, Map<string, number>>;
}

const EMPTY_CHANNEL: ChannelData = {
  seq: 0,
  history: null,
  state: null,
  alerts: null,
  expiries: null,
};

/** How often expired state keys are looked for and deleted. */
const EXPIRY_SWEEP_MS = 1000;

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
  /** State channels holding keys with an expiry: the sweep visits only these. */
  private readonly expiring = new Set<string>();
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly limits: HistoryLimits,
    private readonly now: () => number = Date.now,
    private readonly onListenerError: (err: unknown, channel: string) => void = () => {},
  ) {}

  start(listener: BackplaneListener): Promise<void> {
    this.listener = listener;
    this.sweepTimer = setInterval(() => this.sweepExpired(), EXPIRY_SWEEP_MS);
    this.sweepTimer.unref();
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.listener = null;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
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
        ...(input.ttl !== undefined && { expires_at: now + Math.round(input.ttl * 1000) }),
      };
      data.history?.append(event, now);
      if (data.state && input.key !== null) this.setState(data, event);
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

  ack(
    channel: string,
    epoch: string,
    seq: number,
    ack: AlertAck,
  ): Promise<{ ack: AlertAck; first: boolean } | null> {
    const data = this.channel(channel, false);
    const book = data.alerts;
    if (!book || epoch !== this.epoch || !this.held(data).some((e) => e.seq === seq))
      return Promise.resolve(null);
    const standing = book.acks.get(seq);
    if (standing) return Promise.resolve({ ack: standing, first: false });
    book.acks.set(seq, ack);
    if (this.subscribed.has(channel)) setImmediate(this.tellAcked, channel, seq, ack);
    return Promise.resolve({ ack, first: true });
  }

  private readonly tellAcked = (channel: string, seq: number, ack: AlertAck): void => {
    try {
      this.listener?.acked(channel, this.epoch, seq, ack);
    } catch (err) {
      this.onListenerError(err, channel);
    }
  };

  unacked(channel: string): Promise<UnackedRead> {
    const data = this.channel(channel, false);
    const acks = data.alerts?.acks;
    const alerts = this.held(data).filter((e) => !acks?.has(e.seq));
    return Promise.resolve({ epoch: this.epoch, alerts });
  }

  alerts(): Promise<HeldAlert[]> {
    const out: HeldAlert[] = [];
    for (const data of this.channels.values()) {
      const book = data.alerts;
      if (!book) continue;
      for (const event of this.held(data)) {
        out.push({
          ...event,
          epoch: this.epoch,
          ack: book.acks.get(event.seq) ?? null,
          deliveries: Object.fromEntries(book.deliveries.get(event.seq) ?? []),
        });
      }
    }
    return Promise.resolve(out);
  }

  countDeliveries(counts: readonly DeliveryCount[]): Promise<void> {
    for (const c of counts) {
      const book = this.channels.get(c.channel)?.alerts;
      if (!book || c.epoch !== this.epoch) continue;
      let byUser = book.deliveries.get(c.seq);
      if (!byUser) book.deliveries.set(c.seq, (byUser = new Map<string, number>()));
      byUser.set(c.user, (byUser.get(c.user) ?? 0) + c.count);
    }
    return Promise.resolve();
  }

  /** The unexpired alerts a channel holds; forgets the acknowledgements and deliveries of
   * those it no longer holds, so an alert channel's book stays as small as its history. */
  private held(data: ChannelData): StoredEvent[] {
    const now = this.now();
    const events = data.history?.since(0, now) ?? [];
    const book = data.alerts;
    if (book) {
      const first = events[0]?.seq ?? data.seq + 1;
      for (const seq of book.acks.keys()) if (seq < first) book.acks.delete(seq);
      for (const seq of book.deliveries.keys()) if (seq < first) book.deliveries.delete(seq);
    }
    return events.filter((e) => !isExpired(e, now));
  }

  private setState(data: ChannelData, event: StoredEvent): void {
    const key = event.key as string;
    if (event.data === null) data.state?.delete(key);
    else data.state?.set(key, event.data);
    if (event.expires_at !== undefined && event.data !== null) {
      data.expiries?.set(key, event.expires_at);
      this.expiring.add(event.channel);
    } else {
      data.expiries?.delete(key);
    }
  }

  /** Deletes expired state keys, each with a numbered delete event as if it was published
   * (docs/protocol.md#expiring-events). */
  sweepExpired(): void {
    const now = this.now();
    const deletes: PublishInput[] = [];
    for (const name of this.expiring) {
      const expiries = this.channels.get(name)?.expiries;
      if (!expiries || expiries.size === 0) {
        this.expiring.delete(name);
        continue;
      }
      for (const [key, at] of expiries)
        if (at <= now) deletes.push({ channel: name, key, data: null });
    }
    if (deletes.length > 0) void this.publish(deletes);
  }

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
      events: data.history?.since(sinceSeq, now).filter((e) => !isExpired(e, now)) ?? [],
    });
  }

  snapshot(channel: string): Promise<Snapshot> {
    const data = this.channel(channel, false);
    const now = this.now();
    const entries = [...(data.state ?? [])]
      .filter(([key]) => (data.expiries?.get(key) ?? Infinity) > now)
      .map(([key, value]) => ({ key, data: value }));
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
      alerts: cls === 'alert' ? { acks: new Map(), deliveries: new Map() } : null,
      expiries: cls === 'state' ? new Map() : null,
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
