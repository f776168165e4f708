/**
 * The hub maps channels to local subscriptions and fans published events out to them.
 * It knows the Backplane interface only. Each event is serialized and framed once; each
 * subscriber's connection queues the same Frame. Writes are batched: connections that got
 * frames are flushed in setImmediate turns of at most FLUSH_SLICE connections, one corked
 * socket write each (docs/performance.md, "Publish never waits on fan-out").
 *
 * About 650 lines, one job: what reaches a channel's local subscriptions, and in which order.
 * Opening a subscription (snapshot, replay with its `expired` stand-ins, the `unacked` list),
 * the live fan-out and the `acked` notices share the subscriptions' state (recovering, pending,
 * last seq) and one fan-out queue, which is what keeps them in order. The reads it shares
 * (history-reads.ts), the replay frames (replay-frames.ts) and the delivery counts
 * (alert-deliveries.ts) live beside it; what a frame does to a delta client's values is
 * the frame's (frame.ts), decided at write time (deltas.ts).
 */
import {
  ArchonError,
  isExpired,
  isReplayable,
  type AlertAck,
  type ChannelInfo,
  type EventMessage,
  type ExpiredMessage,
  type Since,
  type StoredEvent,
  type SystemMessage,
} from '../protocol/index.js';
import {
  historyCovers,
  type Backplane,
  type BackplaneEvent,
  type BackplaneListener,
  type UnackedRead,
} from './backplane/backplane.js';
import { MAX_UNACKED_SENT, seqRanges } from '../protocol/index.js';
import { AlertDeliveries } from './alert-deliveries.js';
import { performance } from 'node:perf_hooks';
import { Fifo } from './fifo.js';
import { Frame } from './frame.js';
import { CoalescedReads, HistoryReads } from './history-reads.js';
import { LatestValues } from './latest-values.js';
import type { Logger } from './logging.js';
import type { Metrics } from './metrics.js';
import { ReplayFrames } from './replay-frames.js';

/** What the hub needs of a connection. */
export interface Subscriber {
  readonly id: string;
  /** The signed-in user (`sub`), whom alert deliveries are counted for; null before hello. */
  readonly userId: string | null;
  /** Gets state updates as deltas (docs/protocol.md#deltas); settled before it subscribes. */
  readonly deltas: boolean;
  /** Queues a frame; false when the connection is gone or was closed for being slow. */
  send(frame: Frame, now?: number, replay?: boolean): boolean;
  /** A live event: written at once when nothing waits before it, else queued; true when a
   * flush must follow (it was queued). */
  sendLive(frame: Frame, now: number): boolean;
  /** Writes what is queued; called by the hub's flush turn. */
  flush(now?: number): void;
  /** True while the subscriber waits in the hub's flush list; only the hub writes it. */
  flushListed: boolean;
  /** The connection's subscription to a channel was dropped by the server: tell it. */
  resync(channels: string[]): void;
  /** Receives system broadcasts (only once authenticated). */
  readonly receivesBroadcasts: boolean;
  /** Takes `bytes` from the replay budget of the connection's user; false when it is used up. */
  mayReplay(bytes: number, now?: number): boolean;
  /** Bytes left in that budget now. */
  replayLeft(now?: number): number;
}

/** Connections written (or deliveries handed out) per event-loop turn at most (see flushAll). */
export const FLUSH_SLICE = 1000;

/**
 * A slice also ends after this long (checked every SLICE_CHECK items), so a publish or a ping
 * that arrives during a fan-out waits at most about this long, on any machine: 1,000
 * deliveries took 9 ms on the benchmark machine (docs/performance.md).
 */
export const SLICE_MS = 2;
const SLICE_CHECK = 64;

/** Replayed frames kept for sharing between resuming subscribers. */
const REPLAY_CACHE_BYTES = 32 << 20;

/** An event on its way to a channel's subscribers, FLUSH_SLICE deliveries per turn. */
interface FanOut {
  readonly frame: Frame;
  readonly seq: number;
  readonly epoch: string;
  /** The channel's subscriptions still to visit (a live iterator: one that leaves is skipped,
   * one that joins meanwhile is visited and takes the event only if its replay did not). */
  readonly subs: Iterator<Subscription>;
  /** An `acked` notice: it waits behind the events that arrived before it, so no client hears
   * of an acknowledgement before the alert it names. */
  readonly ack?: true;
}

