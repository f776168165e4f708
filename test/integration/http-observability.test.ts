/**
 * What the operator sees without asking the admin API: GET /metrics (the names RB-003's
 * alerts use, docs/metrics.md) and the JSON log lines (level, message, time, server; never a
 * token).
 */
import { ERROR_TYPES } from '../../src/protocol/index.js';
import { beforeEach, describe, expect, it } from 'vitest';
import { TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import {
  ADMIN_TOKEN,
  JWT_SECRET,
  PUBLISH_TOKEN,
  admin,
  publish,
  signToken,
} from '../support/gateway.js';
import { parseSamples, valueOf, type Sample } from '../support/metrics.js';

// One gateway per test, for both groups below.
const gw = useGateway();

beforeEach(async () => {
  await gw.start();
});

describe('GET /metrics', () => {
  async function scrape(): Promise<{ text: string; samples: Sample[] }> {
    const res = await fetch(`${gw.tg.http}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    return { text, samples: parseSamples(text) };
  }

  it('exposes every metric the runbook and docs/metrics.md name, and Node defaults', async () => {
    const { text } = await scrape();
    const types: Record<string, string> = {
      archon_websocket_connections_active: 'gauge',
      archon_websocket_connections_total: 'counter',
      archon_websocket_messages_sent_total: 'counter',
      archon_websocket_errors_total: 'counter',
      archon_websocket_broadcast_duration_seconds: 'histogram',
      archon_websocket_queue_depth: 'gauge',
      archon_websocket_disconnects_total: 'counter',
      archon_websocket_connections_rejected_total: 'counter',
      archon_websocket_recoveries_total: 'counter',
      archon_websocket_publish_total: 'counter',
      archon_websocket_backplane_errors_total: 'counter',
      nodejs_eventloop_lag_p99_seconds: 'gauge',
      process_resident_memory_bytes: 'gauge',
    };
    for (const [name, type] of Object.entries(types))
      expect(text, name).toContain(`# TYPE ${name} ${type}\n`);
  });

  it('labels every series with the server id', async () => {
    const c = await gw.authed();
    await c.subscribe('signals');
    await publish(gw.tg, { channel: 'signals', data: { n: 1 } });
    await c.type('event');
    const { samples } = await scrape();
    expect(samples.length).toBeGreaterThan(20);
    const unlabelled = samples.filter((s) => s.labels.server !== 'test-1');
    expect(unlabelled.map((s) => s.name)).toEqual([]);
  });

  it('reports the open connections and counts every accepted one', async () => {
    const a = await gw.authed();
    await gw.authed();
    let { samples } = await scrape();
    const ws = { transport: 'websocket' };
    const sse = { transport: 'sse' };
    expect(valueOf(samples, 'archon_websocket_connections_active', ws)).toBe(2);
    expect(valueOf(samples, 'archon_websocket_connections_total', ws)).toBe(2);
    // Every transport's series exists from the start (a dashboard shows 0, not "no data").
    expect(
      samples.some(
        (s) => s.name === 'archon_websocket_connections_active' && s.labels.transport === 'sse',
      ),
    ).toBe(true);
    expect(valueOf(samples, 'archon_websocket_connections_active', sse)).toBe(0);
    expect(valueOf(samples, 'archon_websocket_connections_total', sse)).toBe(0);
    a.ws.close(1000);
    await eventually(() => gw.tg.gateway.connections.size === 1, 'the server to see the close');
    ({ samples } = await scrape());
    expect(valueOf(samples, 'archon_websocket_connections_active', ws)).toBe(1);
    expect(valueOf(samples, 'archon_websocket_connections_total', ws)).toBe(2);
    expect(valueOf(samples, 'archon_websocket_disconnects_total', { code: '1000' })).toBe(1);
  });

  it('counts messages sent, publishes and broadcast durations after a publish', async () => {
    const a = await gw.authed();
    const b = await gw.authed();
    await a.subscribe('signals');
    await b.subscribe('signals');
    const before = (await scrape()).samples;
    await publish(gw.tg, {
      events: [1, 2, 3].map((n) => ({ channel: 'signals', data: { n } })),
    });
    await eventually(
      () => a.events('signals').length === 3 && b.events('signals').length === 3,
      'both clients to get three events',
    );
    const after = (await scrape()).samples;
    const sent = (s: Sample[]) =>
      valueOf(s, 'archon_websocket_messages_sent_total', { class: 'stream' });
    expect(sent(after) - sent(before)).toBe(6);
    expect(valueOf(after, 'archon_websocket_publish_total', { class: 'stream' })).toBe(3);
    expect(valueOf(after, 'archon_websocket_broadcast_duration_seconds_count')).toBe(3);
    expect(valueOf(after, 'archon_websocket_queue_depth')).toBe(0);
  });

  it('counts errors by type after a bad client message', async () => {
    const c = await gw.authed();
    c.send('this is not JSON');
    expect(await c.type('error')).toMatchObject({ code: 'invalid_json' });
    const { samples } = await scrape();
    const errors = samples.filter((s) => s.name === 'archon_websocket_errors_total');
    expect(errors.filter((s) => s.value > 0).map((s) => [s.labels.type, s.value])).toEqual([
      ['invalid_json', 1],
    ]);
    // Every type exists from the start, so a dashboard shows 0 rather than "no data".
    expect(errors.map((s) => s.labels.type).sort()).toEqual([...ERROR_TYPES].sort());
  });

  it('counts refused upgrades by reason and resumed subscriptions by result', async () => {
    const refused = new TestClient(`${gw.tg.ws}/api/v1/unknown`);
    await expect(refused.opened).rejects.toThrow('HTTP 404');
    const c = await gw.authed();
    const first = await c.subscribe('signals');
    await publish(gw.tg, { channel: 'signals', data: { n: 1 } });
    await c.type('event');
    await c.subscribe('signals', { epoch: first.epoch as string, seq: 0 });
    await c.subscribe('signals', { epoch: 'gone-epoch', seq: 0 });
    const { samples } = await scrape();
    expect(
      valueOf(samples, 'archon_websocket_connections_rejected_total', { reason: 'not_found' }),
    ).toBe(1);
    expect(valueOf(samples, 'archon_websocket_recoveries_total', { result: 'recovered' })).toBe(1);
    expect(valueOf(samples, 'archon_websocket_recoveries_total', { result: 'not_recovered' })).toBe(
      1,
    );
    expect(valueOf(samples, 'archon_websocket_backplane_errors_total')).toBe(0);
  });
});

describe('logs', () => {
  /** Drives the gateway through what makes it log: auth, errors, operator actions. */
  async function exercise(secrets: string[]): Promise<void> {
    const jwt = await signToken({ sub: 'trader-logs' });
    const expired = await signToken({ exp: Math.floor(Date.now() / 1000) - 60 });
    const forged = await signToken({}, 'forged-secret-0123456789abcdef0123456789');
    secrets.push(jwt, expired, forged, 'pub_wrong_secret_1', 'adm_wrong_secret_1');

    const good = await gw.authed(jwt, { client: 'archon-dashboard/1.4.2' });
    await good.subscribe('signals');
    for (const token of [expired, forged, 'garbage-token-value-123']) {
      const bad = await gw.connect();
      bad.send({ op: 'hello', token, client: 'test/1.0' });
      expect((await bad.closed).code).toBe(4001);
    }
    secrets.push('garbage-token-value-123');
    good.send({ op: 'hello', token: jwt });
    await good.type('error');
    expect((await publish(gw.tg, { channel: 'signals', data: {} })).status).toBe(200);
    expect(
      (await publish(gw.tg, { channel: 'signals', data: {} }, 'pub_wrong_secret_1')).status,
    ).toBe(401);
    expect((await admin(gw.tg, 'GET', '/websocket/status')).status).toBe(200);
    expect((await admin(gw.tg, 'POST', '/websocket/cleanup')).status).toBe(200);
    expect(
      (await admin(gw.tg, 'GET', '/websocket/status', undefined, 'adm_wrong_secret_1')).status,
    ).toBe(401);
    const history = await fetch(`${gw.tg.http}/api/v1/history?channel=signals`, {
      headers: { authorization: `Bearer ${jwt}` },
    });
    expect(history.status).toBe(200);
  }

  it('writes one JSON object per line with uppercase level, message, ISO time and server', async () => {
    await exercise([]);
    const lines = gw.tg
      .logText()
      .split('\n')
      .filter((l) => l.length > 0);
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      expect(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL']).toContain(entry.level);
      expect(entry.message).toEqual(expect.any(String));
      expect(entry.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      expect(entry.server).toBe('test-1');
    }
    const failed = gw.tg.logs.filter((l) => l.message === 'Authentication failed');
    expect(failed).toHaveLength(3);
    for (const entry of failed) expect(entry.client_id).toMatch(/^c_/);
  });

  it('never writes an admin token, a publish token, a JWT or the JWT secret', async () => {
    const secrets = [ADMIN_TOKEN, PUBLISH_TOKEN, JWT_SECRET];
    await exercise(secrets);
    const text = gw.tg.logText();
    expect(text.length).toBeGreaterThan(0);
    for (const secret of secrets) expect(text.includes(secret), secret).toBe(false);
  });
});
