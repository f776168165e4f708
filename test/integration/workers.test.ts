/**
 * `archon-ws serve --workers 2` as deployed (docs/cluster.md#workers-every-core-of-a-node): real processes on a
 * Redis of the test's own. The workers of a node share its port and both take clients; a
 * worker killed with SIGKILL is restarted and its clients resume on the other worker; SIGTERM
 * to the primary drains the workers one at a time and exits 0, its clients resuming on another
 * node; /metrics answers once for the node; without Redis the node refuses to start. Loss is
 * counted with the loss checker (test/support/loss.ts).
 */
import { spawn } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { ADMIN_TOKEN, JWT_SECRET, signToken } from '../support/gateway.js';
import { formatReport, Publisher, settle, type LossReport } from '../support/loss.js';
import {
  CLI,
  ensureBuilt,
  exited,
  killAll,
  NODE,
  ROOT,
  sleep,
  startInstance,
  stopInstance,
  type Instance,
} from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { ResumingClient } from '../support/resuming-client.js';

const CHANNELS: readonly string[] = ['signals', 'risk:ACC1'];

let redis: TestRedis | undefined;
let token = '';
const nodes: Instance[] = [];
const clients: ResumingClient[] = [];
const publishers: Publisher[] = [];

beforeAll(async () => {
  ensureBuilt();
  redis = await startRedis();
  token = await signToken({ sub: 'trader-1', accounts: ['ACC1'] });
}, 180_000);

afterEach(async () => {
  for (const c of clients.splice(0)) c.stop();
  await Promise.all(publishers.splice(0).map((p) => p.stop()));
  await Promise.all(nodes.splice(0).map((n) => stopInstance(n)));
  await redis?.restart();
}, 30_000);

afterAll(async () => {
  killAll();
  await redis?.stop();
}, 30_000);

/** A node of two workers on the test's Redis, logging at info (the primary's worker pids). */
async function startNode(id: string): Promise<Instance> {
  if (!redis) throw new Error('redis did not start');
  const node = await startInstance(id, {
    args: ['--workers', '2'],
    env: {
      ARCHON_REDIS_URL: redis.url,
      WEBSOCKET_PING_INTERVAL: '2',
      WEBSOCKET_HISTORY_SIZE: '20000',
      LOG_LEVEL: 'info',
    },
  });
  nodes.push(node);
  // /api/health answers once one worker listens; round-robin spreads over listening ones.
  await eventually(
    () => logLines(node).some((l) => l.server === id && l.message === 'All workers listening'),
    `${id}: both workers listening`,
    { timeoutMs: 15_000 },
  );
  return node;
}

async function startClients(n: number, url: string, reconnectUrl = url): Promise<ResumingClient[]> {
  const created = Array.from(
    { length: n },
    (_, i) => new ResumingClient({ url, reconnectUrl, token, channels: CHANNELS, name: `c${i}` }),
  );
  clients.push(...created);
  await Promise.all(created.map((c) => c.start(20_000)));
  return created;
}

function publisher(url: string, idPrefix: string): Publisher {
  const p = new Publisher({ url, channels: CHANNELS, rate: 100, idPrefix });
  publishers.push(p);
  return p;
}

interface LogLine {
  message?: string;
  server?: string;
  worker?: string;
  pid?: number;
  signal?: string | null;
}

