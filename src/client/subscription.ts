/**
 * One channel subscription across connections: its state, its resume point, and the rules
 * that keep what the application sees in seq order with each seq at most once (replays,
 * resubscribes and history reads overlap; duplicates are dropped, nothing is reordered).
 */
import {
  isPermanentError,
  isReplayable,
  rangeSeqs,
  type AckedMessage,
  type ChannelInfo,
  type EventMessage,
  type ExpiredMessage,
  type HistoryAnswer,
  type UnackedMessage,
  type SnapshotMessage,
  type SubscribeOp,
  type SubscribedMessage,
} from '../protocol/index.js';
import { Emitter, type Listenable } from './events.js';
import { planRecovery } from './recovery.js';
import { StateValues } from './state-values.js';
import type {
  AlertAckInfo,
  ChannelEvent,
  ChannelSnapshot,
  ClientError,
  Gap,
  Position,
  UnackedAlerts,
} from './types.js';

/**
 * - `subscribing`: waiting for a connection or for the server's `subscribed`;
 * - `live`: events flow as they happen;
 * - `recovering`: the resume could not be replayed; missed events are read from history
 *   (live ones wait, so the order holds);
 * - `failed`: the server refused the channel (forbidden, unknown); not retried;
 * - `unsubscribed`: ended by the application.
 */
export type SubscriptionState = 'subscribing' | 'live' | 'recovering' | 'failed' | 'unsubscribed';

export interface SubscriptionEvents<T> {
  state: [state: SubscriptionState];
  event: [event: ChannelEvent<T>];
  /** State channels: the full content, after every (re)subscribe. */
  snapshot: [snapshot: ChannelSnapshot<T>];
  gap: [gap: Gap];
  error: [error: ClientError];
  /** Risk channels: the alerts still waiting, after every (re)subscribe. */
  unacked: [list: UnackedAlerts<T>];
  /** Risk channels: an alert was acknowledged, here or by anyone on any device. */
  acked: [ack: AlertAckInfo];
}

export interface Subscription<T = unknown> extends Listenable<SubscriptionEvents<T>> {
  readonly channel: string;
  readonly state: SubscriptionState;
  /**
   * The resume point: the epoch of the subscription and the seq of the last event handed to
   * the application (of the snapshot, on a state channel). Null before the first subscribe.
   */
  readonly position: Position | null;
  /** Why the subscription failed, when it did. */
  readonly error: ClientError | null;
  /**
   * When the data the application holds was current (ms since the Unix epoch): the `ts` of
   * the last event handed over (when the gateway accepted it), or the arrival of the last
   * snapshot. Null before any.
   */
  readonly asOf: number | null;
  /**
   * True when the data may be out of date: the subscription is not live (subscribing,
   * recovering, failed) or the connection is not confirmed live (state `stale`,
   * `reconnecting`…: nothing heard for longer than a ping is due). Changes with the
   * subscription's `state` event and the client's `state` event.
   */
  readonly stale: boolean;
  /** How old the data is at `now` (ms): now − asOf; null before any data. */
  ageMs(now?: number): number | null;
  /** Ends the subscription (tells the server when connected). */
  unsubscribe(): void;
}

/** What a subscription needs from its client. */
export interface SubscriptionHost {
  /** GET /api/v1/history; null when it cannot be read (the SDK reports why). */
  history(channel: string, since: Position, signal: AbortSignal): Promise<HistoryAnswer | null>;
  unsubscribe(channel: string): void;
  /** True unless the connection is up and confirmed live (client state `connected`). */
  linkStale(): boolean;
  /** The connection gets state updates as deltas (its `welcome` said so). */
  deltas(): boolean;
  /** Subscribes the channel again on this connection (a delta it cannot apply). */
  resubscribe(channel: string): void;
}

interface Recovery {
  readonly abort: AbortController;
  /** Live events (and `expired` stand-ins) that arrived during the history read, released
   * after it. */
  readonly held: (EventMessage | ExpiredMessage)[];
}

