/**
 * The backplane of cluster mode (docs/cluster.md): Redis numbers, stores and fans out events so
 * that N instances behave as one. Same guarantees as the memory backplane, shared by every
 * instance: per-channel seq without gaps within an epoch, bounded history, state snapshots,
 * idempotent publish by id. Redis is one primary (`redis://`) or a Redis Cluster
 * (`redis+cluster://`, docs/cluster.md#redis-cluster).
 *
 * Data model, per channel (prefix defaults to `archon:`; names in redis-keys.ts, where a
 * cluster adds the hash tag `{<channel>}`):
 * - `ch:<channel>:meta`   hash {epoch, seq}: the channel's epoch and last seq (a cluster adds
 *   `node`, the node that wrote it: a replica that took over starts a new epoch).
 * - `ch:<channel>:stream` stream (stream/alert channels): one entry per event with the explicit
 *   ID `<seq>-1`, so a seq range is an XRANGE; fields key (absent = null), ts, data (JSON
 *   text), exp; trimmed to the history size, expired by ts on read.
 * - `ch:<channel>:state`  hash key → data JSON (state channels).
 * - `ch:<channel>:exp`    sorted set key → expires_at ms (state keys published with a ttl),
 *   found by the expiry sweep through an index (redis-expiry.ts).
 * - `ch:<channel>:acks`, `ch:<channel>:deliv`: acknowledgements and deliveries of risk alerts
 *   (redis-alerts.ts).
 * - `ev:<channel>`        pub/sub channel (sharded in a cluster): JSON {channel, seq, key, ts,
 *   data, epoch, expires_at?}, or {acked: {epoch, by, at}, channel, seq} when an alert was
 *   acknowledged.
 * - `idem:…<channel>…<id>` the first result of a publish with that id (EX 600).
 *
 * Every write and every read that must agree with writes is one Lua script on one channel's
 * keys, so a publish is atomic (number, store, fan out) and a read sees one consistent moment of
 * the channel. On one primary a whole publish batch is one script; in a cluster each hash slot's
 * part of a batch is one (a batch over several channels is atomic per channel).
 *
 * Connections: commands (no offline queue, so publish fails fast while Redis is away: accepted
 * means stored), and the subscriber side (redis-subscriber.ts). What pub/sub lost while a
 * subscriber connection was away is replayed from the streams, or the channel is resynced when
 * that is impossible (epoch changed, history trimmed, state moved).
 *
 * About 800 lines, one job: the tracked-channel state (epoch, last seq, recovery buffers) and
 * what works on it: publish, subscriptions, reads and the replay after a reconnect, which must
 * see the same state to deliver nothing twice and skip nothing. Key names, connections, the
 * subscribers, alerts and the expiry sweep have modules of their own.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import {
  isReplayable,
  parseChannel,
  type AlertAck,
  type ChannelClass,
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
import { newEpoch } from './memory.js';
import { RedisAlerts } from './redis-alerts.js';
import { nodeOptions, redisClient, type RedisClient } from './redis-connect.js';
import { ExpirySweep, type Expiring } from './redis-expiry.js';
import { RedisKeys } from './redis-keys.js';
import {
  asArray,
  asNumber,
  asString,
  parseMessage,
  toStoredEvent,
  unexpired,
  type AckNotice,
} from './redis-replies.js';
import { archonScripts, type ArchonScripts, type ScriptArg } from './redis-scripts.js';
import { ShardSubscriber } from './redis-shard-subscriber.js';
import { keySlot } from './redis-slot.js';
import {
  SingleSubscriber,
  type ChannelSet,
  type EventSubscriber,
  type SubscriberEvents,
} from './redis-subscriber.js';
import { describeRedisTarget, parseRedisUrl, type RedisTarget } from './redis-url.js';

/** How long publish ids are remembered for idempotent retries (as in the memory backplane). */
const IDEMPOTENCY_TTL_S = 600;
/** A command Redis does not answer within this fails, so publish never hangs on a stalled
 * (not closed) connection. Its outcome is then unknown: retries with an id are safe. */
const COMMAND_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 5000;
/** A Redis Cluster's slot table is read again this often (and on every MOVED): how soon a
 * replica that took over is found when nothing is published to its slots. */
