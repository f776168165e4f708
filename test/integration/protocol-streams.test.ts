/**
 * Wire protocol v1, stream and alert channels (docs/protocol.md): gapless seq within an epoch,
 * resume with `since`, and `recovered:false` whenever the gap is no longer in history.
 */
import { describe, expect, it } from 'vitest';
import { seqs } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { publish, type PublishAnswer, type TestGateway } from '../support/gateway.js';

describe('protocol: stream and alert channels', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

  /** Publishes n events on a channel in one batch; returns the answer. */
  async function burst(
    g: TestGateway,
    channel: string,
    n: number,
    tag = 'e',
  ): Promise<PublishAnswer> {
    const events = Array.from({ length: n }, (_, i) => ({ channel, data: { tag, i } }));
    const res = await publish(g, { events });
    expect(res.status).toBe(200);
    return res.body as PublishAnswer;
  }

  function range(from: number, to: number): number[] {
    return Array.from({ length: to - from + 1 }, (_, i) => from + i);
  }

  it('numbers a burst of 200 events 1 to 200 with no gap, in order', async () => {
    const g = await gw.start();
    const c = await gw.authed();
    expect(await c.subscribe('signals')).toMatchObject({ seq: 0, recovered: true });

    const answer = await burst(g, 'signals', 200);
    expect(answer.results.map((r) => r.seq)).toEqual(range(1, 200));
    expect(new Set(answer.results.map((r) => r.epoch)).size).toBe(1);

    await c.next((m) => m.type === 'event' && m.seq === 200);
    const events = c.events('signals');
    expect(seqs(events)).toEqual(range(1, 200));
    expect(events.map((m) => (m.data as { i: number }).i)).toEqual(range(0, 199));
  });

  it('resumes with since: replays exactly the missed events, then live ones, without duplicates', async () => {
    const g = await gw.start();
    const first = await gw.authed();
    const sub = await first.subscribe('signals');
    await burst(g, 'signals', 3, 'before');
    await first.next((m) => m.type === 'event' && m.seq === 3);
    const since = { epoch: sub.epoch as string, seq: 3 };
    first.ws.terminate();
    await first.closed;

    await burst(g, 'signals', 5, 'missed'); // seq 4..8

    const second = await gw.authed();
    const resumed = await second.subscribe('signals', since, 77);
    expect(resumed).toMatchObject({
      type: 'subscribed',
      id: 77,
      channel: 'signals',
      epoch: since.epoch,
      seq: 8,
      recovered: true,
      replayed: 5,
    });

    await burst(g, 'signals', 2, 'live'); // seq 9..10
    await second.next((m) => m.type === 'event' && m.seq === 10);
    const events = second.events('signals');
    expect(seqs(events)).toEqual(range(4, 10));
    expect(events.map((m) => (m.data as { tag: string }).tag)).toEqual([
      ...Array<string>(5).fill('missed'),
      'live',
      'live',
    ]);
    // The replay follows its subscribed answer.
    expect(second.messages.indexOf(resumed)).toBeLessThan(second.messages.indexOf(events[0]!));
  });

  it('answers recovered:false and replays nothing when since names another epoch', async () => {
    const g = await gw.start();
    await burst(g, 'signals', 3);
    const c = await gw.authed();
    const answer = await c.subscribe('signals', { epoch: 'not-this-epoch', seq: 1 });
    expect(answer).toMatchObject({ type: 'subscribed', seq: 3, recovered: false, replayed: 0 });
    expect(answer.epoch).not.toBe('not-this-epoch');

    // Live delivery still works; nothing from before the subscribe was replayed.
    await burst(g, 'signals', 1);
    await c.next((m) => m.type === 'event' && m.seq === 4);
    expect(seqs(c.events('signals'))).toEqual([4]);
  });

  it('answers recovered:false when the missed events are older than the history keeps', async () => {
    const g = await gw.start({ WEBSOCKET_HISTORY_SIZE: '5' });
    const answer = await burst(g, 'signals', 20);
    const epoch = answer.results[0]!.epoch;

    const c = await gw.authed();
    const sub = await c.subscribe('signals', { epoch, seq: 2 });
    expect(sub).toMatchObject({
      type: 'subscribed',
      epoch,
      seq: 20,
      recovered: false,
      replayed: 0,
    });

    // A since still inside the kept window recovers (the bound is the history, not the epoch).
    const inside = await gw.authed();
    expect(await inside.subscribe('signals', { epoch, seq: 16 })).toMatchObject({
      recovered: true,
      replayed: 4,
    });
    await inside.next((m) => m.type === 'event' && m.seq === 20);
    expect(seqs(inside.events('signals'))).toEqual([17, 18, 19, 20]);
    expect(c.events('signals')).toEqual([]);
  });

  it('answers recovered:false once the missed events are older than the history TTL', async () => {
    const g = await gw.start({ WEBSOCKET_HISTORY_TTL: '0.3' });
    const answer = await burst(g, 'signals', 3);
    const epoch = answer.results[0]!.epoch;

    // Within the TTL the gap is recoverable…
    const early = await gw.authed();
    expect(await early.subscribe('signals', { epoch, seq: 1 })).toMatchObject({
      recovered: true,
      replayed: 2,
    });

    // …after it, the same since is not.
    // The TTL (0.3 s) expiring in real time is the subject: wait past it.
    await new Promise((r) => setTimeout(r, 600));
    const late = await gw.authed();
    expect(await late.subscribe('signals', { epoch, seq: 1 })).toMatchObject({
      epoch,
      seq: 3,
      recovered: false,
      replayed: 0,
    });
  });

  it('replays missed risk alerts on resume like a stream', async () => {
    const g = await gw.start();
    const first = await gw.authed();
    const sub = await first.subscribe('risk:ACC1');
    await burst(g, 'risk:ACC1', 2, 'seen');
    await first.next((m) => m.type === 'event' && m.seq === 2);
    first.ws.terminate();
    await first.closed;

    await burst(g, 'risk:ACC1', 3, 'missed'); // seq 3..5

    const second = await gw.authed();
    const resumed = await second.subscribe('risk:ACC1', { epoch: sub.epoch as string, seq: 2 });
    expect(resumed).toMatchObject({
      channel: 'risk:ACC1',
      epoch: sub.epoch,
      seq: 5,
      recovered: true,
      replayed: 3,
    });
    await burst(g, 'risk:ACC1', 1, 'live');
    await second.next((m) => m.type === 'event' && m.seq === 6);
    const events = second.events('risk:ACC1');
    expect(seqs(events)).toEqual([3, 4, 5, 6]);
    expect(events.map((m) => (m.data as { tag: string }).tag)).toEqual([
      'missed',
      'missed',
      'missed',
      'live',
    ]);
    expect(second.messages.indexOf(resumed)).toBeLessThan(second.messages.indexOf(events[0]!));
  });

  it('keeps risk alerts recoverable beyond the stream history size', async () => {
    const g = await gw.start({ WEBSOCKET_HISTORY_SIZE: '5' });
    const answer = await burst(g, 'risk:ACC1', 20);
    const epoch = answer.results[0]!.epoch;
    const c = await gw.authed();
    expect(await c.subscribe('risk:ACC1', { epoch, seq: 2 })).toMatchObject({
      seq: 20,
      recovered: true,
      replayed: 18,
    });
    await c.next((m) => m.type === 'event' && m.seq === 20);
    expect(seqs(c.events('risk:ACC1'))).toEqual(range(3, 20));
  });
});