export class ChannelSubscription<T = unknown>
  extends Emitter<SubscriptionEvents<T>>
  implements Subscription<T>
{
  readonly channel: string;
  private stateValue: SubscriptionState = 'subscribing';
  private positionValue: Position | null;
  private errorValue: ClientError | null = null;
  /** The id of the `subscribe` in flight. */
  private pendingId: number | null = null;
  /** The resume point that `subscribe` carried. */
  private sentSince: Position | null = null;
  /** The epoch of the current subscription on this connection; null until `subscribed`. */
  private epoch: string | null = null;
  /** Events up to this seq are the resume's replay (0: none): `expired` may stand in for
   * some of them, so the replay is told by seq, not counted. */
  private replayTo = 0;
  private recovery: Recovery | null = null;
  private asOfValue: number | null = null;
  /** State channels on a connection that gets deltas: the values deltas patch. */
  private values: StateValues | null = null;

  constructor(
    private readonly info: ChannelInfo,
    private readonly host: SubscriptionHost,
    since: Position | null = null,
  ) {
    super();
    this.channel = info.name;
    this.positionValue = since && this.replayable ? { ...since } : null;
  }

  get asOf(): number | null {
    return this.asOfValue;
  }

  get stale(): boolean {
    return this.stateValue !== 'live' || this.host.linkStale();
  }

  ageMs(now = Date.now()): number | null {
    return this.asOfValue === null ? null : Math.max(0, now - this.asOfValue);
  }

  get state(): SubscriptionState {
    return this.stateValue;
  }

  get position(): Position | null {
    return this.positionValue && { ...this.positionValue };
  }

  get error(): ClientError | null {
    return this.errorValue;
  }

  /** Whether the next connection should subscribe it. */
  get wanted(): boolean {
    return this.stateValue !== 'failed' && this.stateValue !== 'unsubscribed';
  }

  unsubscribe(): void {
    if (this.stateValue === 'unsubscribed') return;
    this.reset();
    this.setState('unsubscribed');
    this.host.unsubscribe(this.channel);
  }

  // --- driven by the client ------------------------------------------------------------------

  /** The `subscribe` op for request `id`: with `since` on stream and alert channels. */
  subscribeOp(id: number): SubscribeOp {
    this.reset();
    this.pendingId = id;
    this.sentSince = this.replayable ? this.positionValue : null;
    this.setState('subscribing');
    const since = this.sentSince;
    return { op: 'subscribe', id, channel: this.channel, ...(since && { since: { ...since } }) };
  }

  /** True when `id` is the subscribe in flight (answers to older ones are ignored). */
  awaits(id: number | string | undefined): boolean {
    return id !== undefined && id === this.pendingId;
  }

  onSubscribed(msg: SubscribedMessage): void {
    this.pendingId = null;
    this.epoch = msg.epoch;
    this.replayTo = msg.replayed > 0 ? msg.seq : 0;
    const since = this.sentSince;
    const current = { epoch: msg.epoch, seq: msg.seq };
    if (!this.replayable) {
      // A state channel goes live with its snapshot, which follows.
      if (this.info.class === 'broadcast') this.setState('live');
      return;
    }
    if (since === null) {
      this.positionValue = current;
      this.setState('live');
    } else if (msg.recovered && since.epoch === msg.epoch) {
      this.setState('live'); // the missed events follow: replayed, then live
    } else {
      this.recover(since, current);
    }
  }

  onSnapshot(msg: SnapshotMessage): void {
    if (this.epoch === null) return;
    this.positionValue = { epoch: msg.epoch, seq: msg.seq };
    this.asOfValue = Date.now();
    this.values = this.host.deltas() ? new StateValues(msg.entries, msg.seq) : null;
    this.emit('snapshot', {
      channel: this.channel,
      epoch: msg.epoch,
      seq: msg.seq,
      entries: msg.entries.map((e) => ({ key: e.key, data: e.data as T })),
    });
    this.setState('live');
  }

  onEvent(msg: EventMessage): void {
    // Before `subscribed` on this connection: an event of a dropped subscription; the
    // resubscribe's since covers it.
    if (this.epoch === null) return;
    if (this.recovery) {
      this.recovery.held.push(msg);
      return;
    }
    if (msg.key !== null && (this.values !== null || msg.base_seq !== undefined)) {
      const last = this.positionValue;
      if (last?.epoch === this.epoch && msg.seq <= last.seq) return; // handed over already
      const data = this.values?.take(msg.key, msg);
      if (data === undefined) {
        // A patch on a value not held here (never expected): start over from a snapshot.
        this.host.resubscribe(this.channel);
        return;
      }
      msg = { ...msg, data };
    }
    let source: ChannelEvent['source'] = 'live';
    if (msg.seq <= this.replayTo) source = 'replay';
    this.deliver(msg, this.epoch, source);
  }

  /** Events that expired before they reached this connection: the position moves on, nothing
   * is handed over (docs/protocol.md#expired). */
  onExpired(msg: ExpiredMessage): void {
    if (this.epoch === null) return;
    if (this.recovery) {
      this.recovery.held.push(msg);
      return;
    }
    const last = this.positionValue;
    if (last && last.epoch === this.epoch) {
      if (msg.seq <= last.seq) return;
      if (this.replayable && msg.from_seq > last.seq + 1)
        this.gap({
          channel: this.channel,
          reason: 'skipped',
          after: last,
          before: { epoch: this.epoch, seq: msg.from_seq },
        });
    }
    this.positionValue = { epoch: this.epoch, seq: msg.seq };
  }

  onUnacked(msg: UnackedMessage): void {
    if (this.epoch === null || msg.epoch !== this.epoch) return;
    this.emit('unacked', {
      channel: this.channel,
      epoch: msg.epoch,
      seqs: rangeSeqs(msg.seqs),
      alerts: msg.alerts.map((a) => ({
        channel: this.channel,
        epoch: msg.epoch,
        seq: a.seq,
        key: a.key,
        ts: a.ts,
        data: a.data as T,
      })),
    });
  }

  onAcked(msg: AckedMessage): void {
    this.emit('acked', {
      channel: msg.channel,
      epoch: msg.epoch,
      seq: msg.seq,
      by: msg.by,
      at: msg.at,
    });
  }

  /** An `error` answering this subscription's `subscribe`. */
  onRefused(code: string, message: string): 'failed' | 'retry' {
    this.pendingId = null;
    const error: ClientError = { code, message, channel: this.channel };
    this.emit('error', error);
    if (!isPermanentError(code)) return 'retry';
    this.errorValue = error;
    this.setState('failed');
    return 'failed';
  }

  /** The connection is gone: everything tied to it is dropped; the resume point stays. */
  onDisconnect(): void {
    if (!this.wanted) return;
    this.reset();
    this.setState('subscribing');
  }

  // --- internals -----------------------------------------------------------------------------

  private get replayable(): boolean {
    return isReplayable(this.info.class);
  }

  private reset(): void {
    this.recovery?.abort.abort();
    this.recovery = null;
    this.pendingId = null;
    this.epoch = null;
    this.replayTo = 0;
    this.values = null;
  }

  private setState(state: SubscriptionState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.emit('state', state);
  }

  /** Hands one event over unless its seq was already handed over. */
  private deliver(
    msg: Omit<EventMessage, 'type'>,
    epoch: string,
    source: ChannelEvent['source'],
  ): void {
    const last = this.positionValue;
    if (last && last.epoch === epoch) {
      if (msg.seq <= last.seq) return;
      if (this.replayable && msg.seq > last.seq + 1)
        this.gap({
          channel: this.channel,
          reason: 'skipped',
          after: last,
          before: { epoch, seq: msg.seq },
        });
    }
    this.positionValue = { epoch, seq: msg.seq };
    this.asOfValue = msg.ts;
    this.emit('event', {
      channel: this.channel,
      epoch,
      seq: msg.seq,
      key: msg.key,
      ts: msg.ts,
      data: msg.data as T,
      source,
    });
  }

  /** A gap moves the resume point to just before the first event after the hole. */
  private gap(gap: Gap): void {
    this.positionValue = { epoch: gap.before.epoch, seq: gap.before.seq - 1 };
    this.emit('gap', gap);
  }

  /** recovered:false: read the hole from history while live events wait, then release them. */
  private recover(since: Position, subscribed: Position): void {
    const recovery: Recovery = { abort: new AbortController(), held: [] };
    this.recovery = recovery;
    this.setState('recovering');
    this.host
      .history(this.channel, since, recovery.abort.signal)
      .catch(() => null)
      .then((answer) => {
        if (this.recovery !== recovery) return; // superseded by a disconnect or resubscribe
        this.recovery = null;
        for (const step of planRecovery(this.channel, since, subscribed, answer)) {
          if (step.kind === 'gap') this.gap(step.gap);
          else this.deliver(step.event, subscribed.epoch, 'history');
        }
        // Live events continue from the subscription's seq + 1, whatever history held.
        this.positionValue = { ...subscribed };
        this.setState('live');
        for (const msg of recovery.held)
          if (msg.type === 'expired') this.onExpired(msg);
          else this.onEvent(msg);
      })
      .catch((err: unknown) => {
        // A throwing listener above: report it like the emitter does, outside this chain.
        queueMicrotask(() => {
          throw err;
        });
      });
  }
}