const SLOTS_REFRESH_MS = 1000;
/** A stream nobody published to for longer than its TTL holds only expired events: let
 * Redis drop the whole key then. The margin covers clock skew between instances and Redis. */
const STREAM_IDLE_MARGIN_MS = 60_000;
/** Live events held per channel while its replay is read after a reconnect; beyond this the
 * channel is resynced instead (memory stays bounded if the replay cannot be read for long). */
const RECOVERY_BUFFER_MAX = 10_000;
const RECOVERY_RETRY_MS = 500;

export interface RedisBackplaneLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RedisBackplaneOptions {
  /** ARCHON_REDIS_URL: one primary, or a Redis Cluster (redis-url.ts). */
  readonly url: string;
  readonly limits: HistoryLimits;
  /** Prefix of every key and pub/sub channel (several deployments can share one Redis). */
  readonly prefix?: string;
  readonly log?: RedisBackplaneLog;
  /** The clock of event `ts` and of history TTLs. */
  readonly now?: () => number;
}

/** What this instance knows of a channel it listens to. */
interface Tracked {
  readonly cls: ChannelClass;
  /** Epoch and last seq handed to the listener (or read when subscribing). */
  epoch: string;
  lastSeq: number;
  /** True from a subscriber disconnect until the replay has been delivered. */
  recovering: boolean;
  /** Counts disconnects and reconnects: one during a replay means that replay is not the last. */
  generation: number;
  /** Live events that arrived while recovering, delivered after the replay. */
  buffer: BackplaneEvent[];
  overflow: boolean;
  /** Acknowledgements that arrived while recovering: they follow the events they name. */
  acks: AckNotice[];
}

type Commands = RedisClient & ArchonScripts;

