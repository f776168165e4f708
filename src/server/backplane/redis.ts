/**
 * The backplane of cluster mode (docs/cluster.md): Redis numbers, stores and fans out events so
 * that N instances behave as one. Same guarantees as the memory backplane, shared by every
 * instance: per-channel seq without gaps within an epoch, bounded history, state snapshots,
 * idempotent publish by id.
 *
 * Data model, per channel (prefix defaults to `archon:`):
 * - `<prefix>ch:<channel>:meta`   hash {epoch, seq}: the channel's epoch and last seq.
 * - `<prefix>ch:<channel>:stream` stream (stream/alert channels): one entry per event with
 *   the explicit ID `<seq>-1`, so a seq range is an XRANGE; fields key (absent = null), ts,
 *   data (JSON text); trimmed to the history size, expired by ts on read.
 * - `<prefix>ch:<channel>:state`  hash key → data JSON (state channels).
 * - `<prefix>ch:<channel>:exp`    sorted set key → expires_at ms (state keys published with a
 *   ttl); `<prefix>expiring` sorted set channel → its next expiry, which the sweep reads.
 * - `<prefix>ch:<channel>:acks`   hash seq → {epoch, by, at} (risk channels: acknowledgements).
 * - `<prefix>ch:<channel>:deliv`  hash `<epoch>:<seq>:<user>` → deliveries of that alert.
 *   Both are forgotten with the alerts they describe (ALERTS_LUA) and expire with the stream.
 * - `<prefix>ev:<channel>`        pub/sub channel: JSON {channel, seq, key, ts, data, epoch,
 *   expires_at?}, or {acked: {epoch, by, at}, channel, seq} when an alert was acknowledged.
 * - `<prefix>idem:<length of channel>:<channel>:<id>` the first result of a publish with that
 *   id (EX 600); the length makes the key unambiguous.
 *
 * Every write and every read that must agree with writes is one Lua script, so a publish
 * batch is atomic (number, store, fan out, all events or none) and a read sees one consistent moment of the channel.
 *
 * Two connections: commands (no offline queue, so publish fails fast while Redis is away:
 * accepted means stored), and a subscriber. After the subscriber reconnects, what pub/sub
 * lost while it was away is replayed from the stream, or the channel is resynced when that
 * is impossible (epoch changed, history trimmed, state moved).
 *
 * One file of about 950 lines because publish, the reads, acknowledgements and the replay after
 * a reconnect all work on the same tracked-channel state (epoch, last seq, recovery buffers of
 * events and of acknowledgements) and the same two connections; the Lua scripts live in
 * redis-scripts.ts. The alert reads and the expiry sweep (ack, unacked, alerts,
 * countDeliveries, sweepExpired: about 200 lines) share only the command connection and the
 * key names: they are the part to move out first if it grows again.
 */
