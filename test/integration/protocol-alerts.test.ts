/**
 * Wire protocol v1, acknowledged risk alerts (docs/protocol.md#ack): an alert waits,
 * delivered on every new subscription as `unacked`, until a user of its account acknowledges
 * it; the acknowledgement reaches every open subscription of the channel at once, and the
 * admin API and metrics show what waits. Against real gateways over real sockets, in embedded
 * mode and in cluster mode on a Redis of the test's own.
 */
import { describe, expect, it } from 'vitest';
import { MAX_UNACKED_SENT, type AlertsAnswer } from '../../src/protocol/index.js';
import { errorsOf, TestClient, type Message } from '../support/client.js';
import { useCluster } from '../support/cluster.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { admin, publish, signToken, type TestGateway } from '../support/gateway.js';
import { metricValue } from '../support/metrics.js';

interface Mode {
  start(server?: string): Promise<TestGateway>;
  client(g: TestGateway, claims?: { sub?: string; accounts?: string[] }): Promise<TestClient>;
}

function embedded(): Mode {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  return {
    start: () => gw.start(),
    client: async (g, claims = {}) =>
      gw.track(await TestClient.authed(g.ws, await signToken(claims))),
  };
}

function clustered(): Mode {
  const cluster = useCluster();
  return { start: (server = 'gw-a') => cluster.instance(server), client: cluster.client };
}

async function alert(g: TestGateway, data: unknown, channel = 'risk:ACC1') {
  const res = await publish(g, { channel, data });
  expect(res.status).toBe(200);
  return (res.body as { results: { seq: number; epoch: string }[] }).results[0]!;
}

async function alerts(g: TestGateway, state = 'unacked'): Promise<AlertsAnswer> {
  const res = await admin(g, 'GET', `/alerts?state=${state}`);
  expect(res.status).toBe(200);
  return res.body as AlertsAnswer;
}

/** Subscribes and returns the `unacked` list that follows the answer. */
async function unackedOn(
  c: TestClient,
  channel = 'risk:ACC1',
): Promise<Message & { alerts: { seq: number }[] }> {
  const answer = await c.subscribe(channel);
  expect(answer.type).toBe('subscribed');
  const list = await c.next((m) => m.type === 'unacked' && m.channel === channel);
  expect(Array.isArray(list.alerts)).toBe(true);
  return list as Message & { alerts: { seq: number }[] };
}