interface PendingEvent {
  readonly frame: Frame;
  readonly seq: number;
  readonly epoch: string;
  /** An `acked` notice, not an event: no seq of its own to check. */
  readonly ack?: true;
}

export class Subscription {
  state: 'recovering' | 'live' = 'recovering';
  epoch = '';
  lastSeq = 0;
  /** Live events that arrived while the snapshot or replay was being read (null when none:
   * thousands of idle subscriptions should not each hold an empty array). */
  pending: PendingEvent[] | null = null;
  /** A state channel's subscription of a connection that gets deltas. */
  readonly deltas: boolean;

  constructor(
    readonly subscriber: Subscriber,
    readonly channel: ChannelInfo,
  ) {
    this.deltas = subscriber.deltas && channel.class === 'state';
  }
}

interface LocalChannel {
  /** The channel's parsed name, shared by its subscriptions. */
  readonly info: ChannelInfo;
  readonly subs: Set<Subscription>;
  /** Settles once the backplane delivers this channel's events here. */
  readonly ready: Promise<void>;
  /** Subscriptions that get deltas, and while there are any, the bases of the deltas. */
  deltaSubs: number;
  latest: LatestValues | null;
}

export class Hub implements BackplaneListener {
  private readonly channels = new Map<string, LocalChannel>();
  /** Subscribers with something to write, in the order they got it (each listed once). */
  private readonly dirty = new Fifo<Subscriber>();
  private flushScheduled = false;
  /** Events being handed to their subscribers, in the order they arrived. */
  private readonly fanOuts = new Fifo<FanOut>();
  private fanOutScheduled = false;
  private readonly replays = new ReplayFrames(REPLAY_CACHE_BYTES);
  /** Resuming subscribers of one channel share history reads (a reconnect storm), and the
   * subscribers of a risk channel its reads of unacknowledged alerts. */
  private readonly histories: HistoryReads;
  private readonly unackedReads: CoalescedReads<undefined, UnackedRead>;
  readonly alertDeliveries: AlertDeliveries;
  /** `unacked` frames by the read they were built from (see unackedFrame). */
  private readonly unackedFrames = new WeakMap<
    UnackedRead,
    Map<string, { frame: Frame; sent: number[] }>
  >();

  constructor(
    private readonly backplane: Backplane,
    /** Every local connection (the gateway's one registry): system broadcasts reach them. */
    private readonly subscribers: ReadonlySet<Subscriber>,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.histories = new HistoryReads((channel, sinceSeq) =>
      this.backplane.history(channel, sinceSeq),
    );
    this.unackedReads = new CoalescedReads(
      (channel) => this.backplane.unacked(channel),
      () => undefined,
    );
    this.alertDeliveries = new AlertDeliveries(backplane, (err) => {
      this.metrics.backplaneErrors.inc();
      this.log.warn({ err }, 'Alert deliveries not counted');
    });
  }

  /** The parsed channel of a name some subscription here already holds (shared, not
   * parsed again), or null. */
  channelInfo(name: string): ChannelInfo | null {
    return this.channels.get(name)?.info ?? null;
  }

  /**
   * Opens a subscription: registers it first so no live event is missed, then reads the
   * snapshot or the replay, queues `subscribed` + snapshot/replay, and finally releases the
   * live events that arrived meanwhile, skipping those the replay already covered. What is
   * replayed comes out of the connection's replay budget: a subscribe that would exceed it
   * fails with `replay_limited` and sends nothing. Any failure leaves nothing registered.
   */
  async subscribe(sub: Subscription, since: Since | undefined, id: number | string | undefined) {
    const name = sub.channel.name;
    let local = this.channels.get(name);
    if (!local) {
      const ready = this.backplane.subscribe(name);
      local = { info: sub.channel, subs: new Set(), ready, deltaSubs: 0, latest: null };
      this.channels.set(name, local);
      ready.catch(() => {
        if (this.channels.get(name)?.ready === ready) this.channels.delete(name);
      });
    }
    local.subs.add(sub);
    if (sub.deltas && local.deltaSubs++ === 0) local.latest = new LatestValues();
    let opening: Opening;
    try {
      await local.ready;
      opening = await this.opening(sub, since, id);
    } catch (err) {
      this.unsubscribe(sub);
      throw err;
    }
    if (this.channels.get(name)?.subs.has(sub) !== true) return; // dropped while reading
    const now = Date.now();
    for (const frame of opening.frames) {
      if (!sub.subscriber.send(frame, now, true)) return;
    }
    for (const alert of opening.alerts) this.alertDeliveries.count(sub, alert.epoch, alert.seq);
    const pending = sub.pending ?? [];
    sub.pending = null;
    sub.state = 'live';
    for (const p of pending) {
      if (p.ack) {
        if (p.epoch === sub.epoch) sub.subscriber.send(p.frame, now);
      } else {
        this.deliver(sub, p.frame, p.seq, p.epoch, now);
      }
      p.frame.release();
    }
    this.scheduleFlush(sub.subscriber);
  }

