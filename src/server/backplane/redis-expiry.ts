/**
 * The expiry of state keys published with a ttl on the Redis backplane
 * (docs/protocol.md#expiring-events): every instance sweeps once a second, and each expired key
 * is deleted once, with a numbered delete event, by EXPIRE_STATE_LUA on the channel's own keys.
 * What differs between one primary and a Redis Cluster is how the sweep finds the channels with
 * keys due.
 *
 * One primary: the publish script itself indexes the channel by its next expiry in one sorted
 * set (`archon:expiring`), in the same atomic step as the write, and the expiry script moves it
 * on. Nothing is ever missed because index and key change together.
 *
 * A Redis Cluster (docs/cluster.md#publishing) cannot do that: the index and the channel live
 * in different slots, and a script touches one. So the index is written in its own command, and
 * the order and the names are chosen so that a key that must expire is never missed by the
 * sweep:
 *
 * - Sixteen buckets, sorted sets in slots of their own (`archon:expiring:{e0}`…`{e15}`), a
 *   channel always in the same one; a member names a channel and a second,
 *   `<second ms>:<channel>`, scored by that second: "this channel may have a key due by then".
 * - The publish writes the member BEFORE its script stores the key. A publish that fails or
 *   dies in between leaves a member that finds nothing to delete: harmless. A member written
 *   after would be lost with a crash in between, and its key would never be deleted.
 * - The sweep takes the members due, runs the channel's expiry script, then removes the member.
 *   Removing must not drop a key whose publish wrote the same member but has not stored its key
 *   yet: so a member's second is never earlier than LANDED_MS after the publish began, longer
 *   than a publish can take (two commands, each failing after COMMAND_TIMEOUT_MS) plus clock
 *   skew. By the time a member is due, every publish that wrote it has stored its key or failed.
 *   A key is thus deleted up to a second after it expires (as on one primary), and a ttl under
 *   LANDED_MS gets its delete event LANDED_MS after the publish (snapshots leave an expired key
 *   out meanwhile, and clients drop expired events themselves).
 * - A script call that timed out on the client but ran on a stalled Redis much later is the one
 *   case left open (its publish answered 503: "may or may not have been stored").
 */
import type { RedisKeys } from './redis-keys.js';
import { asArray, asNumber, asString } from './redis-replies.js';
import { EXPIRE_BATCH, type ArchonScripts } from './redis-scripts.js';
import type { RedisClient } from './redis-connect.js';
import { newEpoch } from './memory.js';

/** How often expired state keys are looked for, and how many channels one index read yields. */
export const EXPIRY_SWEEP_MS = 1000;
const EXPIRY_SWEEP_CHANNELS = 100;

export interface ExpiryLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** A state event about to be stored with an expiry. */
export interface Expiring {
  readonly channel: string;
  readonly expiresAt: number;
}

export class ExpirySweep {
  private timer: NodeJS.Timeout | null = null;
  private failing = false;
  /** LANDED_MS of the top of this file. */
  private readonly landedMs: number;

  constructor(
    private readonly connection: () => (RedisClient & ArchonScripts) | null,
    private readonly keys: RedisKeys,
    private readonly now: () => number,
    private readonly log: ExpiryLog | undefined,
    /** A publish script call fails after this (ms): LANDED_MS covers two of them. */
    commandTimeoutMs: number,
  ) {
    this.landedMs = 2 * commandTimeoutMs + 1000;
  }

  start(): void {
    this.timer = setInterval(this.sweep, EXPIRY_SWEEP_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * A cluster: indexes the channels of these keys before their publish stores them (see the top
   * of this file). One primary: nothing to do, the publish script indexes them. Rejects when the
   * index cannot be written: the publish must then not be attempted.
   */
  async beforePublish(
    cmd: RedisClient,
    events: readonly Expiring[],
    startedAt: number,
  ): Promise<void> {
    if (this.keys.layout !== 'cluster' || events.length === 0) return;
    const byBucket = new Map<string, (string | number)[]>();
    for (const e of events) {
      const second = Math.ceil(Math.max(e.expiresAt, startedAt + this.landedMs) / 1000) * 1000;
      const bucket = this.keys.expiryBucket(e.channel);
      byBucket.set(bucket, [...(byBucket.get(bucket) ?? []), second, `${second}:${e.channel}`]);
    }
    await Promise.all([...byBucket].map(([bucket, members]) => cmd.zadd(bucket, ...members)));
  }

  /** Deletes expired state keys with a delete event each. A sweep that fails (Redis away) is
   * retried by the next tick: snapshots leave expired keys out meanwhile. */
  private readonly sweep = (): void => {
    const cmd = this.connection();
    if (!cmd || cmd.status !== 'ready') return;
    const now = this.now();
    const done =
      this.keys.layout === 'cluster' ? this.sweepBuckets(cmd, now) : this.sweepIndex(cmd, now);
    done.then(
      () => {
        if (!this.failing) return;
        this.failing = false;
        this.log?.info({}, 'Redis backplane: expiry sweep works again');
      },
      (err: unknown) => {
        if (this.failing || this.connection() === null) return;
        this.failing = true;
        this.log?.warn({ err }, 'Redis backplane: expiry sweep failed, retrying every second');
      },
    );
  };

  private async sweepIndex(cmd: RedisClient & ArchonScripts, now: number): Promise<void> {
    const index = this.keys.expiring();
    const channels = await cmd.zrangebyscore(index, '-inf', now, 'LIMIT', 0, EXPIRY_SWEEP_CHANNELS);
    await Promise.all(channels.map((channel) => this.expireState(cmd, channel, now, [index])));
  }

  private async sweepBuckets(cmd: RedisClient & ArchonScripts, now: number): Promise<void> {
    const results = await Promise.allSettled(
      this.keys.expiryBuckets().map(async (bucket) => {
        const members = await cmd.zrangebyscore(
          bucket,
          '-inf',
          now,
          'LIMIT',
          0,
          EXPIRY_SWEEP_CHANNELS,
        );
        await Promise.all(members.map((member) => this.expireMember(cmd, bucket, member, now)));
      }),
    );
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /** The expiry script on one channel; on one primary the index comes first (its KEYS[1]). */
  private expireState(
    cmd: RedisClient & ArchonScripts,
    channel: string,
    now: number,
    index: readonly string[] = [],
  ): Promise<unknown> {
    const k = this.keys.channel(channel);
    return cmd.archonExpireState(
      ...index,
      k.meta,
      k.stream,
      k.state,
      k.exp,
      newEpoch(),
      String(now),
      channel,
      k.events,
    );
  }

  private async expireMember(
    cmd: RedisClient & ArchonScripts,
    bucket: string,
    member: string,
    now: number,
  ): Promise<void> {
    const channel = member.slice(member.indexOf(':') + 1);
    const [, found] = asArray(await this.expireState(cmd, channel, now));
    // A full batch may leave more due: the member stays for the next tick.
    if (asNumber(found) < EXPIRE_BATCH) await cmd.zrem(bucket, asString(member));
  }
}
