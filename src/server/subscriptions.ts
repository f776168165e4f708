/**
 * A connection's channel subscriptions: the rules of joining (docs/protocol.md#subscribe:
 * channel grammar, the token's accounts, WEBSOCKET_MAX_SUBSCRIPTIONS) and their registration
 * with the hub. Whatever ends a subscription also drops what is still queued for its channel:
 * a resubscribe replays it, and a stale value must never be delivered after a new snapshot.
 */
import {
  ArchonError,
  parseChannel,
  SYSTEM_CHANNEL,
  type ServerMessage,
  type SubscribeOp,
} from '../protocol/index.js';
import { mayJoin, type Principal } from './auth.js';
import { Subscription, type Hub, type Subscriber } from './hub.js';
import { quote } from './text.js';
import type { OutboundQueue } from './queue.js';

export class ConnectionSubscriptions {
  private readonly byChannel = new Map<string, Subscription>();

  constructor(
    private readonly subscriber: Subscriber,
    private readonly hub: Hub,
    /** The connection's outbound side (Outbound.dropChannel). */
    private readonly queue: Pick<OutboundQueue, 'dropChannel'>,
    private readonly max: number,
  ) {}

  has(channel: string): boolean {
    return this.byChannel.has(channel);
  }

  get channels(): string[] {
    return [...this.byChannel.keys()];
  }

  /**
   * Joins a channel for `principal`, or throws ArchonError (unknown_channel, forbidden,
   * too_many_subscriptions, or what the hub throws). `system` needs no registration: every
   * connection receives it, so its answer is returned for the caller to send.
   */
  async join(principal: Principal, op: SubscribeOp): Promise<ServerMessage | null> {
    const channel = this.hub.channelInfo(op.channel) ?? parseChannel(op.channel);
    if (!channel) throw new ArchonError('unknown_channel', `unknown channel ${quote(op.channel)}`);
    if (!mayJoin(principal, channel))
      throw new ArchonError('forbidden', `account ${channel.account ?? ''} is not yours`);
    if (channel.name === SYSTEM_CHANNEL) {
      return {
        type: 'subscribed',
        ...(op.id !== undefined && { id: op.id }),
        channel: SYSTEM_CHANNEL,
        epoch: '',
        seq: 0,
        recovered: true,
        replayed: 0,
      };
    }
    if (!this.byChannel.has(channel.name) && this.byChannel.size >= this.max) {
      // Each subscription costs memory here and in the backplane: a client cannot grow it
      // without bound by subscribing to made-up names.
      throw new ArchonError(
        'too_many_subscriptions',
        `at most ${this.max} subscriptions per connection`,
      );
    }
    this.drop(channel.name);
    const sub = new Subscription(this.subscriber, channel);
    this.byChannel.set(channel.name, sub);
    try {
      await this.hub.subscribe(sub, op.since, op.id);
    } catch (err) {
      if (this.byChannel.get(channel.name) === sub) this.byChannel.delete(channel.name);
      throw err;
    }
    return null;
  }

  /** Ends a subscription (unsubscribe, resubscribe). */
  drop(channel: string): void {
    const sub = this.byChannel.get(channel);
    if (sub) {
      this.byChannel.delete(channel);
      this.hub.unsubscribe(sub);
    }
    this.queue.dropChannel(channel);
  }

  /** Ends the subscriptions `principal` may no longer join (a refreshed token with fewer
   * accounts); returns their channels. */
  dropForbidden(principal: Principal): string[] {
    const dropped = [...this.byChannel.values()]
      .filter((sub) => !mayJoin(principal, sub.channel))
      .map((sub) => sub.channel.name);
    for (const channel of dropped) this.drop(channel);
    return dropped;
  }

  /** The hub already dropped these (resync): forget them here too. */
  forget(channels: readonly string[]): void {
    for (const channel of channels) {
      this.byChannel.delete(channel);
      this.queue.dropChannel(channel);
    }
  }

  /** Ends every subscription; returns their channels. */
  dropAll(): string[] {
    const channels = this.channels;
    for (const sub of this.byChannel.values()) this.hub.unsubscribe(sub);
    this.byChannel.clear();
    return channels;
  }
}
