/**
 * The subscriber side of the Redis backplane: the connections that receive the events of the
 * channels this instance has local subscribers for. One primary: one connection, SUBSCRIBE.
 * A Redis Cluster: one connection per primary, SSUBSCRIBE on the primary serving each
 * channel's slot (redis-shard-subscriber.ts).
 *
 * Pub/sub does not replay: whatever a connection misses while it is away is replayed from the
 * streams by the backplane (redis.ts, recover()). So a subscriber tells it which channels may
 * miss messages from now on (`lost`), and when they can be subscribed again (`back`); it never
 * resubscribes by itself, because the replay must start only once Redis confirmed the
 * subscription.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from './redis-keys.js';

/** Channels of a connection, or every channel this instance listens to. */
export type ChannelSet = readonly string[] | 'all';

export interface SubscriberEvents {
  /** A message of a channel's pub/sub channel arrived. */
  message(text: string): void;
  /** These channels may miss messages from now on, until subscribed again. `where`: the node. */
  lost(channels: ChannelSet, where: string): void;
  /** These channels can be subscribed again (their connection is back, or they moved). */
  back(channels: ChannelSet): void;
}

export interface SubscribeOutcome {
  /** Channels Redis confirmed. */
  readonly subscribed: readonly string[];
  readonly failed: readonly string[];
  /** Why the failed ones failed (the last error seen). */
  readonly error: unknown;
}

export interface EventSubscriber {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Subscribes to the events of these channels; resolves once Redis confirmed (or refused). */
  subscribe(channels: readonly string[]): Promise<SubscribeOutcome>;
  unsubscribe(channel: string): Promise<void>;
  /** Resolves once every message Redis sent before now for these channels has arrived. */
  barrier(channels: readonly string[]): Promise<void>;
  /** Subscribing can work now: a failed replay is retried while this holds. */
  usable(): boolean;
}

/** One primary: one connection for every channel. */
export class SingleSubscriber implements EventSubscriber {
  private connectedOnce = false;
  private stopped = false;

  constructor(
    private readonly sub: Redis,
    private readonly keys: RedisKeys,
    private readonly events: SubscriberEvents,
    private readonly where: string,
  ) {
    sub.on('close', () => {
      if (this.stopped || !this.connectedOnce) return;
      events.lost('all', where);
    });
    sub.on('ready', () => {
      if (this.stopped) return;
      if (!this.connectedOnce) {
        this.connectedOnce = true; // the first connection, made by start()
        return;
      }
      events.back('all');
    });
    sub.on('message', (_channel: string, text: string) => events.message(text));
  }

  start(): Promise<void> {
    return this.sub.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await quit(this.sub);
  }

  async subscribe(channels: readonly string[]): Promise<SubscribeOutcome> {
    if (channels.length === 0) return { subscribed: [], failed: [], error: null };
    try {
      await this.sub.subscribe(...channels.map((c) => this.keys.channel(c).events));
      return { subscribed: channels, failed: [], error: null };
    } catch (error) {
      return { subscribed: [], failed: channels, error };
    }
  }

  async unsubscribe(channel: string): Promise<void> {
    // While disconnected there is nothing to undo: the connection took its subscriptions along.
    if (this.sub.status !== 'ready') return;
    try {
      await this.sub.unsubscribe(this.keys.channel(channel).events);
    } catch {
      // Lost with the connection, or still subscribed: its messages are then dropped as
      // untracked. Either way fine.
    }
  }

  async barrier(): Promise<void> {
    await this.sub.ping();
  }

  usable(): boolean {
    return this.sub.status === 'ready';
  }
}

/** Closes a connection politely when it is up, at once otherwise. */
export async function quit(conn: Redis): Promise<void> {
  if (conn.status !== 'ready') {
    conn.disconnect();
    return;
  }
  try {
    await conn.quit();
  } catch {
    conn.disconnect();
  }
}
