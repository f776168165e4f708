/**
 * The subscriber side of the backplane on a Redis Cluster (docs/cluster.md#sharded-pubsub): a
 * channel's events are SPUBLISHed on the primary that serves its slot, and reach only the
 * connections subscribed there. So this keeps one connection per primary that serves a channel
 * of ours, SSUBSCRIBEs each channel on its primary, and follows the cluster's slot table (read
 * by the command Cluster client, which re-reads it every second and on every MOVED):
 *
 * - a connection that drops makes its channels `lost`; when it is back they are `back`;
 * - a channel whose slot is now served by another node (a replica took over from a dead
 *   primary, or a resharding moved it) is `lost` and `back` at once, and the backplane
 *   resubscribes it there and replays what it missed meanwhile;
 * - a connection to a node that serves none of our channels and is no longer a primary goes.
 *
 * ioredis's own sharded subscribers (`shardedSubscribers: true`) resubscribe by themselves and
 * do not say when Redis confirmed it, which the replay needs; hence connections of our own.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { ioredis } from './ioredis.js';
import { parseNodeKey } from './redis-connect.js';
import type { RedisKeys } from './redis-keys.js';
import { keySlot } from './redis-slot.js';
import {
  quit,
  type EventSubscriber,
  type SubscribeOutcome,
  type SubscriberEvents,
} from './redis-subscriber.js';

interface Link {
  readonly node: string;
  readonly redis: Redis;
  /** Channels Redis confirmed on this connection (or on its previous incarnation). */
  readonly channels: Set<string>;
  up: boolean;
  everUp: boolean;
  connecting: Promise<void> | null;
}

