/**
 * Scale-out as a whole (docs/cluster.md#redis-cluster, docs/cluster.md#workers-every-core-of-a-node): a local Redis
 * Cluster of six servers (three primaries, a replica each) behind two nodes of two workers
 * each (`archon-ws serve --workers 2`, real processes). Under a steady publish, a worker is
 * killed and then a Redis primary; the loss checker (test/support/loss.ts) finds every
 * acknowledged event delivered once and in order, or its loss announced to every client as a
 * gap (the failed primary's channels start a new epoch), and nothing silently lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keySlot } from '../../src/server/backplane/redis-slot.js';
import { eventually } from '../support/eventually.js';
import { signToken } from '../support/gateway.js';
import { formatReport, Publisher, settle } from '../support/loss.js';
import {
  ensureBuilt,
  killAll,
  sleep,
  startInstance,
  stopInstance,
  type Instance,
} from '../support/processes.js';
import {
  startRedisCluster,
  type ClusterNodeInfo,
  type TestRedisCluster,
} from '../support/redis-cluster.js';
import { ResumingClient } from '../support/resuming-client.js';

let rc: TestRedisCluster | undefined;
const nodes: Instance[] = [];
const clients: ResumingClient[] = [];
let pub: Publisher | undefined;

beforeAll(async () => {
  ensureBuilt();
  rc = await startRedisCluster({ maxSeconds: 300 });
}, 120_000);

afterAll(async () => {
  for (const c of clients.splice(0)) c.stop();
  await pub?.stop();
  await Promise.all(nodes.splice(0).map((n) => stopInstance(n)));
  killAll();
  await rc?.stop();
}, 60_000);

function ownerOf(primaries: readonly ClusterNodeInfo[], channel: string): number {
  const slot = keySlot(channel);
  const owner = primaries.find((p) => p.slots.some(([a, b]) => slot >= a && slot <= b));
  if (!owner) throw new Error(`no primary serves ${channel}`);
  return owner.port;
}

async function startNode(id: string): Promise<Instance> {
  if (!rc) throw new Error('the Redis Cluster did not start');
  const node = await startInstance(id, {
    args: ['--workers', '2'],
    env: {
      ARCHON_REDIS_URL: rc.url,
      WEBSOCKET_PING_INTERVAL: '2',
      WEBSOCKET_HISTORY_SIZE: '20000',
      LOG_LEVEL: 'info',
    },
  });
  nodes.push(node);
  await eventually(
    () => node.logs().includes('"message":"All workers listening"'),
    `${id}: both workers listening`,
    { timeoutMs: 20_000 },
  );
  return node;
}

/** The pids the primary of a node started for a worker slot, in order. */
function pidsOf(node: Instance, worker: string): number[] {
  return node
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { message?: string; worker?: string; pid?: number })
    .filter((l) => l.message === 'Worker started' && l.worker === worker)
    .map((l) => l.pid ?? 0);
}

describe('scale-out: two nodes of two workers on a Redis Cluster', () => {
  it('loses nothing silently through a worker kill and a Redis primary failover', async () => {
    if (!rc) throw new Error('the Redis Cluster did not start');
    const accounts = ['ACC1', 'ACC2', 'ACC3', 'ACC4', 'ACC5', 'ACC6'];
    const candidates = ['signals', ...accounts.flatMap((a) => [`risk:${a}`, `signals:${a}`])];
    const primaries = await rc.primaries();
    const victim = ownerOf(primaries, 'risk:ACC1');
    const onVictim = candidates.filter((c) => ownerOf(primaries, c) === victim).slice(0, 2);
    const elsewhere = candidates.filter((c) => ownerOf(primaries, c) !== victim).slice(0, 2);
    expect(onVictim).toHaveLength(2);
    expect(elsewhere).toHaveLength(2);
    const channels = [...onVictim, ...elsewhere];

    const a = await startNode('node-a');
    const b = await startNode('node-b');
    const token = await signToken({ sub: 'trader-1', accounts });
    for (let i = 0; i < 8; i++) {
      const c = new ResumingClient({
        url: `ws://127.0.0.1:${a.port}`,
        reconnectUrl: `ws://127.0.0.1:${(i % 2 === 0 ? a : b).port}`,
        token,
        channels,
        name: `c${i}`,
      });
      clients.push(c);
      await c.start(20_000);
    }
    expect(new Set(clients.map((c) => c.server))).toEqual(new Set(['node-a:w1', 'node-a:w2']));

    pub = new Publisher({ url: b.http, channels, rate: 20, idPrefix: 'scale-out' });
    pub.start();
    const publisher = pub;
    await eventually(() => publisher.accepted.length >= 40, 'traffic before the worker kill', {
      timeoutMs: 20_000,
    });
    const before = new Map(
      channels.map((ch) => [ch, publisher.accepted.find((x) => x.channel === ch)?.epoch]),
    );

    // A worker of node-a dies: its clients resume elsewhere, the primary restarts it.
    const [worker] = pidsOf(a, 'w1');
    if (worker === undefined) throw new Error('no pid logged for node-a w1');
    process.kill(worker, 'SIGKILL');
    await sleep(1500); // traffic through the worker's fail-over: the scenario, not a wait

    // Then a Redis primary: its channels go through a failover while events flow.
    const promoted = await rc.killPrimary(victim);
    const atPromotion = publisher.accepted.length;
    await eventually(
      () =>
        onVictim.every(
          (ch) =>
            publisher.accepted.filter((x, i) => i >= atPromotion && x.channel === ch).length >= 10,
        ),
      'traffic after the failover',
      { timeoutMs: 30_000 },
    );
    await publisher.stop();

    const gapsExcuse = (channel: string, epoch: string) =>
      onVictim.includes(channel) && before.get(channel) === epoch;
    const report = await settle(clients, publisher, channels, 30_000, { gapsExcuse });
    console.log(formatReport(`worker kill + failover of ${victim} to ${promoted.port}`, report));
    const detail = report.problems.slice(0, 10).join('\n');
    expect(publisher.failures).toEqual([]);
    expect(report.total.lost, detail).toBe(0);
    expect(report.total.dup, detail).toBe(0);
    expect(report.total.ooo, detail).toBe(0);
    expect(report.total.anomalies, detail).toBe(0);
    expect(report.total.skips, detail).toBe(0);
    // Channels on the surviving primaries went through both without a gap.
    for (const ch of elsewhere)
      for (const c of clients) expect(c.log(ch).gaps, `${c.name} ${ch}`).toEqual([]);
    // The killed worker was replaced.
    await eventually(() => pidsOf(a, 'w1').length >= 2, 'node-a w1 restarted', {
      timeoutMs: 20_000,
    });
  }, 180_000);
});