  /**
   * The frames that open a subscription: `subscribed`, then the snapshot or the replay (an
   * expired event of the replay goes as `expired`), then on a risk channel the `unacked` list;
   * and the alerts they hand over, whose deliveries are counted once the frames are queued.
   */
  private async opening(
    sub: Subscription,
    since: Since | undefined,
    id: number | string | undefined,
  ): Promise<Opening> {
    const name = sub.channel.name;
    const cls = sub.channel.class;
    const after: Frame[] = [];
    const alerts: { epoch: string; seq: number }[] = [];
    let replayed = 0;
    let recovered = true;
    // A budget used up refuses before anything is read: refusals must cost next to nothing.
    if ((cls === 'state' || since !== undefined) && sub.subscriber.replayLeft() < 1)
      throw replayLimited(name);
    if (cls === 'state') {
      const snapshot = await this.backplane.snapshot(name);
      sub.epoch = snapshot.epoch;
      sub.lastSeq = snapshot.seq;
      after.push(
        Frame.of(
          {
            type: 'snapshot',
            channel: name,
            epoch: snapshot.epoch,
            seq: snapshot.seq,
            entries: snapshot.entries,
          },
          'state',
        ),
      );
    } else if (isReplayable(cls)) {
      const history = await this.histories.history(name, since?.seq ?? Number.MAX_SAFE_INTEGER);
      if (since) {
        recovered = since.epoch === history.epoch && historyCovers(history, since.seq);
        this.metrics.recovery(recovered ? 'recovered' : 'not_recovered');
      }
      sub.epoch = history.epoch;
      sub.lastSeq = history.seq;
      if (recovered && since) {
        replayed = history.events.length;
        this.replayFrames(after, sub.channel, history, since.seq);
        if (cls === 'alert')
          for (const e of history.events) alerts.push({ epoch: history.epoch, seq: e.seq });
      }
    }
    const bytes = after.reduce((n, f) => n + f.size, 0);
    let charged = false;
    if (cls === 'alert') {
      const unacked = await this.unackedReads.read(name, undefined);
      // What the client holds already is named by seq only: alerts up to its resume point,
      // those replayed now, and those after the subscription's seq (they arrive live).
      const sameEpoch = since !== undefined && since.epoch === unacked.epoch;
      const known = !sameEpoch ? 0 : recovered ? sub.lastSeq : since.seq;
      let list = this.unackedFrame(name, unacked, known, sub.lastSeq);
      // The alerts in full come out of the replay budget with the replay; when it cannot pay
      // for them they are named by seq only (never charged): a subscription is not refused
      // for its list.
      if (list.sent.length > 0) {
        if (sub.subscriber.mayReplay(bytes + list.frame.size)) charged = true;
        else list = this.unackedFrame(name, unacked, Infinity, 0);
      }
      after.push(list.frame);
      for (const seq of list.sent) alerts.push({ epoch: unacked.epoch, seq });
    }
    if (!charged && bytes > 0 && !sub.subscriber.mayReplay(bytes)) throw replayLimited(name, bytes);
    const subscribed = Frame.of(
      {
        type: 'subscribed',
        ...(id !== undefined && { id }),
        channel: name,
        epoch: sub.epoch,
        seq: sub.lastSeq,
        recovered,
        replayed,
      },
      'control',
      // Answers for an alert channel travel in the alert lane, ahead of its events.
      cls === 'alert' ? 'priority' : 'normal',
    );
    return { frames: [subscribed, ...after], alerts };
  }

