/**
 * The SDK's side of acknowledged alerts and expiring events (docs/client.md): `ack()` settles
 * with the gateway's answer, every subscription of the channel hears `acked`, a resubscribe
 * hands over the `unacked` list, and expired events move the resume point on without a gap.
 * Against a real gateway, on Node's global WebSocket.
 */
import { describe, expect, it } from 'vitest';
import {
  AckError,
  type AlertAckInfo,
  type ChannelEvent,
  type Gap,
  type UnackedAlerts,
} from '../../src/client/index.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { publish, signToken } from '../support/gateway.js';
import { useSdk } from '../support/sdk.js';

describe('client SDK: acknowledged alerts', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const sdk = useSdk();

  it('acknowledges from one client and the other hears of it; the next list leaves it out', async () => {
    const g = await gw.start();
    const published = await publish(g, { channel: 'risk:ACC1', data: { level: 'critical' } });
    const { seq, epoch } = (published.body as { results: { seq: number; epoch: string }[] })
      .results[0]!;
    const first = sdk(g, { token: () => signToken({ sub: 'trader-1' }) });
    const second = sdk(g, { token: () => signToken({ sub: 'trader-2' }) });
    const lists: UnackedAlerts[] = [];
    const heard: AlertAckInfo[] = [];
    first.subscribe('risk:ACC1').on('unacked', (list) => lists.push(list));
    second.subscribe('risk:ACC1').on('acked', (ack) => heard.push(ack));
    await eventually(() => lists.length === 1, 'the unacked list');
    expect(lists[0]).toMatchObject({
      channel: 'risk:ACC1',
      epoch,
      alerts: [{ seq, epoch, data: { level: 'critical' } }],
    });
    await eventually(() => second.subscribe('risk:ACC1').state === 'live', 'the second client');

    const ack = await first.ack('risk:ACC1', epoch, seq);
    expect(ack).toMatchObject({ channel: 'risk:ACC1', epoch, seq, by: 'trader-1' });
    await eventually(() => heard.length > 0, 'the acknowledgement on the other client');
    expect(heard[0]).toEqual(ack);
    // The same alert again: answered with the first acknowledgement.
    expect(await second.ack('risk:ACC1', epoch, seq)).toEqual(ack);

    const later = sdk(g, { token: () => signToken({ sub: 'trader-3' }) });
    const laterLists: UnackedAlerts[] = [];
    later.subscribe('risk:ACC1').on('unacked', (list) => laterLists.push(list));
    await eventually(() => laterLists.length === 1, 'the next list');
    expect(laterLists[0]?.alerts).toEqual([]);
  });

  it('rejects with the gateway code, and without a connection', async () => {
    const g = await gw.start();
    const client = sdk(g);
    client.subscribe('signals');
    await eventually(() => client.state === 'connected', 'the connection');
    const refused = await client.ack('risk:ACC1', 'nope', 1).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(AckError);
    expect(refused).toMatchObject({ code: 'alert_unknown', channel: 'risk:ACC1' });
    client.close();
    await expect(client.ack('risk:ACC1', 'nope', 1)).rejects.toMatchObject({
      code: 'not_connected',
    });
  });
});

describe('client SDK: expiring events', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const sdk = useSdk();

  it('resumes past expired signals without a gap, and hands over only what is still true', async () => {
    const g = await gw.start();
    const watcher = sdk(g);
    const seen: ChannelEvent[] = [];
    const sub = watcher.subscribe('signals', (e) => seen.push(e));
    await eventually(() => sub.state === 'live', 'the subscription');
    const start = sub.position!;
    watcher.close();

    await publish(g, {
      events: [
        { channel: 'signals', data: { n: 1 }, ttl: 0.5 },
        { channel: 'signals', data: { n: 2 } },
        { channel: 'signals', data: { n: 3 }, ttl: 0.5 },
      ],
    });
    await new Promise((r) => setTimeout(r, 700));

    const resumed = sdk(g);
    const got: ChannelEvent[] = [];
    const gaps: Gap[] = [];
    resumed.on('gap', (gap) => gaps.push(gap));
    const again = resumed.subscribe('signals', (e) => got.push(e), { since: start });
    await eventually(() => again.position?.seq === 3, 'the resume point to reach seq 3');
    expect(got.map((e) => e.data)).toEqual([{ n: 2 }]);
    expect(gaps).toEqual([]);
    expect(seen).toEqual([]);
  });
});
