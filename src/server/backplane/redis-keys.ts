/**
 * Where the Redis backplane keeps each channel (docs/cluster.md, "Keys" and
 * docs/cluster.md#keys-and-hash-tags).
 *
 * On one primary the names are the ones this backplane always used. In a Redis Cluster every
 * key of one channel carries the channel as its hash tag (`archon:ch:{risk:ACC1}:stream`), so
 * all of them live in one hash slot: each Lua script touches one slot, as Redis Cluster
 * requires, and the channel's pub/sub channel (`archon:ev:{risk:ACC1}`, sharded) has the same
 * tag, so the script can SPUBLISH it on the node that stores the event. Channel names cannot
 * hold `{` or `}` (src/protocol/channels.ts), so the tag is always the whole channel.
 */
import { keySlot } from './redis-slot.js';

export type RedisLayout = 'single' | 'cluster';

export interface ChannelKeys {
  /** Hash {epoch, seq} (and, in a cluster, the node that wrote it). */
  readonly meta: string;
  /** Stream of stream and alert channels: entry id `<seq>-1`. */
  readonly stream: string;
  /** Hash key → data of state channels. */
  readonly state: string;
  /** Sorted set of a state channel's keys that expire, by expires_at. */
  readonly exp: string;
  /** Risk channels: acknowledgements and deliveries of alerts. */
  readonly acks: string;
  readonly deliv: string;
  /** The pub/sub channel of its events and acknowledgements. */
  readonly events: string;
}

/**
 * Cluster layout: state channels with expiring keys are indexed in this many sorted sets, each
 * in a slot of its own (`archon:expiring:{e7}`), chosen by the channel (redis-expiry.ts).
 */
export const EXPIRY_BUCKETS = 16;

export class RedisKeys {
  constructor(
    readonly prefix: string,
    readonly layout: RedisLayout,
  ) {}

  channel(channel: string): ChannelKeys {
    const tag = this.tag(channel);
    const base = `${this.prefix}ch:${tag}`;
    return {
      meta: `${base}:meta`,
      stream: `${base}:stream`,
      state: `${base}:state`,
      exp: `${base}:exp`,
      acks: `${base}:acks`,
      deliv: `${base}:deliv`,
      events: `${this.prefix}ev:${tag}`,
    };
  }

  /**
   * The first result of a publish with this id. Ids are per channel (the engine may reuse one
   * event id on several channels), and the key must be unambiguous: (`signals`, `x:1`) and
   * (`signals:x`, `1`) are two keys. One primary: the channel's length goes first; a cluster:
   * the tag delimits the channel.
   */
  idempotency(channel: string, id: string): string {
    return this.layout === 'cluster'
      ? `${this.prefix}idem:{${channel}}:${id}`
      : `${this.prefix}idem:${channel.length}:${channel}:${id}`;
  }

  /** One primary: the sorted set of state channels by their next expiry. */
  expiring(): string {
    return `${this.prefix}expiring`;
  }

  /** A cluster: the expiry bucket of a channel (redis-expiry.ts). */
  expiryBucket(channel: string): string {
    return this.bucket(keySlot(channel) % EXPIRY_BUCKETS);
  }

  expiryBuckets(): string[] {
    return Array.from({ length: EXPIRY_BUCKETS }, (_, i) => this.bucket(i));
  }

  /** SCAN pattern of the streams of risk channels (the alert listing). */
  alertStreams(): string {
    return this.layout === 'cluster'
      ? `${this.prefix}ch:{risk:*}:stream`
      : `${this.prefix}ch:risk:*:stream`;
  }

  /** The channel a key matched by alertStreams() belongs to. */
  channelOfStream(key: string): string {
    const inner = key.slice(`${this.prefix}ch:`.length, -':stream'.length);
    return this.layout === 'cluster' ? inner.slice(1, -1) : inner;
  }

  private tag(channel: string): string {
    return this.layout === 'cluster' ? `{${channel}}` : channel;
  }

  private bucket(n: number): string {
    return `${this.prefix}expiring:{e${n}}`;
  }
}