describe.each([
  ['embedded', embedded],
  ['cluster', clustered],
] as const)('protocol: acknowledged alerts (%s)', (_name, mode) => {
  const m = mode();

  it('delivers an alert published while no dashboard was open as unacknowledged on the next subscription', async () => {
    const g = await m.start();
    const { seq, epoch } = await alert(g, { level: 'critical', text: 'margin call' });
    const c = await m.client(g, { sub: 'user-1' });
    const list = await unackedOn(c);
    expect(list).toEqual({
      type: 'unacked',
      channel: 'risk:ACC1',
      epoch,
      seqs: [[seq, seq]],
      alerts: [
        {
          seq,
          key: null,
          ts: expect.any(Number) as number,
          data: { level: 'critical', text: 'margin call' },
        },
      ],
    });
    // The list follows `subscribed` directly: nothing else of the channel came between.
    const types = c.messages.map((msg) => msg.type);
    expect(types.indexOf('unacked')).toBe(types.indexOf('subscribed') + 1);
  });

  it('acknowledges for every user of the account: the answer, a notice to the other dashboards, an empty list after', async () => {
    const g = await m.start();
    const a = await m.client(g, { sub: 'user-1', accounts: ['ACC1'] });
    const b = await m.client(g, { sub: 'user-2', accounts: ['ACC1', 'ACC2'] });
    expect((await unackedOn(a)).alerts).toEqual([]);
    expect((await unackedOn(b)).alerts).toEqual([]);
    const { seq, epoch } = await alert(g, { text: 'limit breached' });
    await a.next((msg) => msg.type === 'event' && msg.seq === seq);
    await b.next((msg) => msg.type === 'event' && msg.seq === seq);

    a.send({ op: 'ack', id: 'k1', channel: 'risk:ACC1', epoch, seq });
    const answer = await a.next((msg) => msg.type === 'acked' && msg.id === 'k1');
    expect(answer).toEqual({
      type: 'acked',
      id: 'k1',
      channel: 'risk:ACC1',
      epoch,
      seq,
      by: 'user-1',
      at: expect.any(Number) as number,
    });
    const notice = await b.next((msg) => msg.type === 'acked');
    expect(notice).toEqual({ ...answer, id: undefined, type: 'acked' });
    expect(notice.id).toBeUndefined();

    // A second acknowledgement, by someone else, is answered with the first one.
    b.send({ op: 'ack', id: 2, channel: 'risk:ACC1', epoch, seq });
    expect(await b.next((msg) => msg.type === 'acked' && msg.id === 2)).toMatchObject({
      by: 'user-1',
      at: answer.at,
    });
    const later = await m.client(g, { sub: 'user-3' });
    expect((await unackedOn(later)).alerts).toEqual([]);
    expect([...errorsOf(a), ...errorsOf(b), ...errorsOf(later)]).toEqual([]);

    // One audit line, for the acknowledgement that counted.
    const audit = g.logs.filter((l) => l.audit === 'alert_ack');
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ channel: 'risk:ACC1', seq, user_id: 'user-1' });
  });

  it('refuses what it cannot acknowledge and keeps the connection', async () => {
    const g = await m.start();
    const { seq, epoch } = await alert(g, { text: 'x' });
    await alert(g, { text: 'other account' }, 'risk:ACC9');
    await publish(g, { channel: 'signals', data: { n: 1 } });
    const c = await m.client(g, { sub: 'user-1', accounts: ['ACC1'] });
    const refusals: [unknown, string][] = [
      [{ channel: 'risk:ACC1', epoch: 'not-the-epoch', seq }, 'alert_unknown'],
      [{ channel: 'risk:ACC1', epoch, seq: seq + 5 }, 'alert_unknown'],
      [{ channel: 'signals', epoch, seq: 1 }, 'alert_unknown'],
      [{ channel: 'risk:ACC9', epoch, seq: 1 }, 'forbidden'],
      [{ channel: 'nope:1', epoch, seq: 1 }, 'unknown_channel'],
    ];
    for (const [i, [fields, code]] of refusals.entries()) {
      c.send({ op: 'ack', id: i, ...(fields as object) });
      expect(await c.next((msg) => msg.type === 'error' && msg.id === i)).toMatchObject({ code });
    }
    // A malformed ack is a protocol error like any malformed op.
    c.send({ op: 'ack', id: 'bad', channel: 'risk:ACC1', epoch, seq: 0 });
    expect(await c.next((msg) => msg.id === 'bad')).toMatchObject({ code: 'bad_request' });
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    // Nothing was acknowledged.
    expect((await unackedOn(c)).alerts.map((a: { seq: number }) => a.seq)).toEqual([seq]);
  });

  it('shows operators what waits: admin listing with deliveries, and the two gauges', async () => {
    const g = await m.start();
    const { seq, epoch } = await alert(g, { level: 'warning' });
    const a = await m.client(g, { sub: 'user-1' });
    const b = await m.client(g, { sub: 'user-2' });
    await unackedOn(a);
    await unackedOn(b);
    await unackedOn(b, 'risk:ACC1');
    let waiting: AlertsAnswer | undefined;
    await eventually(async () => {
      waiting = await alerts(g);
      return waiting.alerts[0]?.delivered === 3;
    }, 'deliveries to be counted');
    expect(waiting).toMatchObject({
      state: 'unacked',
      unacked: 1,
      alerts: [
        {
          channel: 'risk:ACC1',
          account: 'ACC1',
          epoch,
          seq,
          data: { level: 'warning' },
          state: 'unacked',
          acked_by: null,
          deliveries: { 'user-1': 1, 'user-2': 2 },
          delivered: 3,
        },
      ],
    });
    expect(waiting!.oldest_unacked_seconds).toBeGreaterThanOrEqual(0);
    await eventually(
      async () => (await metricValue(g, 'archon_websocket_alerts_unacked')) === 1,
      'the gauge to show the waiting alert',
    );

    a.send({ op: 'ack', id: 1, channel: 'risk:ACC1', epoch, seq });
    await a.next((msg) => msg.type === 'acked');
    expect((await alerts(g)).alerts).toEqual([]);
    const acked = await alerts(g, 'acked');
    expect(acked).toMatchObject({ unacked: 0, oldest_unacked_seconds: null });
    expect(acked.alerts[0]).toMatchObject({ seq, state: 'acked', acked_by: 'user-1' });
    expect((await alerts(g, 'all')).alerts).toHaveLength(1);
    await eventually(
      async () =>
        (await metricValue(g, 'archon_websocket_alerts_unacked')) === 0 &&
        (await metricValue(g, 'archon_websocket_alert_unacked_oldest_seconds')) === 0,
      'the gauges to drop to 0',
      { timeoutMs: 10_000 },
    );
    expect((await admin(g, 'GET', '/alerts?state=maybe')).status).toBe(400);
  });
});