export class ShardSubscriber implements EventSubscriber {
  private readonly links = new Map<string, Link>();
  private readonly owners = new Map<string, Link>();
  private stopped = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly keys: RedisKeys,
    /** Each connection's options (TLS, credentials, timeouts, retry strategy). */
    private readonly options: RedisOptions,
    private readonly events: SubscriberEvents,
  ) {}

  start(): Promise<void> {
    this.cluster.on('refresh', this.onRefresh);
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cluster.off('refresh', this.onRefresh);
    const links = [...this.links.values()];
    this.links.clear();
    this.owners.clear();
    await Promise.all(links.map((link) => quit(link.redis)));
  }

  async subscribe(channels: readonly string[]): Promise<SubscribeOutcome> {
    const byNode = new Map<string, string[]>();
    const failed: string[] = [];
    let error: unknown = null;
    for (const channel of channels) {
      const node = this.nodeOf(channel);
      if (node === undefined) {
        failed.push(channel);
        error = new Error(`no Redis Cluster node serves the slot of ${channel} yet`);
        continue;
      }
      byNode.set(node, [...(byNode.get(node) ?? []), channel]);
    }
    const subscribed: string[] = [];
    await Promise.all(
      [...byNode].map(async ([node, group]) => {
        try {
          const link = await this.connected(node);
          // One SSUBSCRIBE per channel: in a cluster, one command may name one slot only.
          await Promise.all(group.map((c) => link.redis.ssubscribe(this.keys.channel(c).events)));
          for (const channel of group) this.assign(channel, link);
          subscribed.push(...group);
        } catch (err) {
          failed.push(...group);
          error = err;
        }
      }),
    );
    return { subscribed, failed, error };
  }

  async unsubscribe(channel: string): Promise<void> {
    const link = this.owners.get(channel);
    if (!link) return;
    this.owners.delete(channel);
    link.channels.delete(channel);
    await this.sunsubscribe(link, channel);
  }

  async barrier(channels: readonly string[]): Promise<void> {
    const links = new Set<Link>();
    for (const channel of channels) {
      const link = this.owners.get(channel);
      if (link) links.add(link);
    }
    await Promise.all([...links].map((link) => link.redis.ping()));
  }

  usable(): boolean {
    return this.cluster.status === 'ready';
  }

  /** The primary serving a channel's slot now, as the Cluster client last read it. */
  private nodeOf(channel: string): string | undefined {
    return this.cluster.slots[keySlot(this.keys.channel(channel).events)]?.[0];
  }

  private assign(channel: string, link: Link): void {
    const previous = this.owners.get(channel);
    if (previous && previous !== link) {
      previous.channels.delete(channel);
      void this.sunsubscribe(previous, channel);
    }
    this.owners.set(channel, link);
    link.channels.add(channel);
  }

  private async sunsubscribe(link: Link, channel: string): Promise<void> {
    if (link.redis.status !== 'ready') return;
    try {
      await link.redis.sunsubscribe(this.keys.channel(channel).events);
    } catch {
      // Gone with the connection, or the node gave the slot away: nothing left to undo.
    }
  }

  /** The connection to a node, connected first if it is new. */
  private async connected(node: string): Promise<Link> {
    let link = this.links.get(node);
    if (!link) {
      link = this.open(node);
      this.links.set(node, link);
    }
    if (link.redis.status === 'wait') {
      const connecting = link;
      connecting.connecting ??= link.redis.connect().finally(() => {
        connecting.connecting = null;
      });
    }
    if (link.connecting) await link.connecting;
    if (link.redis.status !== 'ready') throw new Error(`Redis node ${node} is not connected`);
    return link;
  }

  private open(node: string): Link {
    const { Redis } = ioredis();
    const redis = new Redis({
      ...this.options,
      ...parseNodeKey(node),
      lazyConnect: true,
      // Resubscribing is the backplane's (see the top of redis-subscriber.ts).
      autoResubscribe: false,
    });
    const link: Link = {
      node,
      redis,
      channels: new Set(),
      up: false,
      everUp: false,
      connecting: null,
    };
    redis.on('error', () => {
      // Reported as `lost` on close; ioredis would print every reconnect failure otherwise.
    });
    redis.on('ready', () => {
      link.up = true;
      if (this.stopped || !link.everUp) {
        link.everUp = true;
        return;
      }
      if (link.channels.size > 0) this.events.back([...link.channels]);
    });
    redis.on('close', () => {
      if (!link.up) return;
      link.up = false;
      if (!this.stopped && link.channels.size > 0) this.events.lost([...link.channels], node);
    });
    redis.on('smessage', (_channel: string, text: string) => this.events.message(text));
    // The node sent an unsolicited SUNSUBSCRIBE: it gave a slot away (resharding). Which
    // channel is not said: every channel of the connection is resubscribed where it now lives.
    redis.on('moved', () => {
      if (this.stopped || link.channels.size === 0) return;
      const channels = [...link.channels];
      this.events.lost(channels, node);
      this.cluster.refreshSlotsCache(() => {
        if (!this.stopped) this.events.back(channels);
      });
    });
    return link;
  }

  /** The slot table was read again: channels whose slot moved go where it went. */
  private readonly onRefresh = (): void => {
    if (this.stopped) return;
    const moved = new Map<Link, string[]>();
    for (const [channel, link] of this.owners) {
      const node = this.nodeOf(channel);
      if (node !== undefined && node !== link.node)
        moved.set(link, [...(moved.get(link) ?? []), channel]);
    }
    for (const [link, channels] of moved) {
      for (const channel of channels) {
        this.owners.delete(channel);
        link.channels.delete(channel);
        void this.sunsubscribe(link, channel);
      }
      this.events.lost(channels, `${link.node}, which no longer serves their slots`);
      this.events.back(channels);
    }
    const serving = new Set<string>();
    for (const nodes of this.cluster.slots) if (nodes?.[0] !== undefined) serving.add(nodes[0]);
    for (const [node, link] of this.links) {
      if (link.channels.size > 0 || serving.has(node)) continue;
      this.links.delete(node);
      void quit(link.redis);
    }
  };
}
