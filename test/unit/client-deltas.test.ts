/**
 * The SDK's side of deltas (docs/client.md): a state subscription rebuilds full values from
 * the patches it receives, hands the application only full values, and starts over from a
 * snapshot when a patch names a base it does not hold. In-process, with a recording host.
 */
import { describe, expect, it } from 'vitest';
import { ChannelSubscription, type SubscriptionHost } from '../../src/client/subscription.js';
import type { ChannelEvent } from '../../src/client/types.js';
import { parseChannel, type EventMessage } from '../../src/protocol/index.js';

const CHANNEL = 'positions:ACC1';

function setup(deltas: boolean) {
  const resubscribed: string[] = [];
  const host: SubscriptionHost = {
    history: () => Promise.resolve(null),
    unsubscribe: () => {},
    linkStale: () => false,
    deltas: () => deltas,
    resubscribe: (channel) => resubscribed.push(channel),
  };
  const info = parseChannel(CHANNEL);
  if (!info) throw new Error('no channel');
  const sub = new ChannelSubscription<unknown>(info, host);
  const events: ChannelEvent[] = [];
  sub.on('event', (e) => events.push(e));
  sub.subscribeOp(1);
  sub.onSubscribed({
    type: 'subscribed',
    id: 1,
    channel: CHANNEL,
    epoch: 'e1',
    seq: 10,
    recovered: true,
    replayed: 0,
  });
  sub.onSnapshot({
    type: 'snapshot',
    channel: CHANNEL,
    epoch: 'e1',
    seq: 10,
    entries: [{ key: 'EURUSD', data: { price: 1, side: 'long' } }],
  });
  return { sub, events, resubscribed };
}

function event(seq: number, data: unknown, baseSeq?: number, key = 'EURUSD'): EventMessage {
  return {
    type: 'event',
    channel: CHANNEL,
    seq,
    key,
    ts: seq,
    data,
    ...(baseSeq !== undefined && { base_seq: baseSeq }),
  };
}

describe('a state subscription on a connection that gets deltas', () => {
  it('hands over the full value a patch makes of the value it holds', () => {
    const { sub, events } = setup(true);
    sub.onEvent(event(11, { price: 2, side: 'long' }));
    sub.onEvent(event(12, { price: 3 }, 11));
    sub.onEvent(event(13, { side: 'short', size: 5 }, 12));
    expect(events.map((e) => [e.seq, e.data])).toEqual([
      [11, { price: 2, side: 'long' }],
      [12, { price: 3, side: 'long' }],
      [13, { price: 3, side: 'short', size: 5 }],
    ]);
    expect(events.every((e) => !('base_seq' in e))).toBe(true);
  });

  it('holds what a delete removed no longer, and a full value after it again', () => {
    const { sub, events, resubscribed } = setup(true);
    sub.onEvent(event(11, null));
    sub.onEvent(event(12, { price: 4 }));
    sub.onEvent(event(13, { side: 'long' }, 12));
    expect(events.map((e) => e.data)).toEqual([null, { price: 4 }, { price: 4, side: 'long' }]);
    expect(resubscribed).toEqual([]);
  });

  it('emits nothing for a patch on a value it does not hold, and subscribes again', () => {
    const { sub, events, resubscribed } = setup(true);
    sub.onEvent(event(11, { price: 2 }, 9));
    expect(events).toEqual([]);
    expect(resubscribed).toEqual([CHANNEL]);
    expect(sub.position).toEqual({ epoch: 'e1', seq: 10 });
  });

  it('ignores a patch of a seq already handed over instead of applying it twice', () => {
    const { sub, events, resubscribed } = setup(true);
    sub.onEvent(event(11, { price: 2 }));
    sub.onEvent(event(12, { price: 3 }, 11));
    sub.onEvent(event(12, { price: 3 }, 11));
    expect(events.map((e) => e.seq)).toEqual([11, 12]);
    expect(resubscribed).toEqual([]);
  });

  it('subscribes again on a patch when the connection does not get deltas', () => {
    const { sub, events, resubscribed } = setup(false);
    sub.onEvent(event(11, { price: 2 }));
    sub.onEvent(event(12, { price: 3 }, 11));
    expect(events.map((e) => e.data)).toEqual([{ price: 2 }]);
    expect(resubscribed).toEqual([CHANNEL]);
  });
});