describe('protocol: acknowledged alerts across instances', () => {
  const cluster = useCluster();

  it('an alert acknowledged on instance A is not redelivered by B, and one not acknowledged survives a restart', async () => {
    const a = await cluster.instance('gw-a');
    const b = await cluster.instance('gw-b');
    const onA = await cluster.client(a, { sub: 'user-1' });
    const onB = await cluster.client(b, { sub: 'user-2' });
    await unackedOn(onA);
    await unackedOn(onB);
    const first = await alert(a, { n: 1 });
    const second = await alert(b, { n: 2 });
    await onA.next((msg) => msg.type === 'event' && msg.seq === second.seq);

    onA.send({ op: 'ack', id: 1, channel: 'risk:ACC1', epoch: first.epoch, seq: first.seq });
    await onA.next((msg) => msg.type === 'acked' && msg.id === 1);
    // B's open dashboard hears of it at once.
    expect(await onB.next((msg) => msg.type === 'acked')).toMatchObject({
      seq: first.seq,
      by: 'user-1',
    });
    const fresh = await cluster.client(b, { sub: 'user-3' });
    expect((await unackedOn(fresh)).alerts.map((x: { seq: number }) => x.seq)).toEqual([
      second.seq,
    ]);

    // Every gateway restarts: the waiting alert is still there for the next sign-in.
    onA.ws.terminate();
    onB.ws.terminate();
    fresh.ws.terminate();
    await a.stop();
    await b.stop();
    const c = await cluster.instance('gw-c');
    const next = await cluster.client(c, { sub: 'user-1' });
    const list = await unackedOn(next);
    expect(list).toMatchObject({
      epoch: second.epoch,
      alerts: [{ seq: second.seq, data: { n: 2 } }],
    });
  });
});

describe.each([
  ['embedded', embedded],
  ['cluster', clustered],
] as const)('protocol: expired signals (%s)', (_name, mode) => {
  const m = mode();

  it('sends expires_at live, and never replays an expired signal: `expired` stands in for it', async () => {
    const g = await m.start();
    const c = await m.client(g);
    const opened = await c.subscribe('signals');
    const res = await publish(g, {
      events: [
        { channel: 'signals', data: { n: 1 }, ttl: 1 },
        { channel: 'signals', data: { n: 2 }, ttl: 0 },
        { channel: 'signals', data: { n: 3 }, ttl: 1 },
      ],
    });
    expect(res.status).toBe(200);
    const first = await c.next((msg) => msg.type === 'event' && msg.seq === 1);
    expect(first.expires_at).toBe((first.ts as number) + 1000);
    const second = await c.next((msg) => msg.type === 'event' && msg.seq === 2);
    expect(second).not.toHaveProperty('expires_at');
    await c.next((msg) => msg.type === 'event' && msg.seq === 3);

    await new Promise((r) => setTimeout(r, 1200));
    const back = await m.client(g);
    const answer = await back.subscribe('signals', { epoch: opened.epoch as string, seq: 0 });
    expect(answer).toMatchObject({ recovered: true, replayed: 1, seq: 3 });
    await back.next((msg) => msg.type === 'expired' && msg.seq === 3);
    expect(back.messages.filter((msg) => msg.channel === 'signals').map((msg) => msg.type)).toEqual(
      ['subscribed', 'expired', 'event', 'expired'],
    );
    const [one, , three] = back.messages.filter((msg) => msg.type !== 'welcome').slice(1);
    expect(one).toEqual({ type: 'expired', channel: 'signals', from_seq: 1, seq: 1 });
    expect(three).toEqual({ type: 'expired', channel: 'signals', from_seq: 3, seq: 3 });
    // GET /api/v1/history leaves them out too.
    const history = await fetch(`${g.http}/api/v1/history?channel=signals&since_seq=0`, {
      headers: { authorization: `Bearer ${await signToken({})}` },
    });
    const body = (await history.json()) as { events: { seq: number }[]; complete: boolean };
    expect(body.events.map((e) => e.seq)).toEqual([2]);
    expect(body.complete).toBe(true);
  });
});