  /** The replay of seqs after `sinceSeq` up to `lastSeq`: held events as they are, and for
   * each run of seqs missing between them (expired: history holds every seq it covers) one
   * `expired` message, so the client's seq moves on without a gap. */
  private replayFrames(
    out: Frame[],
    channel: ChannelInfo,
    history: { readonly epoch: string; readonly seq: number; readonly events: StoredEvent[] },
    sinceSeq: number,
  ): void {
    let next = sinceSeq + 1;
    const expired = (to: number): void => {
      if (to < next) return;
      out.push(
        Frame.of(
          { type: 'expired', channel: channel.name, from_seq: next, seq: to },
          channel.class,
        ),
      );
    };
    for (const event of history.events) {
      expired(event.seq - 1);
      out.push(this.replays.frame(event, history.epoch, channel.class));
      next = event.seq + 1;
    }
    expired(history.seq);
  }

  /**
   * The `unacked` frame of a read for a client that holds the alerts up to `known` and gets
   * those after `lastSeq` live: the rest of the waiting ones in full, MAX_UNACKED_SENT newest
   * at most. Built once per read and bounds, so a storm of subscribers sharing one read shares
   * its frames too.
   */
  private unackedFrame(
    channel: string,
    unacked: UnackedRead,
    known: number,
    lastSeq: number,
  ): { frame: Frame; sent: number[] } {
    let frames = this.unackedFrames.get(unacked);
    if (!frames)
      this.unackedFrames.set(
        unacked,
        (frames = new Map<string, { frame: Frame; sent: number[] }>()),
      );
    const id = `${known}:${lastSeq}`;
    const cached = frames.get(id);
    if (cached) return cached;
    const sent = unacked.alerts
      .filter((e) => e.seq > known && e.seq <= lastSeq)
      .slice(-MAX_UNACKED_SENT);
    const built = {
      frame: Frame.of(
        {
          type: 'unacked',
          channel,
          epoch: unacked.epoch,
          seqs: seqRanges(unacked.alerts.map((e) => e.seq)),
          alerts: sent.map(({ seq, key, ts, data, expires_at }) =>
            expires_at === undefined ? { seq, key, ts, data } : { seq, key, ts, data, expires_at },
          ),
        },
        'alert',
      ),
      sent: sent.map((e) => e.seq),
    };
    frames.set(id, built);
    return built;
  }

  /** Acknowledges a held alert in the backplane (docs/protocol.md#ack). */
  ack(channel: string, epoch: string, seq: number, ack: AlertAck) {
    return this.backplane.ack(channel, epoch, seq, ack);
  }

  /** Backplane: acknowledgements of these channels may have been missed; each live
   * subscription gets the channel's `unacked` list again (docs/protocol.md#unacked). */
  acksMissed(channels: string[]): void {
    for (const name of channels) {
      if (!this.channels.has(name)) continue;
      this.unackedReads
        .read(name, undefined)
        .then((unacked) => {
          // A live subscription holds every alert of its epoch already: seqs only.
          const { frame } = this.unackedFrame(name, unacked, Infinity, 0);
          for (const sub of this.channels.get(name)?.subs ?? []) {
            if (sub.state !== 'live' || sub.epoch !== unacked.epoch) continue;
            if (sub.subscriber.send(frame)) this.scheduleFlush(sub.subscriber);
          }
        })
        .catch((err: unknown) => {
          this.metrics.backplaneErrors.inc();
          this.log.warn({ err, channel: name }, 'Unacknowledged alerts not read again');
        });
    }
  }

  /** Backplane: an alert was acknowledged; every subscriber of its channel is told, in the
   * fan-out's order (after the events that arrived before it), those still opening after
   * their `unacked` list. */
  acked(channel: string, epoch: string, seq: number, ack: AlertAck): void {
    const set = this.channels.get(channel)?.subs;
    if (!set || set.size === 0) return;
    const frame = Frame.of({ type: 'acked', channel, epoch, seq, by: ack.by, at: ack.at }, 'alert');
    frame.retain();
    this.fanOuts.push({ frame, seq, epoch, subs: set.values(), ack: true });
    this.requestFanOutTurn();
  }

