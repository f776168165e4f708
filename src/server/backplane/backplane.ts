/**
 * The Backplane is where published events are numbered, stored and fanned out between
 * instances. The hub talks only to this interface: the memory backplane serves one
 * process (embedded mode), the Redis backplane a cluster. Both give the same guarantees:
 * per-channel seq without gaps within an epoch, bounded history, state snapshots, and
 * idempotent publish by id.
 */
import type { AlertAck, ChannelClass, SnapshotEntry, StoredEvent } from '../../protocol/index.js';

export interface PublishInput {
  readonly channel: string;
  readonly key: string | null;
  readonly data: unknown;
  /** Idempotency key: a retry with the same id returns the first result, stored once. */
  readonly id?: string | undefined;
  /** `data` as JSON, when the caller serialized it already (validation does). */
  readonly json?: string | undefined;
  /** Seconds the event stays true (docs/protocol.md#expiring-events); absent: never expires. */
  readonly ttl?: number | undefined;
}

export interface PublishResult {
  channel: string;
  seq: number;
  epoch: string;
  duplicate?: true;
}

/** An event as fanned out to instances: stored event plus the epoch it belongs to. */
export interface BackplaneEvent extends StoredEvent {
  readonly epoch: string;
}

export interface HistoryRead {
  epoch: string;
  /** Latest seq of the channel. */
  seq: number;
  /** Oldest seq still held (seq + 1 when nothing is held). */
  firstSeq: number;
  /** Events with seq > sinceSeq, oldest first. */
  events: StoredEvent[];
}

export interface Snapshot {
  epoch: string;
  seq: number;
  entries: SnapshotEntry[];
}

export interface HistoryLimits {
  /** Max events kept per stream channel, and how long (ms). */
  readonly streamSize: number;
  readonly streamTtlMs: number;
  /** Alert channels keep more, for longer: an alert must survive a long disconnect. */
  readonly alertSize: number;
  readonly alertTtlMs: number;
}

/** A risk alert still held, as operators see it (GET /api/v1/admin/alerts). */
export interface HeldAlert extends StoredEvent {
  readonly epoch: string;
  /** Null while unacknowledged. */
  readonly ack: AlertAck | null;
  /** How many times it was handed to each user's connections (live, replayed or listed). */
  readonly deliveries: Readonly<Record<string, number>>;
}

/** Deliveries of one alert to one user, counted by an instance and added up in the backplane. */
export interface DeliveryCount {
  readonly channel: string;
  readonly epoch: string;
  readonly seq: number;
  readonly user: string;
  readonly count: number;
}

/** The alerts of a risk channel still waiting for an acknowledgement, oldest first. */
export interface UnackedRead {
  readonly epoch: string;
  readonly alerts: StoredEvent[];
}

export interface BackplaneListener {
  /** A published event reached this instance (only for channels it subscribed to). */
  event(event: BackplaneEvent): void;
  /** An alert of a channel this instance subscribed to was acknowledged (on any instance). */
  acked(channel: string, epoch: string, seq: number, ack: AlertAck): void;
  /** Acknowledgements of these risk channels may have been missed (cluster mode: the Redis
   * subscriber connection was away): their subscribers need the list of what still waits. */
  acksMissed(channels: string[]): void;
  /** These channels changed epoch or lost events: live subscribers must resync. */
  resync(channels: string[]): void;
}

export interface Backplane {
  readonly kind: 'memory' | 'redis';
  start(listener: BackplaneListener): Promise<void>;
  stop(): Promise<void>;
  /** Numbers, stores and fans out; resolves once stored (never waits on subscribers). All or
   * nothing: a rejection means no event of the batch was stored. */
  publish(events: readonly PublishInput[]): Promise<PublishResult[]>;
  /** This instance has local subscribers for the channel: deliver its events here. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  history(channel: string, sinceSeq: number): Promise<HistoryRead>;
  snapshot(channel: string): Promise<Snapshot>;
  /** False while the backplane cannot store (publish would fail). */
  healthy(): boolean;
  /**
   * Acknowledges a held alert (docs/protocol.md#ack), stored with who and when, and tells every
   * instance subscribed to the channel. Returns the acknowledgement that stands (the first one:
   * `first` is false when someone acknowledged it before), or null when no such alert is held
   * (another epoch, expired, trimmed, never published).
   */
  ack(
    channel: string,
    epoch: string,
    seq: number,
    ack: AlertAck,
  ): Promise<{ ack: AlertAck; first: boolean } | null>;
  /** The held, unexpired, unacknowledged alerts of a risk channel. */
  unacked(channel: string): Promise<UnackedRead>;
  /** Every held, unexpired alert of every risk channel, acknowledged or not, with its
   * deliveries: what operators see. */
  alerts(): Promise<HeldAlert[]>;
  /** Adds deliveries of alerts to users (counted by the hub, sent in batches). */
  countDeliveries(counts: readonly DeliveryCount[]): Promise<void>;
}

/** How much history a channel of this class keeps: alerts more, for longer. */
export function historyBounds(
  limits: HistoryLimits,
  cls: ChannelClass,
): { size: number; ttlMs: number } {
  return cls === 'alert'
    ? { size: limits.alertSize, ttlMs: limits.alertTtlMs }
    : { size: limits.streamSize, ttlMs: limits.streamTtlMs };
}

/**
 * Whether a read holds every event after `sinceSeq` in its epoch: the rule behind
 * `recovered` on subscribe and `complete` in GET /api/v1/history. A since ahead of the
 * channel is not covered (it belongs to another history).
 */
export function historyCovers(read: HistoryRead, sinceSeq: number): boolean {
  return sinceSeq <= read.seq && (sinceSeq >= read.seq || read.firstSeq <= sinceSeq + 1);
}