export class RedisBackplane implements Backplane {
  readonly kind = 'redis';
  private readonly target: RedisTarget;
  private readonly keys: RedisKeys;
  private readonly now: () => number;
  private readonly log: RedisBackplaneLog | undefined;
  /** The URL without credentials, for messages and logs. */
  private readonly safeUrl: string;
  private cmd: Commands | null = null;
  private subscriber: EventSubscriber | null = null;
  private listener: BackplaneListener | null = null;
  private readonly tracked = new Map<string, Tracked>();
  private readonly alertStore: RedisAlerts;
  private readonly expiry: ExpirySweep;
  private stopped = false;
  private cmdReadyOnce = false;
  private cmdDown = false;
  private recovery: Promise<void> | null = null;
  private recoverAgain = false;
  /** Failed replays in a row: the first is logged, the rest until one succeeds are not. */
  private recoveryFailures = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: RedisBackplaneOptions) {
    const target = parseRedisUrl(options.url);
    // The config refuses such a URL before this is built; here it is a programming error.
    if ('problem' in target) throw new Error(`Redis backplane: ${target.problem}`);
    this.target = target;
    this.keys = new RedisKeys(options.prefix ?? 'archon:', target.kind);
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.safeUrl = describeRedisTarget(target);
    const idleMs = historyBounds(options.limits, 'alert').ttlMs + STREAM_IDLE_MARGIN_MS;
    this.alertStore = new RedisAlerts(
      () => this.connection(),
      this.keys,
      options.limits,
      this.now,
      idleMs,
    );
    this.expiry = new ExpirySweep(
      () => this.cmd,
      this.keys,
      this.now,
      this.log,
      COMMAND_TIMEOUT_MS,
    );
  }

  async start(listener: BackplaneListener): Promise<void> {
    if (this.cmd) throw new Error('Redis backplane already started');
    this.listener = listener;
    this.stopped = false;
    this.cmdReadyOnce = false;
    this.cmdDown = false;
    const common: RedisOptions = {
      // No offline queue and no retries: while Redis is away a command fails at once
      // instead of waiting for a reconnect, so publish answers 503 and never hangs.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // A command in flight when the connection dropped may or may not have run: never
      // resend it (a publish without id would be stored twice); its caller gets an error.
      autoResendUnfulfilledCommands: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: CONNECT_TIMEOUT_MS,
      // Reconnect quickly (Redis restarts take about a second), capped so an outage
      // does not hammer it.
      retryStrategy: (times) => Math.min(100 * times, 1000),
    };
    const cmd = redisClient(this.target, {
      name: `${this.keys.prefix}cmd`,
      redis: common,
      slotsRefreshMs: SLOTS_REFRESH_MS,
    }) as Commands;
    for (const [name, script] of Object.entries(archonScripts(this.target.kind)))
      cmd.defineCommand(name, script);
    const events: SubscriberEvents = {
      message: this.onMessage,
      lost: this.onLost,
      back: this.onBack,
    };
    // ioredis reports why a connection failed on 'error' (connect() itself only says
    // "Connection is closed"); keep the last one for the start error. Listening also keeps
    // ioredis from printing every reconnect failure of an outage.
    const seen: { error: Error | null } = { error: null };
    const onError = (err: Error): void => {
      seen.error = err;
    };
    let subscriber: EventSubscriber;
    if (this.target.kind === 'single') {
      // Resubscribing is done here, not by ioredis (redis-subscriber.ts).
      const sub = redisClient(this.target, {
        name: `${this.keys.prefix}sub`,
        redis: { ...common, autoResubscribe: false },
      }) as Redis;
      sub.on('error', onError);
      subscriber = new SingleSubscriber(sub, this.keys, events, this.safeUrl);
    } else {
      // One connection per primary, opened when a channel there is first subscribed.
      const { retryStrategy, ...link } = common;
      subscriber = new ShardSubscriber(
        cmd as Cluster & ArchonScripts,
        this.keys,
        {
          ...link,
          ...nodeOptions(this.target),
          ...(retryStrategy && { retryStrategy }),
          connectionName: `${this.keys.prefix}sub`,
        },
        events,
      );
    }
    this.cmd = cmd;
    this.subscriber = subscriber;
    cmd.on('error', onError);
    cmd.on('close', this.onCommandClose);
    cmd.on('ready', this.onCommandReady);

    try {
      await Promise.all([cmd.connect(), subscriber.start()]);
    } catch (err) {
      this.cmd = null;
      this.subscriber = null;
      this.listener = null;
      cmd.disconnect();
      void subscriber.stop();
      const why = seen.error ?? err;
      const reason = why instanceof Error ? why.message : String(why);
      throw new Error(`Redis backplane: cannot connect to ${this.safeUrl}: ${reason}`, {
        cause: err,
      });
    }
    this.expiry.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.listener = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.expiry.stop();
    const cmd = this.cmd;
    const subscriber = this.subscriber;
    this.cmd = null;
    this.subscriber = null;
    this.tracked.clear();
    await Promise.all([
      subscriber?.stop(),
      (async () => {
        if (!cmd) return;
        if (cmd.status !== 'ready') {
          cmd.disconnect();
          return;
        }
        try {
          await cmd.quit();
        } catch {
          cmd.disconnect();
        }
      })(),
    ]);
  }

  healthy(): boolean {
    return this.cmd?.status === 'ready';
  }

  async publish(events: readonly PublishInput[]): Promise<PublishResult[]> {
    const cmd = this.connection();
    const ts = this.now();
    const expiring: Expiring[] = [];
    for (const input of events) {
      if (input.ttl === undefined || input.key === null || classOf(input.channel) !== 'state')
        continue;
      expiring.push({ channel: input.channel, expiresAt: expiresAt(ts, input.ttl) });
    }
    // A cluster indexes expiring keys before storing them (redis-expiry.ts); one primary in the
    // publish script.
    await this.expiry.beforePublish(cmd, expiring, ts);
    const results: PublishResult[] = [];
    await Promise.all(
      this.batches(events).map(async (indexes) => {
        const stored = await this.publishBatch(
          cmd,
          indexes.map((i) => events[i] as PublishInput),
          ts,
        );
        indexes.forEach((index, j) => (results[index] = stored[j] as PublishResult));
      }),
    );
    return results;
  }

  /** Indexes of the events one script stores: all of them on one primary (stored whole or not
   * at all), those of one hash slot in a cluster (a script touches one slot), in order. */
  private batches(events: readonly PublishInput[]): number[][] {
    if (this.target.kind === 'single') return [events.map((_, i) => i)];
    const bySlot = new Map<number, number[]>();
    events.forEach((e, i) => {
      const slot = keySlot(this.keys.channel(e.channel).meta);
      bySlot.set(slot, [...(bySlot.get(slot) ?? []), i]);
    });
    return [...bySlot.values()];
  }

  private async publishBatch(
    cmd: Commands,
    events: readonly PublishInput[],
    ts: number,
  ): Promise<PublishResult[]> {
    const keys: string[] = this.target.kind === 'single' ? [this.keys.expiring()] : [];
    const args: ScriptArg[] = [String(ts), IDEMPOTENCY_TTL_S];
    for (const input of events) {
      const cls = classOf(input.channel);
      const mode = isReplayable(cls) ? 'stream' : cls === 'state' ? 'state' : 'none';
      const { size: maxlen, ttlMs: ttl } = historyBounds(this.options.limits, cls);
      const k = this.keys.channel(input.channel);
      keys.push(
        k.meta,
        k.stream,
        k.state,
        this.keys.idempotency(input.channel, input.id ?? ''),
        k.exp,
      );
      args.push(
        newEpoch(),
        mode,
        maxlen,
        input.channel,
        input.key === null ? '0' : '1',
        input.key ?? '',
        input.json ?? JSON.stringify(input.data) ?? 'null',
        input.id === undefined ? '0' : '1',
        ttl + STREAM_IDLE_MARGIN_MS,
        k.events,
        input.ttl === undefined ? '' : String(expiresAt(ts, input.ttl)),
      );
    }
    // One script call: Redis stores all of it or none of it.
    const flat = asArray(await cmd.archonPublish(keys.length, ...keys, ...args));
    return events.map((_, i) => {
      const stored = JSON.parse(asString(flat[2 * i + 1])) as PublishResult;
      const result: PublishResult = {
        channel: stored.channel,
        seq: stored.seq,
        epoch: stored.epoch,
      };
      if (asNumber(flat[2 * i]) === 1) result.duplicate = true;
      return result;
    });
  }

  async subscribe(channel: string): Promise<void> {
    const cmd = this.connection();
    const subscriber = this.subscriber as EventSubscriber;
    const entry: Tracked = {
      cls: classOf(channel),
      epoch: '',
      lastSeq: 0,
      recovering: false,
      generation: 0,
      buffer: [],
      overflow: false,
      acks: [],
    };
    this.tracked.set(channel, entry);
    try {
      // The baseline is read before SUBSCRIBE: whatever is published after it is either
      // delivered live or replayed after an outage (seq > baseline), never skipped. It also
      // creates the epoch of a new channel, the one its events and the hub's reads will carry.
      const k = this.keys.channel(channel);
      const [epoch, seq] = asArray(await cmd.archonMeta(k.meta, k.stream, k.state, newEpoch()));
      if (this.tracked.get(channel) !== entry) return; // unsubscribed meanwhile
      entry.epoch = asString(epoch);
      entry.lastSeq = asNumber(seq);
      const outcome = await subscriber.subscribe([channel]);
      if (outcome.failed.length > 0) throw asError(outcome.error);
    } catch (err) {
      if (this.tracked.get(channel) === entry) this.tracked.delete(channel);
      throw err;
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.tracked.delete(channel)) return;
    // No longer tracked: not resubscribed on reconnect, and its messages are dropped.
    await this.subscriber?.unsubscribe(channel);
  }

  history(channel: string, sinceSeq: number): Promise<HistoryRead> {
    return this.readHistory(channel, sinceSeq);
  }

  async snapshot(channel: string): Promise<Snapshot> {
    const cmd = this.connection();
    const k = this.keys.channel(channel);
    const [epoch, seq, flat, expiredKeys] = asArray(
      await cmd.archonSnapshot(k.meta, k.stream, k.state, k.exp, newEpoch(), String(this.now())),
    );
    const fields = asArray(flat);
    const expired = new Set(asArray(expiredKeys).map(asString));
    const entries = [];
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (expired.has(asString(fields[i]))) continue;
      entries.push({
        key: asString(fields[i]),
        data: JSON.parse(asString(fields[i + 1])) as unknown,
      });
    }
    return { epoch: asString(epoch), seq: asNumber(seq), entries };
  }

  /** A history read; `keepExpired` for the replay after a reconnect, where an expired event
   * still fills its seq (the hub sends it as `expired`) instead of looking like a loss. */
  private async readHistory(
    channel: string,
    sinceSeq: number,
    keepExpired = false,
  ): Promise<HistoryRead> {
    const cmd = this.connection();
    const ttl = historyBounds(this.options.limits, classOf(channel)).ttlMs;
    const k = this.keys.channel(channel);
    const [epoch, seq, firstSeq, entries] = asArray(
      await cmd.archonHistory(
        k.meta,
        k.stream,
        k.state,
        newEpoch(),
        // Lua reads numbers with tonumber(): keep NaN/Infinity out (both mean "nothing").
        String(Number.isFinite(sinceSeq) ? Math.floor(sinceSeq) : Number.MAX_SAFE_INTEGER),
        String(this.now()),
        String(ttl),
      ),
    );
    const stored = asArray(entries).map((entry) => toStoredEvent(channel, entry));
    return {
      epoch: asString(epoch),
      seq: asNumber(seq),
      firstSeq: asNumber(firstSeq),
      events: keepExpired ? stored : unexpired(stored, this.now()),
    };
  }

  ack(
    channel: string,
    epoch: string,
    seq: number,
    ack: AlertAck,
  ): Promise<{ ack: AlertAck; first: boolean } | null> {
    return this.alertStore.ack(channel, epoch, seq, ack);
  }

  unacked(channel: string): Promise<UnackedRead> {
    return this.alertStore.unacked(channel);
  }

  alerts(): Promise<HeldAlert[]> {
    return this.alertStore.alerts();
  }

  countDeliveries(counts: readonly DeliveryCount[]): Promise<void> {
    return this.alertStore.countDeliveries(counts);
  }

  private connection(): Commands {
    if (!this.cmd) throw new Error('Redis backplane is not started');
    return this.cmd;
  }

  private readonly onCommandClose = (): void => {
    if (this.stopped || this.cmdDown || !this.cmdReadyOnce) return;
    this.cmdDown = true;
    this.log?.warn({ redis: this.safeUrl }, 'Redis backplane down: publish fails until it is back');
  };

  private readonly onCommandReady = (): void => {
    this.cmdReadyOnce = true;
    if (!this.cmdDown) return;
    this.cmdDown = false;
    this.log?.info({ redis: this.safeUrl }, 'Redis backplane back');
    // The subscriber may have come back first and failed to read its replay: go on now
    // rather than at the next retry.
    const waiting = [...this.tracked.values()].some((entry) => entry.recovering);
    if (waiting && this.subscriber?.usable()) this.startRecovery();
  };

  /** The tracked channels of a set whose baseline is read (a channel whose subscribe() has not
   * read it yet is left to subscribe(): its own SUBSCRIBE follows, and the hub reads its
   * history after that). */
  private entries(channels: ChannelSet): Tracked[] {
    const named =
      channels === 'all'
        ? [...this.tracked.values()]
        : channels.map((c) => this.tracked.get(c)).filter((e) => e !== undefined);
    return named.filter((entry) => entry.epoch !== '');
  }

  /** From now on nothing of these channels arrives until their replay is read, and what
   * arrives after the new SUBSCRIBE must wait for it (the hub skips seq <= the last it sent). */
  private readonly onLost = (channels: ChannelSet, where: string): void => {
    if (this.stopped) return;
    const entries = this.entries(channels);
    for (const entry of entries) {
      entry.recovering = true;
      entry.generation++;
    }
    if (entries.length > 0) {
      this.log?.warn(
        { redis: where, channels: entries.length },
        'Redis backplane subscriber disconnected: events will be replayed when it is back',
      );
    }
  };

  private readonly onBack = (channels: ChannelSet): void => {
    if (this.stopped) return;
    for (const entry of this.entries(channels)) {
      entry.recovering = true;
      entry.generation++;
    }
    this.startRecovery();
  };

  private readonly onMessage = (text: string): void => {
    let message: BackplaneEvent | AckNotice;
    try {
      message = parseMessage(text);
    } catch (err) {
      this.log?.error({ err }, 'Redis backplane: malformed event message');
      return;
    }
    if ('acked' in message) {
      this.onAcked(message);
      return;
    }
    const event = message;
    const entry = this.tracked.get(event.channel);
    if (!entry) return; // unsubscribed; the UNSUBSCRIBE is on its way
    // Already delivered by a replay: the connections are not ordered with each other, so an
    // event published just before the replay was read can reach the subscriber connection
    // after the replay reply. Nothing else arrives with an old seq.
    if (event.epoch === entry.epoch && event.seq <= entry.lastSeq) return;
    if (entry.recovering) {
      if (entry.buffer.length >= RECOVERY_BUFFER_MAX) {
        entry.overflow = true;
        entry.buffer = [];
      } else if (!entry.overflow) {
        entry.buffer.push(event);
      }
      return;
    }
    this.deliver(entry, event);
  };

  /** An acknowledgement reaches the hub in any state of the channel: it names its epoch, and
   * a subscription that opens meanwhile reads the acknowledgements itself. */
  private onAcked(notice: AckNotice): void {
    const entry = this.tracked.get(notice.channel);
    if (!entry) return;
    if (entry.recovering) {
      // Bounded like the events; the `unacked` list sent after recovery covers the rest.
      if (entry.acks.length < RECOVERY_BUFFER_MAX) entry.acks.push(notice);
      return;
    }
    this.tellAcked(notice);
  }

  private tellAcked(notice: AckNotice): void {
    try {
      this.listener?.acked(notice.channel, notice.acked.epoch, notice.seq, {
        by: notice.acked.by,
        at: notice.acked.at,
      });
    } catch (err) {
      this.log?.error({ err, channel: notice.channel }, 'Backplane listener failed');
    }
  }

  private deliver(entry: Tracked, event: BackplaneEvent): void {
    if (event.epoch !== entry.epoch) {
      entry.epoch = event.epoch;
      entry.lastSeq = event.seq;
    } else if (event.seq > entry.lastSeq) {
      entry.lastSeq = event.seq;
    }
    try {
      this.listener?.event(event);
    } catch (err) {
      // Never let a listener error unwind into ioredis's reply parser.
      this.log?.error({ err, channel: event.channel }, 'Backplane listener failed');
    }
  }

  /** Runs one recovery at a time; a reconnect during one runs another after it. */
  private startRecovery(): void {
    if (this.stopped) return;
    if (this.recovery) {
      this.recoverAgain = true;
      return;
    }
    this.recovery = this.recover()
      .then(() => {
        this.recoveryFailures = 0;
      })
      .catch((err: unknown) => {
        if (this.stopped) return;
        if (++this.recoveryFailures === 1)
          this.log?.warn({ err }, 'Redis backplane: replay after reconnect failed, retrying');
        // A connection that comes back restarts recovery by itself; otherwise retry here
        // (typically the command connection is not back yet, or in a cluster the replica
        // taking over from a dead primary is not serving its slots yet).
        if (this.subscriber?.usable() && !this.retryTimer) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.startRecovery();
          }, RECOVERY_RETRY_MS);
          this.retryTimer.unref();
        }
      })
      .finally(() => {
        this.recovery = null;
        if (this.recoverAgain) {
          this.recoverAgain = false;
          this.startRecovery();
        }
      });
  }

  /**
   * After a subscriber connection came back (or, in a cluster, channels moved to another
   * node): resubscribe every channel waiting for it (confirmed by Redis), then for each read
   * what was published since the last event delivered and deliver it before the live events
   * that arrived meanwhile. When that cannot be done without a gap (epoch changed, history
   * trimmed or expired, state moved), the listener is told to resync the channel instead.
   * Channels that could not be resubscribed or read stay waiting, and the whole is retried.
   */
  private async recover(): Promise<void> {
    const subscriber = this.subscriber;
    if (!subscriber || this.stopped) return;
    const waiting = [...this.tracked].filter(([, entry]) => entry.recovering && entry.epoch !== '');
    if (waiting.length === 0) return;
    const generation = new Map(waiting.map(([channel, entry]) => [channel, entry.generation]));
    const outcome = await subscriber.subscribe(waiting.map(([channel]) => channel));
    const confirmed = new Set(outcome.subscribed);
    const pending = waiting.filter(([channel]) => confirmed.has(channel));
    const reads = await Promise.allSettled(
      pending.map(([channel, entry]) =>
        // A broadcast channel has nothing to replay, only its buffer to release.
        entry.cls === 'broadcast'
          ? Promise.resolve(null)
          : this.readHistory(channel, entry.lastSeq, true),
      ),
    );
    // The reads answered on the command connection; events published before them may still
    // be on their way on the subscriber connection. Redis answers this PING after writing
    // them, so once it is back they are all in the buffers: a state channel that saw live
    // events then does not look as if it had lost some.
    await subscriber.barrier(pending.map(([channel]) => channel));
    const resync: string[] = [];
    const settled: string[] = [];
    let replayed = 0;
    let held = 0;
    let readError: unknown = null;
    pending.forEach(([channel, entry], i) => {
      const read = reads[i];
      if (read?.status !== 'fulfilled') {
        readError = read?.reason ?? readError;
        return;
      }
      if (this.tracked.get(channel) !== entry || !entry.recovering) return;
      held += entry.buffer.length;
      const result = this.settle(entry, read.value);
      settled.push(channel);
      if (result === 'resync') resync.push(channel);
      else replayed += result;
      // Its connection dropped (or it moved) during this replay: what follows waits for the
      // next one, which that event started.
      if (entry.generation !== generation.get(channel)) entry.recovering = true;
    });
    // Acknowledgements are not replayed: the risk channels' subscribers are sent what still
    // waits instead.
    const alerts = settled.filter(
      (channel) => this.tracked.get(channel)?.cls === 'alert' && !resync.includes(channel),
    );
    if (alerts.length > 0 && this.listener) {
      try {
        this.listener.acksMissed(alerts);
      } catch (err) {
        this.log?.error({ err }, 'Backplane listener failed');
      }
    }
    if (resync.length > 0 && this.listener) {
      try {
        this.listener.resync(resync);
      } catch (err) {
        this.log?.error({ err }, 'Backplane listener failed');
      }
    }
    if (settled.length > 0) {
      this.log?.info(
        { redis: this.safeUrl, channels: settled.length, replayed, held, resynced: resync },
        'Redis backplane subscriptions restored',
      );
    }
    if (outcome.failed.length > 0) throw asError(outcome.error);
    if (settled.length < pending.length && readError !== null) throw asError(readError);
  }

  /** Delivers a channel's replay then its buffered live events, in seq order without a
   * gap; returns how many were replayed, or 'resync' when a gap cannot be filled. */
  private settle(entry: Tracked, read: HistoryRead | null): number | 'resync' {
    const buffered = entry.buffer;
    entry.buffer = [];
    entry.recovering = false;
    const overflow = entry.overflow;
    entry.overflow = false;
    const acks = entry.acks;
    entry.acks = [];
    if (!read) {
      for (const event of buffered) this.deliver(entry, event);
      for (const notice of acks) this.tellAcked(notice);
      return 0;
    }
    const lastLive = buffered.at(-1);
    let lost =
      overflow || read.epoch !== entry.epoch || buffered.some((e) => e.epoch !== read.epoch);
    const merged: BackplaneEvent[] = [];
    if (!lost) {
      // Replay (seq ≤ read.seq) then live events; the two overlap when an event was both
      // published after SUBSCRIBE and before the read.
      const candidates = [...read.events.map((e) => ({ ...e, epoch: read.epoch })), ...buffered];
      candidates.sort((a, b) => a.seq - b.seq);
      let next = entry.lastSeq + 1;
      for (const event of candidates) {
        if (event.seq < next) continue;
        if (event.seq > next) {
          lost = true; // trimmed or expired from the stream, or a state channel moved
          break;
        }
        merged.push(event);
        next++;
      }
      if (next <= read.seq) lost = true;
    }
    if (lost) {
      entry.epoch = lastLive?.epoch ?? read.epoch;
      entry.lastSeq = Math.max(read.seq, lastLive?.seq ?? 0);
      return 'resync';
    }
    const replayed = merged.filter((e) => e.seq <= read.seq).length;
    for (const event of merged) this.deliver(entry, event);
    for (const notice of acks) this.tellAcked(notice);
    return replayed;
  }
}

function classOf(channel: string): ChannelClass {
  // Unknown names are streams, as in the memory backplane.
  return parseChannel(channel)?.class ?? 'stream';
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(`Redis backplane: ${String(err)}`);
}

function expiresAt(ts: number, ttlSeconds: number): number {
  return ts + Math.round(ttlSeconds * 1000);
}