import type { Redis, RedisOptions } from 'ioredis';
import {
  isExpired,
  isReplayable,
  parseChannel,
  type AlertAck,
  type ChannelClass,
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
import { ioredis } from './ioredis.js';
import { newEpoch } from './memory.js';
import {
  ACK_LUA,
  ALERTS_LUA,
  EXPIRE_STATE_LUA,
  PUBLISH_LUA,
  HISTORY_LUA,
  SNAPSHOT_LUA,
  META_LUA,
  type ArchonScripts,
  type ScriptArg,
} from './redis-scripts.js';

/** How long publish ids are remembered for idempotent retries (as in the memory backplane). */
const IDEMPOTENCY_TTL_S = 600;
/** A command Redis does not answer within this fails, so publish never hangs on a stalled
 * (not closed) connection. Its outcome is then unknown: retries with an id are safe. */
const COMMAND_TIMEOUT_MS = 2000;
const CONNECT_TIMEOUT_MS = 5000;
/** A stream nobody published to for longer than its TTL holds only expired events: let
 * Redis drop the whole key then. The margin covers clock skew between instances and Redis. */
const STREAM_IDLE_MARGIN_MS = 60_000;
/** Live events held per channel while its replay is read after a reconnect; beyond this the
 * channel is resynced instead (memory stays bounded if the replay cannot be read for long). */
const RECOVERY_BUFFER_MAX = 10_000;
const RECOVERY_RETRY_MS = 500;
/** How often expired state keys are looked for, and how many channels one sweep visits. */
const EXPIRY_SWEEP_MS = 1000;
const EXPIRY_SWEEP_CHANNELS = 100;
/** SCAN batch of the alert listing. */
const SCAN_COUNT = 1000;

export interface RedisBackplaneLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface RedisBackplaneOptions {
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
  /** Live events that arrived while recovering, delivered after the replay. */
  buffer: BackplaneEvent[];
  overflow: boolean;
  /** Acknowledgements that arrived while recovering: they follow the events they name. */
  acks: AckNotice[];
}

export class RedisBackplane implements Backplane {
  readonly kind = 'redis';
  private readonly prefix: string;
  private readonly now: () => number;
  private readonly log: RedisBackplaneLog | undefined;
  /** The URL without credentials, for messages and logs. */
  private readonly safeUrl: string;
  private cmd: (Redis & ArchonScripts) | null = null;
  private sub: Redis | null = null;
  private listener: BackplaneListener | null = null;
  private readonly tracked = new Map<string, Tracked>();
  private stopped = false;
  private cmdReadyOnce = false;
  private cmdDown = false;
  private subConnectedOnce = false;
  private recovery: Promise<void> | null = null;
  private recoverAgain = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: RedisBackplaneOptions) {
    this.prefix = options.prefix ?? 'archon:';
    this.now = options.now ?? Date.now;
    this.log = options.log;
    this.safeUrl = redactUrl(options.url);
  }

  async start(listener: BackplaneListener): Promise<void> {
    if (this.cmd) throw new Error('Redis backplane already started');
    this.listener = listener;
    this.stopped = false;
    this.cmdReadyOnce = false;
    this.cmdDown = false;
    this.subConnectedOnce = false;
    const common: RedisOptions = {
      lazyConnect: true,
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
    const { Redis } = ioredis();
    const cmd = new Redis(this.options.url, {
      ...common,
      connectionName: `${this.prefix}cmd`,
    }) as Redis & ArchonScripts;
    // The number of keys varies with the batch: it is the call's first argument.
    cmd.defineCommand('archonPublish', { lua: PUBLISH_LUA });
    cmd.defineCommand('archonHistory', { numberOfKeys: 3, lua: HISTORY_LUA });
    cmd.defineCommand('archonSnapshot', { numberOfKeys: 4, lua: SNAPSHOT_LUA });
    cmd.defineCommand('archonMeta', { numberOfKeys: 3, lua: META_LUA });
    cmd.defineCommand('archonAlerts', { numberOfKeys: 5, lua: ALERTS_LUA });
    cmd.defineCommand('archonAck', { numberOfKeys: 3, lua: ACK_LUA });
    cmd.defineCommand('archonExpireState', { numberOfKeys: 5, lua: EXPIRE_STATE_LUA });
    const sub = new Redis(this.options.url, {
      ...common,
      // Resubscribing is done here, not by ioredis: the set of channels is ours (one
      // unsubscribed during the outage must not come back), and the replay must start
      // only once Redis confirmed the subscriptions, which ioredis does not report.
      autoResubscribe: false,
      connectionName: `${this.prefix}sub`,
    });
    this.cmd = cmd;
    this.sub = sub;

    // ioredis reports why a connection failed on 'error' (connect() itself only says
    // "Connection is closed"); keep the last one for the start error. Listening also keeps
    // ioredis from printing every reconnect failure of an outage.
    const seen: { error: Error | null } = { error: null };
    const onError = (err: Error): void => {
      seen.error = err;
    };
    cmd.on('error', onError);
    sub.on('error', onError);
    cmd.on('close', this.onCommandClose);
    cmd.on('ready', this.onCommandReady);
    sub.on('close', this.onSubscriberClose);
    sub.on('ready', this.onSubscriberReady);
    sub.on('message', this.onMessage);

    try {
      await Promise.all([cmd.connect(), sub.connect()]);
    } catch (err) {
      this.cmd = null;
      this.sub = null;
      this.listener = null;
      cmd.disconnect();
      sub.disconnect();
      const why = seen.error ?? err;
      const reason = why instanceof Error ? why.message : String(why);
      throw new Error(`Redis backplane: cannot connect to ${this.safeUrl}: ${reason}`, {
        cause: err,
      });
    }
    this.sweepTimer = setInterval(this.sweepExpired, EXPIRY_SWEEP_MS);
    this.sweepTimer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.listener = null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.sweepTimer = null;
    const conns = [this.cmd, this.sub];
    this.cmd = null;
    this.sub = null;
    this.tracked.clear();
    await Promise.all(
      conns.map(async (conn) => {
        if (!conn) return;
        if (conn.status !== 'ready') {
          conn.disconnect();
          return;
        }
        try {
          await conn.quit();
        } catch {
          conn.disconnect();
        }
      }),
    );
  }

  healthy(): boolean {
    return this.cmd?.status === 'ready';
  }

  async publish(events: readonly PublishInput[]): Promise<PublishResult[]> {
    const cmd = this.connection();
    const ts = this.now();
    const keys: string[] = [this.expiringKey()];
    const args: ScriptArg[] = [String(ts), IDEMPOTENCY_TTL_S];
    for (const input of events) {
      const cls = classOf(input.channel);
      const mode = isReplayable(cls) ? 'stream' : cls === 'state' ? 'state' : 'none';
      const { size: maxlen, ttlMs: ttl } = historyBounds(this.options.limits, cls);
      keys.push(
        ...this.channelKeys(input.channel),
        this.idempotencyKey(input),
        this.expiryKey(input.channel),
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
        this.eventChannel(input.channel),
        input.ttl === undefined ? '' : String(ts + Math.round(input.ttl * 1000)),
      );
    }
    // The whole batch is one script call, so Redis stores all of it or none of it.
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

  /**
   * Ids are per channel (the engine may reuse one event id on several channels). The
   * channel's length goes first so the key is unambiguous: (`signals`, `x:1`) and
   * (`signals:x`, `1`) are two keys.
   */
  private idempotencyKey(input: PublishInput): string {
    return `${this.prefix}idem:${input.channel.length}:${input.channel}:${input.id ?? ''}`;
  }

  async subscribe(channel: string): Promise<void> {
    const cmd = this.connection();
    const sub = this.sub as Redis;
    const entry: Tracked = {
      cls: classOf(channel),
      epoch: '',
      lastSeq: 0,
      recovering: false,
      buffer: [],
      overflow: false,
      acks: [],
    };
    this.tracked.set(channel, entry);
    try {
      // The baseline is read before SUBSCRIBE: whatever is published after it is either
      // delivered live or replayed after an outage (seq > baseline), never skipped. It also
      // creates the epoch of a new channel, the one its events and the hub's reads will carry.
      const [epoch, seq] = asArray(await cmd.archonMeta(...this.channelKeys(channel), newEpoch()));
      if (this.tracked.get(channel) !== entry) return; // unsubscribed meanwhile
      entry.epoch = asString(epoch);
      entry.lastSeq = asNumber(seq);
      await sub.subscribe(this.eventChannel(channel));
    } catch (err) {
      if (this.tracked.get(channel) === entry) this.tracked.delete(channel);
      throw err;
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.tracked.delete(channel)) return;
    const sub = this.sub;
    // While disconnected there is nothing to undo: the channel is no longer tracked, so it
    // is not resubscribed on reconnect.
    if (sub?.status !== 'ready') return;
    try {
      await sub.unsubscribe(this.eventChannel(channel));
    } catch {
      // Lost with the connection, which takes the subscription with it; or still
      // subscribed, in which case its messages are dropped as untracked. Either way fine.
    }
  }

  history(channel: string, sinceSeq: number): Promise<HistoryRead> {
    return this.readHistory(channel, sinceSeq);
  }

  async snapshot(channel: string): Promise<Snapshot> {
    const cmd = this.connection();
    const [epoch, seq, flat, expiredKeys] = asArray(
      await cmd.archonSnapshot(
        ...this.channelKeys(channel),
        this.expiryKey(channel),
        newEpoch(),
        String(this.now()),
      ),
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
    const cls = classOf(channel);
    const ttl = historyBounds(this.options.limits, cls).ttlMs;
    const [epoch, seq, firstSeq, entries] = asArray(
      await cmd.archonHistory(
        ...this.channelKeys(channel),
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

  async ack(
    channel: string,
    epoch: string,
    seq: number,
    ack: AlertAck,
  ): Promise<{ ack: AlertAck; first: boolean } | null> {
    const cmd = this.connection();
    const [meta, stream] = this.channelKeys(channel);
    const ttl = historyBounds(this.options.limits, 'alert').ttlMs;
    const [outcome, json] = asArray(
      await cmd.archonAck(
        meta,
        stream,
        this.alertKeys(channel)[0],
        epoch,
        seq,
        ack.by,
        ack.at,
        this.now(),
        ttl,
        ttl + STREAM_IDLE_MARGIN_MS,
        this.eventChannel(channel),
        channel,
      ),
    );
    if (asNumber(outcome) === 0) return null;
    const standing = JSON.parse(asString(json)) as AlertAck;
    return { ack: { by: standing.by, at: standing.at }, first: asNumber(outcome) === 1 };
  }

  async unacked(channel: string): Promise<UnackedRead> {
    const { epoch, events, acks } = await this.readAlerts(channel, false);
    return { epoch, alerts: events.filter((e) => !acks.has(e.seq)) };
  }

  /** Every risk channel's alerts: the channels are found by SCAN (their streams), so no index
   * has to be kept in step with publishes. Bounded by the alerts held, for operators only. */
  async alerts(): Promise<HeldAlert[]> {
    const cmd = this.connection();
    const match = `${this.prefix}ch:risk:*:stream`;
    const channels = new Set<string>();
    let cursor = '0';
    do {
      const [next, keys] = await cmd.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
      cursor = next;
      for (const key of keys)
        channels.add(key.slice(`${this.prefix}ch:`.length, -':stream'.length));
    } while (cursor !== '0');
    const out: HeldAlert[] = [];
    for (const channel of channels) {
      if (parseChannel(channel)?.class !== 'alert') continue;
      const { epoch, events, acks, deliveries } = await this.readAlerts(channel, true);
      for (const event of events)
        out.push({
          ...event,
          epoch,
          ack: acks.get(event.seq) ?? null,
          deliveries: deliveries.get(event.seq) ?? {},
        });
    }
    return out;
  }

  async countDeliveries(counts: readonly DeliveryCount[]): Promise<void> {
    if (counts.length === 0) return;
    const pipeline = this.connection().pipeline();
    const idle = historyBounds(this.options.limits, 'alert').ttlMs + STREAM_IDLE_MARGIN_MS;
    for (const c of counts) {
      const key = this.alertKeys(c.channel)[1];
      pipeline.hincrby(key, `${c.epoch}:${c.seq}:${c.user}`, c.count).pexpire(key, idle);
    }
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([err]) => err !== null);
    if (failed) throw failed[0] as Error;
  }

  private async readAlerts(
    channel: string,
    withDeliveries: boolean,
  ): Promise<{
    epoch: string;
    events: StoredEvent[];
    acks: Map<number, AlertAck>;
    deliveries: Map<number, Record<string, number>>;
  }> {
    const cmd = this.connection();
    const [epochReply, entries, ackFlat, delivFlat] = asArray(
      await cmd.archonAlerts(
        ...this.channelKeys(channel),
        ...this.alertKeys(channel),
        newEpoch(),
        String(this.now()),
        String(historyBounds(this.options.limits, 'alert').ttlMs),
        withDeliveries ? '1' : '0',
      ),
    );
    const epoch = asString(epochReply);
    const acks = new Map<number, AlertAck>();
    const ackFields = asArray(ackFlat);
    for (let i = 0; i + 1 < ackFields.length; i += 2) {
      const ack = JSON.parse(asString(ackFields[i + 1])) as AlertAck & { epoch: string };
      if (ack.epoch === epoch) acks.set(Number(asString(ackFields[i])), { by: ack.by, at: ack.at });
    }
    const deliveries = new Map<number, Record<string, number>>();
    const delivFields = asArray(delivFlat);
    for (let i = 0; i + 1 < delivFields.length; i += 2) {
      const match = /^([^:]*):(\d+):(.*)$/s.exec(asString(delivFields[i]));
      if (!match || match[1] !== epoch) continue;
      const seq = Number(match[2]);
      const byUser = deliveries.get(seq) ?? {};
      byUser[match[3] as string] = asNumber(delivFields[i + 1]);
      deliveries.set(seq, byUser);
    }
    const events = unexpired(
      asArray(entries).map((entry) => toStoredEvent(channel, entry)),
      this.now(),
    );
    return { epoch, events, acks, deliveries };
  }

  /**
   * Deletes expired state keys with a delete event each (docs/protocol.md#expiring-events).
   * Every instance sweeps; the script makes each delete happen once. A sweep that fails (Redis
   * away) is retried by the next tick: snapshots leave expired keys out meanwhile.
   */
  private readonly sweepExpired = (): void => {
    const cmd = this.cmd;
    if (!cmd || cmd.status !== 'ready') return;
    const now = this.now();
    cmd
      .zrangebyscore(this.expiringKey(), '-inf', now, 'LIMIT', 0, EXPIRY_SWEEP_CHANNELS)
      .then((channels) =>
        Promise.all(
          channels.map((channel) =>
            cmd.archonExpireState(
              this.expiringKey(),
              ...this.channelKeys(channel),
              this.expiryKey(channel),
              newEpoch(),
              String(now),
              channel,
              this.eventChannel(channel),
            ),
          ),
        ),
      )
      .catch((err: unknown) => {
        if (!this.stopped) this.log?.warn({ err }, 'Redis backplane: expiry sweep failed');
      });
  };

  private connection(): Redis & ArchonScripts {
    if (!this.cmd) throw new Error('Redis backplane is not started');
    return this.cmd;
  }

  private channelKeys(channel: string): [string, string, string] {
    const base = `${this.prefix}ch:${channel}`;
    return [`${base}:meta`, `${base}:stream`, `${base}:state`];
  }

  /** Acknowledgements and deliveries of a risk channel's alerts. */
  private alertKeys(channel: string): [string, string] {
    const base = `${this.prefix}ch:${channel}`;
    return [`${base}:acks`, `${base}:deliv`];
  }

  private expiryKey(channel: string): string {
    return `${this.prefix}ch:${channel}:exp`;
  }

  private expiringKey(): string {
    return `${this.prefix}expiring`;
  }

  private eventChannel(channel: string): string {
    return `${this.prefix}ev:${channel}`;
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
    if (waiting && this.sub?.status === 'ready') this.startRecovery();
  };

  private readonly onSubscriberClose = (): void => {
    if (this.stopped || !this.subConnectedOnce) return;
    // From now on nothing arrives until the replay is read, and what arrives after the new
    // SUBSCRIBE must wait for it (the hub skips seq <= the last one it sent).
    for (const entry of this.tracked.values()) if (entry.epoch !== '') entry.recovering = true;
    if (this.tracked.size > 0) {
      this.log?.warn(
        { redis: this.safeUrl, channels: this.tracked.size },
        'Redis backplane subscriber disconnected: events will be replayed when it is back',
      );
    }
  };

  private readonly onSubscriberReady = (): void => {
    if (this.stopped) return;
    if (!this.subConnectedOnce) {
      this.subConnectedOnce = true; // the first connection, made by start()
      return;
    }
    this.startRecovery();
  };

  private readonly onMessage = (_redisChannel: string, text: string): void => {
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
    // Already delivered by a replay: the two connections are not ordered with each other,
    // so an event published just before the replay was read can reach the subscriber
    // connection after the replay reply. Nothing else arrives with an old seq.
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
      .catch((err: unknown) => {
        if (this.stopped) return;
        this.log?.warn({ err }, 'Redis backplane: replay after reconnect failed, retrying');
        // A new subscriber connection restarts recovery by itself; otherwise retry here
        // (typically the command connection is not back yet).
        if (this.sub?.status === 'ready' && !this.retryTimer) {
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
   * After the subscriber reconnected: resubscribe every tracked channel (confirmed by
   * Redis), then for each channel read what was published since the last event delivered
   * and deliver it before the live events that arrived meanwhile. When that cannot be
   * done without a gap (epoch changed, history trimmed or expired, state moved), the
   * listener is told to resync the channel instead.
   */
  private async recover(): Promise<void> {
    const sub = this.sub;
    if (!sub || this.stopped) return;
    // A channel whose subscribe() has not read its baseline yet (epoch '') is left to
    // subscribe(): its own SUBSCRIBE follows, and the hub reads its history after that.
    const all = [...this.tracked].filter(([, entry]) => entry.epoch !== '');
    for (const [, entry] of all) entry.recovering = true;
    if (all.length > 0) await sub.subscribe(...all.map(([c]) => this.eventChannel(c)));
    const pending = [...this.tracked].filter(([, entry]) => entry.recovering);
    const reads = await Promise.all(
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
    await sub.ping();
    const resync: string[] = [];
    let replayed = 0;
    let held = 0;
    pending.forEach(([channel, entry], i) => {
      if (this.tracked.get(channel) !== entry || !entry.recovering) return;
      const read = reads[i] ?? null;
      held += entry.buffer.length;
      const outcome = this.settle(entry, read);
      if (outcome === 'resync') resync.push(channel);
      else replayed += outcome;
    });
    // Acknowledgements are not replayed: the risk channels' subscribers are sent what still
    // waits instead.
    const alerts = pending
      .filter(([channel, entry]) => entry.cls === 'alert' && !resync.includes(channel))
      .map(([channel]) => channel);
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
    if (pending.length > 0) {
      this.log?.info(
        { redis: this.safeUrl, channels: pending.length, replayed, held, resynced: resync },
        'Redis backplane subscriptions restored',
      );
    }
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

function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '(invalid Redis URL)';
  }
}

function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error('Redis backplane: unexpected reply from Redis');
  return value as unknown[];
}

function asString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString();
  throw new Error('Redis backplane: unexpected reply from Redis');
}

function asNumber(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(asString(value));
  if (!Number.isFinite(n)) throw new Error('Redis backplane: unexpected reply from Redis');
  return n;
}

/** An XRANGE entry [`<seq>-1`, [field, value, …]] as a StoredEvent. */
function toStoredEvent(channel: string, entry: unknown): StoredEvent {
  const [id, flat] = asArray(entry);
  const fields = asArray(flat);
  let key: string | null = null;
  let ts = 0;
  let data: unknown = null;
  let expiresAt: number | null = null;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = asString(fields[i]);
    const value = asString(fields[i + 1]);
    if (name === 'key') key = value;
    else if (name === 'ts') ts = Number(value);
    else if (name === 'data') data = JSON.parse(value) as unknown;
    else if (name === 'exp') expiresAt = Number(value);
  }
  const seq = Number.parseInt(asString(id), 10);
  return expiresAt === null
    ? { channel, seq, key, ts, data }
    : { channel, seq, key, ts, data, expires_at: expiresAt };
}

function unexpired(events: StoredEvent[], now: number): StoredEvent[] {
  return events.some((e) => isExpired(e, now)) ? events.filter((e) => !isExpired(e, now)) : events;
}

/** An acknowledgement as ACK_LUA publishes it. */
interface AckNotice {
  readonly acked: AlertAck & { readonly epoch: string };
  readonly channel: string;
  readonly seq: number;
}

function parseMessage(text: string): BackplaneEvent | AckNotice {
  const msg = JSON.parse(text) as Partial<Record<keyof BackplaneEvent | keyof AckNotice, unknown>>;
  if (typeof msg.acked === 'object' && msg.acked !== null) {
    const ack = msg.acked as Partial<Record<'epoch' | 'by' | 'at', unknown>>;
    if (
      typeof msg.channel !== 'string' ||
      typeof msg.seq !== 'number' ||
      typeof ack.epoch !== 'string' ||
      typeof ack.by !== 'string' ||
      typeof ack.at !== 'number'
    )
      throw new Error('not an acknowledgement');
    return {
      channel: msg.channel,
      seq: msg.seq,
      acked: { epoch: ack.epoch, by: ack.by, at: ack.at },
    };
  }
  if (
    typeof msg.channel !== 'string' ||
    typeof msg.seq !== 'number' ||
    typeof msg.ts !== 'number' ||
    typeof msg.epoch !== 'string' ||
    (msg.key !== null && typeof msg.key !== 'string')
  ) {
    throw new Error('not a backplane event');
  }
  const event = {
    channel: msg.channel,
    seq: msg.seq,
    key: msg.key,
    ts: msg.ts,
    data: msg.data,
    epoch: msg.epoch,
  };
  return typeof msg.expires_at === 'number' ? { ...event, expires_at: msg.expires_at } : event;
}