describe('protocol: expiring events (ttl)', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

  it('applies the class default (WEBSOCKET_STREAM_TTL) unless the event says otherwise', async () => {
    const g = await gw.start({ WEBSOCKET_STREAM_TTL: '2' });
    const c = await gw.authed({});
    await c.subscribe('signals');
    await c.subscribe('risk:ACC1');
    await publish(g, {
      events: [
        { channel: 'signals', data: { n: 1 } },
        { channel: 'signals', data: { n: 2 }, ttl: 0 },
        { channel: 'risk:ACC1', data: { n: 3 } },
      ],
    });
    const one = await c.next((msg) => msg.type === 'event' && msg.seq === 1);
    expect(one.expires_at).toBe((one.ts as number) + 2000);
    expect(await c.next((msg) => msg.type === 'event' && msg.seq === 2)).not.toHaveProperty(
      'expires_at',
    );
    // Alerts keep theirs by default.
    expect(
      await c.next((msg) => msg.type === 'event' && msg.channel === 'risk:ACC1'),
    ).not.toHaveProperty('expires_at');
  });

  it('refuses a ttl out of range, and on system notices', async () => {
    const g = await gw.start();
    for (const body of [
      { channel: 'signals', data: {}, ttl: -1 },
      { channel: 'signals', data: {}, ttl: 8 * 86400 },
      { channel: 'signals', data: {}, ttl: 'soon' },
      { channel: 'system', data: { message: 'hi' }, ttl: 5 },
    ]) {
      const res = await publish(g, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body).toMatchObject({ error: { code: 'invalid_event' } });
    }
  });
});

describe.each([
  ['embedded', embedded],
  ['cluster', clustered],
] as const)('protocol: expiring state keys (%s)', (_name, mode) => {
  const m = mode();

  it('deletes an expired position with the usual delete event and leaves it out of snapshots', async () => {
    const g = await m.start();
    const c = await m.client(g);
    await c.subscribe('positions:ACC1');
    await c.type('snapshot');
    const res = await publish(g, {
      events: [
        { channel: 'positions:ACC1', key: 'EURUSD', data: { qty: 1 }, ttl: 1 },
        { channel: 'positions:ACC1', key: 'GBPUSD', data: { qty: 2 } },
      ],
    });
    expect(res.status).toBe(200);
    const deleted = await c.next(
      (msg) => msg.type === 'event' && msg.key === 'EURUSD' && msg.data === null,
      5000,
    );
    expect(deleted.seq).toBe(3);
    // A delete never expires, even published with a ttl: it must reach every client.
    await publish(g, { channel: 'positions:ACC1', key: 'GBPUSD', data: null, ttl: 1 });
    const gone = await c.next((msg) => msg.type === 'event' && msg.key === 'GBPUSD');
    expect(gone.data).toBeNull();
    expect(gone).not.toHaveProperty('expires_at');
    await publish(g, { channel: 'positions:ACC1', key: 'GBPUSD', data: { qty: 2 } });
    const late = await m.client(g);
    await late.subscribe('positions:ACC1');
    const snapshot = await late.type('snapshot');
    expect(snapshot.entries).toEqual([{ key: 'GBPUSD', data: { qty: 2 } }]);
  });
});

describe('protocol: a backlog of waiting alerts', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

  it('names every waiting alert but sends only the newest MAX_UNACKED_SENT in full', async () => {
    const g = await gw.start();
    const events = Array.from({ length: MAX_UNACKED_SENT + 30 }, (_, i) => ({
      channel: 'risk:ACC1',
      data: { n: i + 1 },
    }));
    expect((await publish(g, { events })).status).toBe(200);
    const c = await gw.authed({});
    const list = await unackedOn(c);
    expect(list.seqs).toEqual([[1, events.length]]);
    expect(list.alerts.map((a) => a.seq)).toEqual(
      Array.from({ length: MAX_UNACKED_SENT }, (_, i) => events.length - MAX_UNACKED_SENT + i + 1),
    );
  });
});