function logLines(node: Instance): LogLine[] {
  return node
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

/** The pids the primary started for a worker slot, in order. */
function pidsOf(node: Instance, worker: string): number[] {
  return logLines(node)
    .filter((l) => l.message === 'Worker started' && l.worker === worker)
    .map((l) => l.pid ?? 0);
}

async function connectionServers(node: Instance): Promise<string[]> {
  const res = await fetch(`${node.http}/api/v1/admin/websocket/connections`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (res.status !== 200) throw new Error(`connections: HTTP ${res.status}`);
  return ((await res.json()) as { server: string }[]).map((c) => c.server);
}

function expectNoLoss(report: LossReport, what: string): void {
  const detail = `${what}\n${report.problems.slice(0, 10).join('\n')}`;
  expect(report.total.lost, detail).toBe(0);
  expect(report.total.dup, detail).toBe(0);
  expect(report.total.ooo, detail).toBe(0);
  expect(report.total.anomalies, detail).toBe(0);
  expect(report.total.gaps, detail).toBe(0);
}

describe('archon-ws serve --workers 2', () => {
  it('spreads clients over both workers of a node: the connections list names :w1 and :w2', async () => {
    const node = await startNode('node-a');
    const cs = await startClients(10, `ws://127.0.0.1:${node.port}`);
    expect(new Set(cs.map((c) => c.server))).toEqual(new Set(['node-a:w1', 'node-a:w2']));
    const servers = await connectionServers(node);
    expect(servers).toHaveLength(10);
    expect(new Set(servers)).toEqual(new Set(['node-a:w1', 'node-a:w2']));
  }, 60_000);

  it("answers /metrics once for the node with both workers' series, server being the node", async () => {
    const node = await startNode('node-a');
    await startClients(4, `ws://127.0.0.1:${node.port}`);
    const res = await fetch(`${node.http}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const worker of ['w1', 'w2']) {
      expect(text).toContain(`archon_websocket_worker_up{server="node-a",worker="${worker}"} 1`);
      expect(text).toMatch(
        new RegExp(
          `archon_websocket_connections_active\\{transport="websocket",server="node-a",worker="${worker}"\\} \\d+`,
        ),
      );
    }
    // Each series once: the scrape is the node's, not one worker's twice.
    const active = text
      .split('\n')
      .filter((l) => l.startsWith('archon_websocket_connections_active{transport="websocket"'));
    expect(active).toHaveLength(2);
    const sum = active.reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
    expect(sum).toBe(4);
  }, 60_000);

  it('restarts a worker killed with SIGKILL; its clients resume on the other worker with since, losing nothing', async () => {
    const node = await startNode('node-a');
    const cs = await startClients(10, `ws://127.0.0.1:${node.port}`);
    const onW1 = cs.filter((c) => c.server === 'node-a:w1');
    expect(onW1.length).toBeGreaterThan(0);
    const [victim] = pidsOf(node, 'w1');
    if (victim === undefined) throw new Error('no pid logged for w1');

    const pub = publisher(node.http, 'kill-worker');
    pub.start();
    await sleep(1000); // traffic before the crash: the scenario's load, not a wait
    process.kill(victim, 'SIGKILL');
    await sleep(2500); // traffic on through the fail-over
    await pub.stop();

    const report = await settle(cs, pub, CHANNELS);
    console.log(formatReport('worker kill -9', report));
    expect(pub.failures).toEqual([]);
    for (const c of onW1) expect(c.closes, c.name).toContain(1006);
    expectNoLoss(report, 'worker kill -9');

    const exit = logLines(node).find((l) => l.message === 'Worker exited: restarting it');
    expect(exit).toMatchObject({ worker: 'w1', pid: victim, signal: 'SIGKILL' });
    await eventually(
      async () => {
        const [, replacement] = pidsOf(node, 'w1');
        if (replacement === undefined) return false;
        const text = await (await fetch(`${node.http}/metrics`)).text();
        return text.includes('archon_websocket_worker_up{server="node-a",worker="w1"} 1');
      },
      'a new w1 started and answering',
      { timeoutMs: 15_000 },
    );
  }, 60_000);

  it('SIGTERM to the primary drains its workers one at a time and exits 0; their clients resume on the other node, losing nothing', async () => {
    const [a, b] = await Promise.all([startNode('node-a'), startNode('node-b')]);
    if (!a || !b) throw new Error('nodes did not start');
    const cs = await startClients(10, `ws://127.0.0.1:${a.port}`, `ws://127.0.0.1:${b.port}`);
    expect(new Set(cs.map((c) => c.server))).toEqual(new Set(['node-a:w1', 'node-a:w2']));

    const pub = publisher(b.http, 'drain');
    pub.start();
    await sleep(1000); // traffic before the drain: the scenario's load, not a wait
    a.child.kill('SIGTERM');
    expect(await exited(a.child)).toEqual({ code: 0, signal: null });
    await sleep(1000); // traffic after the drain
    await pub.stop();

    const report = await settle(cs, pub, CHANNELS);
    console.log(formatReport('node drain', report));
    expect(pub.failures).toEqual([]);
    expectNoLoss(report, 'node drain');
    for (const c of cs) {
      expect(c.closes, c.name).toContain(1012);
      expect(c.server, c.name).toMatch(/^node-b:w[12]$/);
    }
    // One at a time: w2 was told to drain only after w1 had exited.
    const steps = logLines(a)
      .filter((l) => l.server === 'node-a' && /^(Draining|Worker drained)/.test(l.message ?? ''))
      .map((l) => `${l.message} ${l.worker}`);
    expect(steps).toEqual([
      'Draining worker w1',
      'Worker drained w1',
      'Draining worker w2',
      'Worker drained w2',
    ]);
  }, 60_000);

  it('refuses --workers 2 without ARCHON_REDIS_URL: exits 2 naming both variables', async () => {
    const child = spawn(NODE, [CLI, 'serve', '--workers', '2', '--port', '0'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ARCHON_JWT_SECRET: JWT_SECRET },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    expect(await exited(child)).toEqual({ code: 2, signal: null });
    expect(stderr).toContain('ARCHON_WORKERS=2 needs ARCHON_REDIS_URL');
  }, 30_000);
});