  private deliverAck(sub: Subscription, frame: Frame, seq: number, epoch: string): void {
    if (sub.state === 'recovering') {
      frame.retain();
      (sub.pending ??= []).push({ frame, seq, epoch, ack: true });
    } else if (sub.epoch === epoch && sub.subscriber.send(frame)) {
      this.scheduleFlush(sub.subscriber);
    }
  }

  unsubscribe(sub: Subscription): void {
    const local = this.channels.get(sub.channel.name);
    if (!local?.subs.delete(sub)) return;
    if (sub.deltas && --local.deltaSubs === 0) local.latest = null;
    for (const p of sub.pending ?? []) p.frame.release();
    sub.pending = null;
    if (local.subs.size === 0) {
      this.channels.delete(sub.channel.name);
      this.backplane.unsubscribe(sub.channel.name).catch((err: unknown) => {
        this.metrics.backplaneErrors.inc();
        this.log.warn({ err, channel: sub.channel.name }, 'Backplane unsubscribe failed');
      });
    }
  }

  /** Backplane: an event for a channel with local subscribers. */
  event(event: BackplaneEvent): void {
    if (event.channel === 'system') {
      this.broadcastLocal(event);
      return;
    }
    const local = this.channels.get(event.channel);
    const set = local?.subs;
    if (!local || !set || set.size === 0) return;
    const sample = set.values().next().value as Subscription;
    const cls = sample.channel.class;
    const message: EventMessage | ExpiredMessage = isExpired(event, Date.now())
      ? { type: 'expired', channel: event.channel, from_seq: event.seq, seq: event.seq }
      : {
          type: 'event',
          channel: event.channel,
          seq: event.seq,
          key: event.key,
          ts: event.ts,
          data: event.data,
          ...(event.expires_at !== undefined && { expires_at: event.expires_at }),
        };
    let payload: Buffer;
    try {
      payload = Buffer.from(JSON.stringify(message));
    } catch (err) {
      // Publish validates data, so this is another writer's event (a Redis shared with an
      // older version): the subscribers must not miss it silently.
      this.log.error({ err, channel: event.channel, seq: event.seq }, 'Event cannot be sent');
      this.resync([event.channel]);
      return;
    }
    const frame = new Frame(payload, {
      cls,
      channel: event.channel,
      conflateKey:
        cls === 'state' && event.key !== null ? `${event.channel}\u0000${event.key}` : null,
      acceptedAt: event.ts,
      onSettled: this.settled,
      position: { channel: event.channel, epoch: null, seq: event.seq },
      ...(message.type === 'event' &&
        event.expires_at !== undefined && { expiresAt: event.expires_at, seq: event.seq }),
      // Only while a subscriber here gets deltas: built once, shared by all of them.
      stateChange: local.latest?.change(event, message, payload.length) ?? null,
    });
    // Held until every subscriber has it, so the frame cannot settle halfway through a
    // fan-out that spans several turns.
    frame.retain();
    this.fanOuts.push({ frame, seq: event.seq, epoch: event.epoch, subs: set.values() });
    this.requestFanOutTurn();
  }

  private requestFanOutTurn(): void {
    if (this.fanOutScheduled) return;
    this.fanOutScheduled = true;
    setImmediate(this.fanOutTurn);
  }

  /** Shutdown: every event that arrived reaches its subscribers now, unsliced, so closing
   * the connections writes it before the close. */
  finishFanOuts(): void {
    this.fanOut(Infinity);
  }

  /**
   * Hands waiting events to their subscribers, at most FLUSH_SLICE deliveries or SLICE_MS per
   * event-loop turn: a fan-out to 10,000 subscribers takes ten turns, and publishes, pings and new
   * connections are served between them (docs/performance.md). Events go out in the order
   * they arrived, so no subscriber sees a channel's events out of order.
   */
  private readonly fanOutTurn = (): void => {
    this.fanOutScheduled = false;
    this.fanOut(FLUSH_SLICE, performance.now() + SLICE_MS);
    if (this.fanOuts.length > 0) this.requestFanOutTurn();
  };

