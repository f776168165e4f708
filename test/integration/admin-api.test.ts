/**
 * The operator's admin API (docs/http-api.md#admin-api, RB-003 Steps 1, 3, 5 and section 5),
 * over real HTTP against a real gateway with real WebSocket clients. Field names are what the
 * runbook's `jq` filters read.
 */
import { describe, expect, it } from 'vitest';
import type { ConnectionEntry, StatsAnswer, StatusAnswer } from '../../src/protocol/index.js';
import { connections, publishUntilQueued, queueDepth } from '../support/admin.js';
import { clientId, seqs } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { ADMIN_TOKEN, admin, publish, type ErrorBody } from '../support/gateway.js';
import { metricsText } from '../support/metrics.js';

const ENDPOINTS: { method: 'GET' | 'POST'; path: string; body?: unknown }[] = [
  { method: 'GET', path: '/websocket/status' },
  { method: 'GET', path: '/websocket/connections' },
  { method: 'POST', path: '/websocket/cleanup' },
  { method: 'POST', path: '/websocket/queue/flush' },
  { method: 'GET', path: '/websocket/stats?minutes=5' },
  { method: 'POST', path: '/broadcast', body: { type: 'system', message: 'hello' } },
];

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('admin API', () => {
  const gw = useGateway();

  async function status(): Promise<StatusAnswer> {
    const res = await admin(gw.tg, 'GET', '/websocket/status');
    expect(res.status).toBe(200);
    return res.body as StatusAnswer;
  }

  describe('authentication', () => {
    for (const { method, path, body } of ENDPOINTS) {
      it(`answers ${method} ${path} with 401 without a token and with a wrong token`, async () => {
        const tg = await gw.start();
        const anonymous = await fetch(`${tg.http}/api/v1/admin${path}`, {
          method,
          ...(body !== undefined && {
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(body),
          }),
        });
        expect(anonymous.status).toBe(401);
        expect(((await anonymous.json()) as ErrorBody).error.code).toBe('unauthorized');
        const wrong = await admin(tg, method, path, body, 'adm_wrong_token');
        expect(wrong.status).toBe(401);
        expect((wrong.body as ErrorBody).error.code).toBe('unauthorized');
        const right = await admin(tg, method, path, body);
        expect(right.status).toBe(200);
      });

      it(`answers ${method} ${path} with 404 when no admin token is configured`, async () => {
        const tg = await gw.start({ ARCHON_ADMIN_TOKENS: '' });
        const withToken = await admin(tg, method, path, body, ADMIN_TOKEN);
        expect(withToken.status).toBe(404);
        expect((withToken.body as ErrorBody).error.code).toBe('not_found');
        const anonymous = await fetch(`${tg.http}/api/v1/admin${path}`, { method });
        expect(anonymous.status).toBe(404);
      });
    }

    it('accepts every admin token of a comma-separated list, for rotation', async () => {
      const tg = await gw.start({ ARCHON_ADMIN_TOKENS: 'adm_old,adm_new' });
      const old = await admin(tg, 'GET', '/websocket/status', undefined, 'adm_old');
      const fresh = await admin(tg, 'GET', '/websocket/status', undefined, 'adm_new');
      expect(old.status).toBe(200);
      expect(fresh.status).toBe(200);
      expect((await admin(tg, 'GET', '/websocket/status')).status).toBe(401);
    });
  });

  describe('GET /websocket/status', () => {
    it('reports every field of the runbook with the counts of three connected clients', async () => {
      await gw.start({ WEBSOCKET_MAX_CONNECTIONS: '500' });
      const a = await gw.authed();
      await gw.authed();
      await gw.authed();
      await a.subscribe('signals');
      const s = await status();
      expect(s).toMatchObject({
        active_connections: 3,
        peak_connections: 3,
        queue_depth: 0,
        max_connections: 500,
      });
      for (const field of [
        'errors_last_hour',
        'broadcast_latency_p99_ms',
        'event_loop_lag_p99_ms',
      ] as const) {
        expect(s[field]).toEqual(expect.any(Number));
        expect(s[field]).toBeGreaterThanOrEqual(0);
      }
      expect(s.memory.rss_bytes).toBeGreaterThan(0);
      expect(s.memory.heap_used_bytes).toBeGreaterThan(0);
      expect(s.instances).toHaveLength(1);
      expect(s.instances[0]).toMatchObject({
        server: 'test-1',
        active_connections: 3,
        peak_connections: 3,
        healthy: true,
      });
    });

    it('keeps the peak after clients leave and counts errors of the last hour', async () => {
      const tg = await gw.start();
      const a = await gw.authed();
      const b = await gw.authed();
      await gw.authed();
      a.ws.close(1000);
      b.send('not json');
      await b.type('error');
      await a.closed;
      await eventually(() => tg.gateway.connections.size === 2, 'the server to see the close');
      const s = await status();
      expect(s.active_connections).toBe(2);
      expect(s.peak_connections).toBe(3);
      expect(s.errors_last_hour).toBe(1);
    });

    it('reports a broadcast latency once a published event reached its subscriber', async () => {
      const tg = await gw.start();
      const c = await gw.authed();
      await c.subscribe('signals');
      await publish(tg, { channel: 'signals', data: { n: 1 } });
      await c.type('event');
      const s = await status();
      expect(s.broadcast_latency_p99_ms).toBeGreaterThanOrEqual(0);
      const metrics = await metricsText(tg);
      expect(metrics).toMatch(/archon_websocket_broadcast_duration_seconds_count\{[^}]*\} 1\b/);
    });
  });

  describe('GET /websocket/connections', () => {
    it('lists one object per connection with every field the runbook reads', async () => {
      const tg = await gw.start();
      const a = await gw.authed({ sub: 'trader-a' }, { client: 'archon-dashboard/1.4.2' });
      const b = await gw.authed({ sub: 'trader-b' }, { client: 'archon-dashboard/1.3.0' });
      await a.subscribe('signals');
      await a.subscribe('positions:ACC1');
      const list = await connections(tg);
      expect(Array.isArray(list)).toBe(true);
      expect(list).toHaveLength(2);
      const byId = new Map(list.map((c) => [c.client_id, c]));
      const ia = byId.get(clientId(a));
      const ib = byId.get(clientId(b));
      expect(ia).toMatchObject({
        server: 'test-1',
        user_id: 'trader-a',
        remote_addr: '127.0.0.1',
        client_version: 'archon-dashboard/1.4.2',
        queue_depth: 0,
      });
      expect(ia?.channels.sort()).toEqual(['positions:ACC1', 'signals']);
      // welcome, two subscribed and the positions snapshot were written
      expect(ia?.messages_sent).toBe(4);
      expect(ib).toMatchObject({
        user_id: 'trader-b',
        client_version: 'archon-dashboard/1.3.0',
        channels: [],
        messages_sent: 1,
      });
      for (const c of list) {
        expect(c.connected_at).toMatch(ISO);
        expect(c.last_seen_at).toMatch(ISO);
        expect(Date.parse(c.last_seen_at)).toBeGreaterThanOrEqual(Date.parse(c.connected_at));
      }
    });

    it("supports the runbook's group_by(.server) | map({server, count})", async () => {
      const tg = await gw.start();
      await gw.authed();
      await gw.authed();
      await gw.authed();
      const list = await connections(tg);
      const groups = new Map<string, ConnectionEntry[]>();
      for (const c of list) groups.set(c.server, [...(groups.get(c.server) ?? []), c]);
      const shape = [...groups.values()].map((g) => ({ server: g[0]?.server, count: g.length }));
      expect(shape).toEqual([{ server: 'test-1', count: 3 }]);
    });

    it('counts messages sent to a client as events reach it', async () => {
      const tg = await gw.start();
      const c = await gw.authed();
      await c.subscribe('signals');
      const before = (await connections(tg))[0]?.messages_sent ?? 0;
      await publish(tg, {
        events: [1, 2, 3].map((n) => ({ channel: 'signals', data: { n } })),
      });
      await eventually(() => c.events('signals').length === 3, 'three events');
      expect((await connections(tg))[0]?.messages_sent).toBe(before + 3);
    });
  });

  describe('POST /websocket/cleanup', () => {
    it('answers removed:0 and closes nothing when every connection is healthy', async () => {
      const tg = await gw.start();
      const a = await gw.authed();
      const res = await admin(tg, 'POST', '/websocket/cleanup');
      expect(res).toEqual({ status: 200, body: { removed: 0, servers: { 'test-1': 0 } } });
      await a.subscribe('signals');
      expect(a.ws.readyState).toBe(a.ws.OPEN);
    });

    it('closes a connection whose queue stopped draining with 4010 and leaves healthy ones open', async () => {
      // The sweep closes a client whose oldest queued message is older than the broadcast
      // timeout (4008). Cleanup also catches a socket that has taken no write for that long:
      // here the stuck client's queue is flushed halfway through the timeout, so only a fresh
      // resync is queued and the sweep leaves it alone, while its socket has made no progress
      // for longer than the timeout when cleanup runs.
      const tg = await gw.start({
        WEBSOCKET_BROADCAST_TIMEOUT: '3',
        WEBSOCKET_HISTORY_SIZE: '5000',
      });
      const healthy = await gw.authed();
      await healthy.subscribe('signals:other');
      const stuck = await gw.authed();
      await stuck.subscribe('signals');
      stuck.ws.pause();
      await publishUntilQueued(tg, clientId(stuck));
      const stalledAt = Date.now();
      // Real time is the subject: the socket's stall must outlast the 3 s timeout. Halfway:
      await sleep(1500);
      const flushed = await admin(tg, 'POST', '/websocket/queue/flush');
      expect(flushed.body).toMatchObject({ clients: 1 });
      // …and past the timeout since the stall began.
      await sleep(Math.max(0, stalledAt + 3200 - Date.now()));

      const res = await admin(tg, 'POST', '/websocket/cleanup');
      expect(res).toEqual({ status: 200, body: { removed: 1, servers: { 'test-1': 1 } } });
      stuck.ws.resume();
      const closed = await stuck.closed;
      expect(closed.code).toBe(4010);
      expect(closed.reason).toMatch(/queue not draining/);

      await eventually(() => tg.gateway.connections.size === 1, 'the stuck client to go');
      expect((await connections(tg)).map((c) => c.client_id)).toEqual([clientId(healthy)]);
      await publish(tg, { channel: 'signals:other', data: { alive: true } });
      expect(await healthy.type('event')).toMatchObject({ data: { alive: true } });
    });
  });

  describe('POST /websocket/queue/flush', () => {
    it('answers 0 flushed messages and 0 clients when nothing is queued', async () => {
      const tg = await gw.start();
      const c = await gw.authed();
      await c.subscribe('signals');
      const res = await admin(tg, 'POST', '/websocket/queue/flush');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ flushed_messages: 0, clients: 0 });
      await publish(tg, { channel: 'signals', data: { n: 1 } });
      expect(await c.type('event')).toMatchObject({ seq: 1 });
      expect(c.messages.some((m) => m.type === 'resync')).toBe(false);
    });

    it('empties a stuck queue, sends resync, and the client recovers every missed event with since', async () => {
      const tg = await gw.start({ WEBSOCKET_HISTORY_SIZE: '5000' });
      const bystander = await gw.authed();
      await bystander.subscribe('signals:other');
      const c = await gw.authed();
      const subscribed = await c.subscribe('signals');
      await c.subscribe('signals:quiet');
      const epoch = subscribed.epoch as string;
      c.ws.pause();
      let last = await publishUntilQueued(tg, clientId(c));
      const depth = await queueDepth(tg, clientId(c));
      expect(depth).toBeGreaterThan(0);

      const res = await admin(tg, 'POST', '/websocket/queue/flush');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ flushed_messages: depth, clients: 1 });
      const after = (await connections(tg)).find((i) => i.client_id === clientId(c));
      expect(after?.channels).toEqual([]);
      expect(after?.queue_depth).toBeLessThanOrEqual(1); // only the resync is left

      // Events published after the flush are missed too, and must be recovered as well.
      const more = await publish(tg, {
        events: [1, 2, 3].map(() => ({ channel: 'signals', data: { n: ++last } })),
      });
      expect(more.status).toBe(200);

      c.ws.resume();
      const resync = await c.type('resync', 10_000);
      expect((resync.channels as string[]).sort()).toEqual(['signals', 'signals:quiet']);
      const received = seqs(c.events('signals'));
      expect(received).toEqual(Array.from({ length: received.length }, (_, i) => i + 1));
      const seen = received.at(-1) ?? 0;
      expect(seen).toBeLessThan(last);

      const resumed = await c.subscribe('signals', { epoch, seq: seen });
      expect(resumed).toMatchObject({
        type: 'subscribed',
        recovered: true,
        replayed: last - seen,
        seq: last,
      });
      await eventually(() => c.events('signals').length === last, 'every event', {
        timeoutMs: 10_000,
      });
      expect(seqs(c.events('signals'))).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      expect(bystander.messages.some((m) => m.type === 'resync')).toBe(false);
    });
  });

  describe('POST /broadcast', () => {
    it('delivers a system message to every authenticated client and counts them', async () => {
      const tg = await gw.start();
      const a = await gw.authed();
      const b = await gw.authed();
      const unauthenticated = await gw.connect();
      const res = await admin(tg, 'POST', '/broadcast', {
        type: 'system',
        message: 'Please refresh your dashboard',
      });
      expect(res).toEqual({ status: 200, body: { delivered: 2, servers: 1 } });
      for (const c of [a, b]) {
        expect(await c.type('system')).toMatchObject({
          type: 'system',
          message: 'Please refresh your dashboard',
          ts: expect.any(Number) as number,
        });
      }
      expect(unauthenticated.messages.some((m) => m.type === 'system')).toBe(false);
    });

    const badBodies: { what: string; body: unknown }[] = [
      { what: 'no message', body: { type: 'system' } },
      { what: 'an empty message', body: { type: 'system', message: '   ' } },
      { what: 'a type other than system', body: { type: 'alert', message: 'hi' } },
      { what: 'a message over 1000 characters', body: { message: 'x'.repeat(1001) } },
      { what: 'a message that is not a string', body: { type: 'system', message: 42 } },
    ];
    for (const { what, body } of badBodies) {
      it(`answers a body with ${what} with 400 and broadcasts nothing`, async () => {
        const tg = await gw.start();
        const c = await gw.authed();
        const res = await admin(tg, 'POST', '/broadcast', body);
        expect(res.status).toBe(400);
        expect((res.body as ErrorBody).error.code).toBe('bad_request');
        const ok = await admin(tg, 'POST', '/broadcast', { type: 'system', message: 'second' });
        expect(ok.status).toBe(200);
        expect(await c.type('system')).toMatchObject({ message: 'second' });
        expect(c.messages.filter((m) => m.type === 'system')).toHaveLength(1);
      });
    }
  });

  describe('GET /websocket/stats', () => {
    it('reports per-minute rates, errors by type, disconnects by code and a 5-minute series', async () => {
      const tg = await gw.start();
      const a = await gw.authed();
      const b = await gw.authed();
      await a.subscribe('signals');
      await publish(tg, { channel: 'signals', data: { n: 1 } });
      await a.type('event');
      b.send('{not json');
      await b.type('error');
      b.ws.close(1000);
      await b.closed;
      await eventually(() => tg.gateway.connections.size === 1, 'the server to see the close');

      const res = await admin(tg, 'GET', '/websocket/stats?minutes=5');
      expect(res.status).toBe(200);
      const stats = res.body as StatsAnswer;
      expect(stats.connects_per_minute).toBe(0.4);
      expect(stats.disconnects_per_minute).toBe(0.2);
      expect(stats.errors_per_minute).toBe(0.2);
      // docs/errors.md (protocol) and the source (the catalogue code) disagree on the type.
      expect(Object.entries(stats.errors_by_type)).toEqual([
        [expect.stringMatching(/^(protocol|invalid_json)$/) as string, 1],
      ]);
      expect(stats.disconnects_by_code).toEqual({ '1000': 1 });
      expect(stats.messages_per_minute).toBeGreaterThan(0);

      expect(stats.series).toHaveLength(5);
      for (const point of stats.series) {
        expect(Object.keys(point).sort()).toEqual(['connections', 'errors', 'messages', 'minute']);
        expect(point.minute).toMatch(ISO);
      }
      const minutes = stats.series.map((p) => Date.parse(p.minute));
      for (let i = 1; i < minutes.length; i++)
        expect((minutes[i] ?? 0) - (minutes[i - 1] ?? 0)).toBe(60_000);
      expect(stats.series.reduce((n, p) => n + p.errors, 0)).toBe(1);
      const messages = stats.series.reduce((n, p) => n + p.messages, 0);
      // welcome ×2, subscribed, event, error
      expect(messages).toBe(5);
      expect(stats.messages_per_minute).toBe(1);
      expect(Math.max(...stats.series.map((p) => p.connections))).toBe(2);
    });

    it('defaults to 5 minutes and accepts up to 60', async () => {
      const tg = await gw.start();
      const byDefault = await admin(tg, 'GET', '/websocket/stats');
      expect((byDefault.body as StatsAnswer).series).toHaveLength(5);
      const hour = await admin(tg, 'GET', '/websocket/stats?minutes=60');
      expect(hour.status).toBe(200);
      expect((hour.body as StatsAnswer).series).toHaveLength(60);
    });

    for (const minutes of ['0', '61', 'abc', '2.5']) {
      it(`answers minutes=${minutes} with 400`, async () => {
        const tg = await gw.start();
        const res = await admin(tg, 'GET', `/websocket/stats?minutes=${minutes}`);
        expect(res.status).toBe(400);
        const error = (res.body as ErrorBody).error;
        expect(error.code).toBe('bad_request');
        expect(error.message).toMatch(/1 to 60/);
      });
    }
  });
});
