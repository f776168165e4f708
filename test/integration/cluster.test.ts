/**
 * Cluster mode (docs/cluster.md) with in-process gateways on a Redis of the test's own: any
 * instance accepts a publish, every subscriber anywhere gets it, a client resumes on any
 * instance, and the admin API answers for every instance.
 */
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { ConnectionEntry, StatsAnswer, StatusAnswer } from '../../src/protocol/index.js';
import { TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { admin, expectExactly, publish, type TestGateway } from '../support/gateway.js';
import { HealthAnswerSchema } from '../../src/protocol/probes.js';
import { useCluster } from '../support/cluster.js';

describe('cluster mode', () => {
  const cluster = useCluster();
  const instance = cluster.instance;
  const client = (g: TestGateway, accounts = ['ACC1']): Promise<TestClient> =>
    cluster.client(g, { accounts });

  it('delivers an event published on one instance to subscribers on every instance', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const onA = await client(a);
    const onB = await client(b);
    await onA.subscribe('signals');
    await onB.subscribe('signals');
    const res = await publish(a, { channel: 'signals', data: { n: 1 } });
    expect(res.status).toBe(200);
    for (const c of [onA, onB]) {
      expect(await c.type('event')).toMatchObject({ channel: 'signals', seq: 1, data: { n: 1 } });
    }
  });

  it('numbers events from all instances in one gapless order per channel', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const c = await client(b);
    await c.subscribe('signals');
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        publish(i % 2 ? a : b, { channel: 'signals', data: { i } }),
      ),
    );
    await eventually(() => c.events('signals').length === 20, '20 events');
    expect(c.events('signals').map((m) => m.seq)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
  });

  it('lets a client resume on another instance with since and replays exactly what it missed', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const first = await client(a);
    const sub = await first.subscribe('risk:ACC1');
    await publish(a, { channel: 'risk:ACC1', data: { n: 1 } });
    const seen = await first.type('event');
    first.ws.terminate();
    for (let n = 2; n <= 4; n++) await publish(b, { channel: 'risk:ACC1', data: { n } });

    const second = await client(b);
    const resumed = await second.subscribe('risk:ACC1', {
      epoch: sub.epoch as string,
      seq: seen.seq as number,
    });
    expect(resumed).toMatchObject({ recovered: true, replayed: 3, epoch: sub.epoch });
    await eventually(() => second.events('risk:ACC1').length === 3, 'the replay');
    expect(second.events('risk:ACC1').map((m) => (m.data as { n: number }).n)).toEqual([2, 3, 4]);
  });

  it('serves a state snapshot on any instance', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    await publish(a, { channel: 'positions:ACC1', key: 'EURUSD', data: { size: 1 } });
    await publish(a, { channel: 'positions:ACC1', key: 'GBPUSD', data: { size: 2 } });
    await publish(a, { channel: 'positions:ACC1', key: 'GBPUSD', data: null });
    const c = await client(b);
    await c.subscribe('positions:ACC1');
    expect(await c.type('snapshot')).toMatchObject({
      seq: 3,
      entries: [{ key: 'EURUSD', data: { size: 1 } }],
    });
  });

  it('answers status, connections and stats for every instance', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    await client(a);
    await client(b);
    await client(b);
    const status = (await admin(a, 'GET', '/websocket/status')).body as StatusAnswer & {
      missing_instances: string[];
    };
    expect(status).toMatchObject({ mode: 'cluster', active_connections: 3, missing_instances: [] });
    expect(status.instances.map((i) => [i.server, i.active_connections, i.healthy])).toEqual([
      ['api-1', 1, true],
      ['api-2', 2, true],
    ]);
    const list = (await admin(b, 'GET', '/websocket/connections')).body as ConnectionEntry[];
    expect(list.map((c) => c.server).sort()).toEqual(['api-1', 'api-2', 'api-2']);
    const stats = (await admin(a, 'GET', '/websocket/stats?minutes=5')).body as StatsAnswer;
    expect(stats.connects_per_minute * 5).toBe(3);
  });

  it('broadcasts a system notice to the clients of every instance', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const onA = await client(a);
    const onB = await client(b);
    const res = await admin(b, 'POST', '/broadcast', {
      type: 'system',
      message: 'Please refresh your dashboard',
    });
    expect(res.body).toMatchObject({ delivered: 2, servers: 2 });
    for (const c of [onA, onB]) {
      expect(await c.type('system')).toMatchObject({ message: 'Please refresh your dashboard' });
    }
  });

  it('runs cleanup and queue flush on every instance', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    await client(a);
    await client(b);
    expect((await admin(a, 'POST', '/websocket/cleanup')).body).toMatchObject({
      removed: 0,
      servers: { 'api-1': 0, 'api-2': 0 },
    });
    expect((await admin(b, 'POST', '/websocket/queue/flush')).body).toMatchObject({
      flushed_messages: 0,
      clients: 0,
      servers: { 'api-1': 0, 'api-2': 0 },
    });
  });

  it('names a registered instance that did not answer in time instead of leaving it out', async () => {
    const a = await instance('api-1');
    // An instance that registered (heartbeat still fresh) but no longer answers: frozen.
    const redisClient = new Redis(cluster.redis().url);
    await redisClient.zadd('archon:instances', Date.now(), 'api-9');
    redisClient.disconnect();
    const status = (await admin(a, 'GET', '/websocket/status')).body as StatusAnswer & {
      missing_instances: string[];
    };
    expect(status.missing_instances).toEqual(['api-9']);
    expect(status.instances.map((i) => [i.server, i.healthy])).toEqual([
      ['api-1', true],
      ['api-9', false],
    ]);
    const cleanup = (await admin(a, 'POST', '/websocket/cleanup')).body as { missing: string[] };
    expect(cleanup.missing).toEqual(['api-9']);
  });

  it('refuses to publish with 503 and Retry-After while Redis is down, and recovers after', async () => {
    const a = await instance('api-1');
    await cluster.redis().stop();
    await eventually(() => !a.gateway.backplane.healthy(), 'the backplane to notice');
    const down = await publish(a, { channel: 'signals', data: {} });
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    const health: unknown = await fetch(`${a.http}/api/health`).then((r) => r.json());
    expectExactly('/api/health', HealthAnswerSchema, health);
    expect(health).toMatchObject({
      status: 'degraded',
      backplane: 'down',
    });
    await cluster.redis().restart();
    await eventually(() => a.gateway.backplane.healthy(), 'the backplane to come back', {
      timeoutMs: 10_000,
    });
    expect((await publish(a, { channel: 'signals', data: {} })).status).toBe(200);
  });
});