  private fanOut(budget: number, until = Infinity): void {
    const now = Date.now();
    for (let job = this.fanOuts.peek(); job; job = this.fanOuts.peek()) {
      for (;;) {
        if (budget-- <= 0) return;
        if (budget % SLICE_CHECK === 0 && performance.now() > until) return;
        const next = job.subs.next();
        if (next.done) break;
        if (job.ack) this.deliverAck(next.value, job.frame, job.seq, job.epoch);
        else this.deliver(next.value, job.frame, job.seq, job.epoch, now);
      }
      this.fanOuts.shift();
      job.frame.release();
    }
  }

  /** Backplane: these channels lost events or changed epoch; subscribers must resubscribe. */
  resync(channels: string[]): void {
    for (const name of channels) {
      const local = this.channels.get(name);
      if (!local) continue;
      for (const sub of [...local.subs]) this.dropSubscription(sub);
    }
  }

  /** Drops a live subscription and tells the client to resubscribe with since. */
  dropSubscription(sub: Subscription): void {
    this.unsubscribe(sub);
    sub.subscriber.resync([sub.channel.name]);
  }

  /** How many local connections a system broadcast reaches now. */
  broadcastAudience(): number {
    let n = 0;
    for (const s of this.subscribers) if (s.receivesBroadcasts) n++;
    return n;
  }

  scheduleFlush(subscriber: Subscriber): void {
    if (subscriber.flushListed) return;
    subscriber.flushListed = true;
    this.dirty.push(subscriber);
    this.requestFlushTurn();
  }

  private requestFlushTurn(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(this.flushAll);
  }

  /**
   * Writes the queues of the connections that have something to send, at most FLUSH_SLICE
   * of them or SLICE_MS per event-loop turn: a fan-out to 10,000 subscribers is written in slices, and
   * publishes, pings and new connections are served between them (docs/performance.md).
   * Each connection's own order is its queue's, so slicing never reorders a client's stream.
   */
  private readonly flushAll = (): void => {
    this.flushScheduled = false;
    const now = Date.now();
    const until = performance.now() + SLICE_MS;
    for (let n = 0; n < FLUSH_SLICE; n++) {
      if (n % SLICE_CHECK === SLICE_CHECK - 1 && performance.now() > until) break;
      const subscriber = this.dirty.shift();
      if (!subscriber) break;
      // Unlisted before it flushes: a flush that schedules itself again goes to the back.
      subscriber.flushListed = false;
      subscriber.flush(now);
    }
    if (this.dirty.length > 0) this.requestFlushTurn();
  };

  private deliver(sub: Subscription, frame: Frame, seq: number, epoch: string, now: number): void {
    if (sub.state === 'recovering') {
      frame.retain();
      (sub.pending ??= []).push({ frame, seq, epoch });
      return;
    }
    if (epoch !== sub.epoch) {
      // The channel's history was lost under a live subscription (backplane restarted).
      this.dropSubscription(sub);
      return;
    }
    if (seq <= sub.lastSeq) return; // already sent by the replay
    sub.lastSeq = seq;
    if (sub.subscriber.sendLive(frame, now)) this.scheduleFlush(sub.subscriber);
    if (frame.cls === 'alert') this.alertDeliveries.count(sub, epoch, seq);
  }

  private broadcastLocal(event: BackplaneEvent): void {
    const data = event.data as { message?: unknown } | null;
    const message: SystemMessage = {
      type: 'system',
      message: typeof data?.message === 'string' ? data.message : '',
      ts: event.ts,
    };
    const frame = new Frame(Buffer.from(JSON.stringify(message)), {
      cls: 'broadcast',
      acceptedAt: event.ts,
      onSettled: this.settled,
    });
    frame.retain();
    for (const subscriber of this.subscribers) {
      if (subscriber.receivesBroadcasts && subscriber.send(frame)) this.scheduleFlush(subscriber);
    }
    frame.release();
  }

  private readonly settled = (frame: Frame): void => {
    this.metrics.broadcastSettled(Math.max(0, Date.now() - frame.acceptedAt) / 1000);
  };
}

/** What opens a subscription, and the alerts it hands over (their deliveries are counted). */
interface Opening {
  readonly frames: Frame[];
  readonly alerts: { readonly epoch: string; readonly seq: number }[];
}

function replayLimited(channel: string, bytes?: number): ArchonError {
  const need = bytes === undefined ? '' : ` needs ${bytes} bytes,`;
  return new ArchonError(
    'replay_limited',
    `replaying ${channel}${need} more than is left of this user's replay budget: retry later`,
  );
}
