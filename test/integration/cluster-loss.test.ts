/**
 * Zero loss in failure scenarios (docs/protocol.md, docs/cluster.md) with real processes: a
 * Redis of the test's own, `archon-ws serve` instances api-1/api-2 in cluster mode, and real
 * nginx running deploy/nginx/archon-ws.conf in front of them. Publishers record every accepted
 * (channel, epoch, seq); resuming clients (test/support/resuming-client.ts) record every
 * receipt; the loss checker (test/support/loss.ts) counts per subscriber and channel what was
 * lost, duplicated or out of order, and which gaps the client was explicitly told of.
 *
 * Stream (`signals`) and alert (`risk:ACC1`) channels must read lost=0, dup=0, ooo=0 after:
 * kill -9 of an instance, a rolling restart, a Redis restart without persistence (where
 * events from before the restart may instead be reported as an explicit gap), a slow
 * consumer closed with 4008, an operator queue flush, and a reconnect storm of 2,000 clients.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import { ADMIN_TOKEN, signToken } from '../support/gateway.js';
import { formatReport, Publisher, settle, type LossReport } from '../support/loss.js';
import {
  crash,
  ensureBuilt,
  killAll,
  sleep,
  startInstance,
  startNginx,
  stopInstance,
  stopNginx,
  type Instance,
  type Nginx,
} from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { ResumingClient } from '../support/resuming-client.js';

const CHANNELS: readonly string[] = ['signals', 'risk:ACC1'];

let redis: TestRedis | undefined;
let token = '';
const clients: ResumingClient[] = [];
const publishers: Publisher[] = [];

interface Cluster {
  instances: Instance[];
  nginx: Nginx;
}
let cluster: Cluster | undefined;
/** Instances replaced during a test (rolling restart), for the log summary. */
const retired: Instance[] = [];

beforeAll(async () => {
  ensureBuilt();
  redis = await startRedis();
  token = await signToken({ sub: 'trader-1', accounts: ['ACC1'] });
}, 180_000);

afterAll(async () => {
  await cleanup();
  killAll();
  await redis?.stop();
}, 30_000);

// Each scenario starts from an empty Redis: no stream, and no risk alert left waiting for an
// acknowledgement by the scenarios before it (fresh subscriptions receive those in full).
afterEach(async () => {
  await cleanup();
  await redis?.restart();
}, 30_000);

async function cleanup(): Promise<void> {
  for (const c of clients.splice(0)) c.stop();
  await Promise.all(publishers.splice(0).map((p) => p.stop()));
  if (cluster) {
    await stopNginx(cluster.nginx);
    await Promise.all(cluster.instances.map((i) => stopInstance(i)));
    cluster = undefined;
  }
  retired.length = 0;
}

function redisUrl(): string {
  if (!redis) throw new Error('redis did not start');
  return redis.url;
}

/**
 * Environment of every instance: cluster mode on the test's Redis, a ping every 2 s (the
 * clients answer them throughout), and a stream history long enough that every resume in
 * these scenarios lies within it, so each must answer recovered:true (the Redis restart
 * aside).
 */
function instanceEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    ARCHON_REDIS_URL: redisUrl(),
    WEBSOCKET_PING_INTERVAL: '2',
    WEBSOCKET_HISTORY_SIZE: '20000',
    ...extra,
  };
}

async function startCluster(
  env: Record<string, string> = {},
  workerConnections?: number,
): Promise<Cluster> {
  const instances = await Promise.all(
    ['api-1', 'api-2'].map((id) => startInstance(id, { env: instanceEnv(env) })),
  );
  const nginx = await startNginx(
    instances.map((i) => i.port),
    workerConnections === undefined ? {} : { workerConnections },
  );
  cluster = { instances, nginx };
  return cluster;
}

function instanceOf(c: Cluster, server: string | null): Instance {
  const found = c.instances.find((i) => i.id === server);
  if (!found) throw new Error(`no instance ${server}`);
  return found;
}

async function startClients(
  n: number,
  url: string,
  options: {
    reconnectUrl?: string;
    httpUrl?: string;
    prefix?: string;
    batch?: number;
    backoffMs?: [number, number];
  } = {},
): Promise<ResumingClient[]> {
  const created: ResumingClient[] = [];
  const batch = options.batch ?? n;
  for (let i = 0; i < n; i += batch) {
    const group = Array.from(
      { length: Math.min(batch, n - i) },
      (_, j) =>
        new ResumingClient({
          url,
          ...(options.reconnectUrl !== undefined && { reconnectUrl: options.reconnectUrl }),
          ...(options.httpUrl !== undefined && { httpUrl: options.httpUrl }),
          ...(options.backoffMs !== undefined && { backoffMs: options.backoffMs }),
          token,
          channels: CHANNELS,
          name: `${options.prefix ?? 'c'}${i + j}`,
        }),
    );
    clients.push(...group);
    created.push(...group);
    await Promise.all(group.map((c) => c.start(20_000)));
  }
  return created;
}

/**
 * Publishes at `rate` batches a second until stopped. The fixed sleeps of the scenarios
 * below are periods of this traffic (how much is published before, during and after a
 * fault), not waits for something: settle() then waits for the clients to catch up.
 */
function publisher(url: string, idPrefix: string, rate: number, padBytes = 0): Publisher {
  const p = new Publisher({ url, channels: CHANNELS, rate, idPrefix, padBytes });
  publishers.push(p);
  return p;
}

/** Resumes answered recovered:false (each must have been reported as a gap or filled). */
function notRecovered(cs: readonly ResumingClient[]): number {
  let n = 0;
  for (const c of cs)
    for (const log of c.logs.values())
      n += log.answers.filter((a) => a.since !== null && !a.recovered).length;
  return n;
}

/** The zero-loss assertion, with every problem named when it fails. */
function expectNoLoss(report: LossReport, what: string): void {
  const detail = `${what}\n${report.problems.slice(0, 10).join('\n')}`;
  expect(report.total.lost, detail).toBe(0);
  expect(report.total.dup, detail).toBe(0);
  expect(report.total.ooo, detail).toBe(0);
  expect(report.total.anomalies, detail).toBe(0);
}

/** What the instances logged at WARN and above, and nginx's error log, counted by message:
 * printed with each scenario's result to explain it. */
function clusterSummary(c: Cluster, pub: Publisher): string {
  const counts = new Map<string, number>();
  const add = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const i of c.instances.concat(retired))
    for (const line of i.logs().split('\n')) {
      if (!line.startsWith('{')) continue;
      const entry = JSON.parse(line) as { level?: string; message?: string };
      if (entry.level === 'WARN' || entry.level === 'ERROR')
        add(`${i.id} ${entry.level} ${entry.message ?? ''}`);
    }
  for (const line of c.nginx.errorLog().split('\n')) {
    const what = /\[(?:error|warn)\] [\d#]+: (?:\*\d+ )?([^,]*)/.exec(line)?.[1];
    if (what) add(`nginx ${what.slice(0, 70)}`);
  }
  const logs = [...counts].map(([k, n]) => `${k} ×${n}`).join('; ');
  return (
    `  publisher: ${pub.accepted.length} accepted, ${pub.duplicates} idempotent replays, ` +
    `retries ${JSON.stringify(Object.fromEntries(pub.retries))}, failures ${pub.failures.length}\n` +
    `  logs: ${logs || 'nothing at WARN or above'}`
  );
}

interface ConnectionRow {
  client_id: string;
  server: string;
  queue_depth: number;
  channels: string[];
  state?: string;
}

async function connections(base: string): Promise<ConnectionRow[]> {
  const res = await fetch(`${base}/api/v1/admin/websocket/connections`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  if (res.status !== 200) throw new Error(`connections: HTTP ${res.status}`);
  return (await res.json()) as ConnectionRow[];
}

describe('zero loss through nginx in front of two instances on one Redis', () => {
  it('kill -9 of the instance a client is on, mid-stream: its clients resume on the other one', async () => {
    const c = await startCluster();
    const cs = await startClients(6, c.nginx.ws);
    expect(new Set(cs.map((x) => x.server)).size, 'clients spread over both instances').toBe(2);
    const victim = instanceOf(c, cs[0]?.server ?? null);
    const survivor = c.instances.find((i) => i !== victim) as Instance;
    const onVictim = cs.filter((x) => x.server === victim.id);

    const pub = publisher(c.nginx.url, 'kill9', 100);
    pub.start();
    await sleep(1000); // traffic before the crash: the scenario's load, not a wait
    await crash(victim);
    await sleep(2500); // traffic on through the fail-over
    await pub.stop();

    const report = await settle(cs, pub, CHANNELS);
    console.log(formatReport('kill -9', report));
    console.log(clusterSummary(c, pub));
    expect(pub.failures).toEqual([]);
    for (const x of onVictim) {
      expect(x.closes, x.name).toContain(1006);
      expect(x.server, x.name).toBe(survivor.id);
    }
    expectNoLoss(report, 'kill -9');
    expect(report.total.gaps).toBe(0);
    expect(notRecovered(cs)).toBe(0);
  }, 40_000);

  it('rolling restart: SIGTERM each instance in turn, a replacement on the same port, publishing all along', async () => {
    const c = await startCluster();
    const cs = await startClients(6, c.nginx.ws);
    const pub = publisher(c.nginx.url, 'rolling', 100);
    pub.start();
    await sleep(1000); // traffic before the first restart: the scenario's load, not a wait
    for (let i = 0; i < c.instances.length; i++) {
      const old = c.instances[i] as Instance;
      old.child.kill('SIGTERM');
      expect(await old.exited, `${old.id} drains and exits 0`).toEqual({ code: 0, signal: null });
      retired.push(old);
      c.instances[i] = await startInstance(old.id, { port: old.port, env: instanceEnv() });
      await sleep(1500); // the pause between instances of a rolling deploy, publishing on
    }
    await sleep(1000); // traffic after the last restart
    await pub.stop();

    const report = await settle(cs, pub, CHANNELS);
    console.log(formatReport('rolling restart', report));
    console.log(clusterSummary(c, pub));
    expect(pub.failures).toEqual([]);
    expect(cs.every((x) => x.closes.includes(1012))).toBe(true);
    expectNoLoss(report, 'rolling restart');
    expect(report.total.gaps).toBe(0);
    expect(notRecovered(cs)).toBe(0);
  }, 60_000);

  it('Redis restart without persistence: clients are told, every later event arrives, earlier ones are received or in an explicit gap', async () => {
    const c = await startCluster();
    const cs = await startClients(6, c.nginx.ws);
    const pub = publisher(c.nginx.url, 'redis', 100);
    pub.start();
    await sleep(1500); // traffic in the epoch before the restart: the scenario's load
    const before = new Map(
      CHANNELS.map((ch) => [ch, pub.accepted.find((a) => a.channel === ch)?.epoch]),
    );
    await redis?.restart();
    await sleep(3000); // traffic on through the restart
    await pub.stop();

    // Events of the epoch before the restart may be excused by a gap; later ones never.
    const gapsExcuse = (channel: string, epoch: string) => before.get(channel) === epoch;
    const report = await settle(cs, pub, CHANNELS, 20_000, { gapsExcuse });
    console.log(formatReport('redis restart', report));
    console.log(clusterSummary(c, pub));
    expect(pub.failures).toEqual([]);
    for (const ch of CHANNELS) {
      const epochs = new Set(pub.accepted.filter((a) => a.channel === ch).map((a) => a.epoch));
      expect(epochs.size, `${ch}: a new epoch after the restart`).toBe(2);
      expect(before.get(ch)).toBeDefined();
    }
    for (const x of cs) {
      // Told: a resync, or a resume answered recovered:false (on a reconnect).
      const told =
        x.resyncs > 0 ||
        [...x.logs.values()].some((l) => l.answers.some((a) => a.since && !a.recovered));
      expect(told, `${x.name} was told: ${x.describe()}`).toBe(true);
      for (const log of x.logs.values())
        for (const gap of log.gaps)
          expect(gap.epoch, `${x.name} gap ${JSON.stringify(gap)}`).toBe(before.get(log.channel));
    }
    expectNoLoss(report, 'redis restart');
    // A receipt nobody saw accepted can only be of the old epoch: stored and fanned out,
    // then lost with Redis before its answer (the retry was stored again in the new epoch).
    const acceptedKeys = new Set(pub.accepted.map((a) => `${a.channel} ${a.epoch}:${a.seq}`));
    const unknownNew: string[] = [];
    for (const x of cs)
      for (const log of x.logs.values())
        for (const [epoch, seqs] of log.received)
          if (epoch !== before.get(log.channel))
            for (const seq of seqs)
              if (!acceptedKeys.has(`${log.channel} ${epoch}:${seq}`))
                unknownNew.push(`${x.name} ${log.channel} ${epoch}:${seq}`);
    expect(unknownNew).toEqual([]);
    console.log(
      `redis restart: ${report.total.gaps} gaps reported, ${report.total.inGaps} old-epoch events in gaps, ${notRecovered(cs)} resumes answered recovered:false`,
    );
  }, 60_000);

  it('a slow consumer closed with 4008 reconnects and recovers every event', async () => {
    const c = await startCluster({ WEBSOCKET_MESSAGE_QUEUE_SIZE: '50' });
    const cs = await startClients(3, c.nginx.ws);
    // The slow dashboard reconnects after the first backoff docs/protocol.md recommends
    // (0.5 s with jitter): at 100 events/s per channel it then misses more events than its
    // queue holds (50), which its resume must replay.
    const [slow] = await startClients(1, c.nginx.ws, { prefix: 'slow', backoffMs: [500, 1000] });
    if (!slow) throw new Error('no slow client');
    const pub = publisher(c.nginx.url, 'slow', 100, 8000);
    pub.start();
    await sleep(500); // traffic before the client stalls: the scenario's load, not a wait
    const id = slow.clientId;
    slow.pause();
    // Resume as soon as the server closes it (before the close grace cuts the socket, so the
    // 4008 close frame still reaches the client behind what the socket holds).
    await eventually(
      async () => {
        const row = (await connections(c.nginx.url)).find((r) => r.client_id === id);
        return row === undefined || row.state === 'closing';
      },
      'the slow client to be closed',
      { timeoutMs: 20_000, everyMs: 100 },
    );
    slow.resume();
    await eventually(() => slow.closes.length > 0, 'the slow client to see its close', {
      timeoutMs: 10_000,
    });
    await sleep(2000); // traffic on while it reconnects: it misses more than its queue holds
    await pub.stop();

    const all = [...cs, slow];
    // A resume that is closed again and again never settles: stop after a few.
    const report = await settle(all, pub, CHANNELS, 15_000, {
      hopeless: () => slow.closes.length >= 6,
    });
    console.log(formatReport('slow consumer 4008', report));
    console.log(clusterSummary(c, pub));
    console.log(
      `slow consumer: closes ${slow.closes.join(',')}, ${slow.connects} connections, resumes ${JSON.stringify([...slow.logs.values()].map((l) => [l.channel, l.answers.slice(1)]))}`,
    );
    expect(pub.failures).toEqual([]);
    expect(slow.closes[0]).toBe(4008);
    // Each resume replays what the client missed, more than its queue holds: a resume that
    // is closed 4008 again every time never recovers.
    expect(
      slow.closes.length,
      `the resumes after the 4008 were closed again and again: ${slow.closes.join(',')}`,
    ).toBeLessThan(6);
    expectNoLoss(report, `slow consumer (closes ${slow.closes.join(',')})`);
    expect(report.total.gaps).toBe(0);
    expect(notRecovered(all)).toBe(0);
  }, 60_000);

  it('an operator queue flush during traffic: paused clients get resync and recover everything', async () => {
    const c = await startCluster({ WEBSOCKET_BROADCAST_TIMEOUT: '30' });
    const cs = await startClients(4, c.nginx.ws);
    const paused = cs.slice(0, 2);
    const pub = publisher(c.nginx.url, 'flush', 100, 8000);
    pub.start();
    await sleep(500); // traffic before the clients stall: the scenario's load, not a wait
    for (const x of paused) x.pause();
    const ids = paused.map((x) => x.clientId);
    // A paused client's queue fills once its socket buffers are full; flush while it holds
    // messages. A flush only reaches clients whose queue is not empty at that moment: repeat
    // until both paused clients were flushed (a flushed one is unsubscribed, so it stays out).
    const flushes: { flushed_messages: number; clients: number }[] = [];
    const flushedIds = new Set<string | null>();
    await eventually(
      async () => {
        const rows = await connections(c.nginx.url);
        const holding = ids.filter(
          (id) =>
            !flushedIds.has(id) && (rows.find((r) => r.client_id === id)?.queue_depth ?? 0) >= 5,
        );
        if (holding.length === 0) return false;
        const res = await fetch(`${c.nginx.url}/api/v1/admin/websocket/queue/flush`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        expect(res.status).toBe(200);
        const answer = (await res.json()) as { flushed_messages: number; clients: number };
        flushes.push(answer);
        if (answer.clients > 0) {
          // Any paused client the flush reached (its queue may have filled since the poll)
          // lost its subscriptions and waits for its resync.
          const after = await connections(c.nginx.url);
          for (const id of ids)
            if ((after.find((r) => r.client_id === id)?.channels.length ?? 1) === 0)
              flushedIds.add(id);
        }
        return ids.every((id) => flushedIds.has(id));
      },
      'both paused clients to be flushed while holding queued messages',
      { timeoutMs: 20_000, everyMs: 100 },
    );
    const flushed = {
      flushed_messages: flushes.reduce((n, f) => n + f.flushed_messages, 0),
      clients: flushes.reduce((n, f) => n + f.clients, 0),
      flushes: flushes.length,
    };
    expect(flushed.flushed_messages).toBeGreaterThan(0);
    expect(flushed.clients).toBeGreaterThanOrEqual(2);
    await sleep(300); // traffic the flushed clients miss while still paused
    for (const x of paused) x.resume();
    await sleep(2000); // traffic on while they resync and recover
    await pub.stop();

    const report = await settle(cs, pub, CHANNELS);
    console.log(formatReport('queue flush', report));
    console.log(clusterSummary(c, pub));
    console.log(`queue flush: ${JSON.stringify(flushed)}`);
    expect(pub.failures).toEqual([]);
    for (const x of paused) expect(x.resyncs, x.describe()).toBeGreaterThan(0);
    expectNoLoss(report, 'queue flush');
    expect(report.total.gaps).toBe(0);
    expect(notRecovered(cs)).toBe(0);
  }, 60_000);
});

describe('reconnect storm', () => {
  it('2,000 clients on one instance: kill -9, all resubscribe through nginx on the other, no loss', async () => {
    const N = 2000;
    // Every test client is one user from 127.0.0.1 (through nginx, as nginx's own address),
    // like a trading floor behind one NAT on one service account: the per-user and
    // per-address limits are sized for it.
    const c = await startCluster(
      {
        WEBSOCKET_PING_INTERVAL: '30',
        WEBSOCKET_MAX_CONNECTIONS_PER_IP: String(2 * N),
        WEBSOCKET_MAX_CONNECTIONS_PER_USER: String(2 * N),
      },
      8192,
    );
    const [first, other] = c.instances as [Instance, Instance];
    const started = Date.now();
    const cs = await startClients(N, `ws://127.0.0.1:${first.port}`, {
      reconnectUrl: c.nginx.ws,
      httpUrl: c.nginx.url,
      prefix: 's',
      batch: 200,
    });
    console.log(`reconnect storm: ${N} clients connected in ${Date.now() - started} ms`);
    expect(cs.every((x) => x.server === first.id)).toBe(true);
    const pub = publisher(c.nginx.url, 'storm', 4);
    pub.start();
    await sleep(1500); // traffic before the crash: the scenario's load, not a wait
    const killedAt = Date.now();
    await crash(first);
    await eventually(
      () => cs.every((x) => x.server === other.id && x.ready()),
      `all ${N} clients back on ${other.id}`,
      { timeoutMs: 50_000, everyMs: 20 },
    ).catch((err: unknown) => {
      const stuck = cs.filter((x) => !(x.server === other.id && x.ready()));
      throw new Error(
        `${String(err)}: ${stuck.length} not back, e.g.\n${stuck
          .slice(0, 5)
          .map((x) => x.describe())
          .join('\n')}`,
      );
    });
    const back = Math.max(...cs.map((x) => x.readyAt)) - killedAt;
    console.log(`reconnect storm: ${N} clients back in ${back} ms`);
    const times = cs.map((x) => x.readyAt - killedAt).sort((a, b) => a - b);
    const attempts = cs.reduce((n, x) => n + x.connects - 1, 0);
    const errors = new Map<string, number>();
    for (const x of cs)
      for (const e of x.errors) errors.set(e.slice(0, 60), (errors.get(e.slice(0, 60)) ?? 0) + 1);
    console.log(
      `reconnect storm: p50 ${times[N >> 1]} ms, p90 ${times[Math.floor(N * 0.9)]} ms, ` +
        `${attempts} reconnect attempts, errors ${JSON.stringify([...errors])}`,
    );
    await sleep(1500); // traffic after the storm
    await pub.stop();

    const report = await settle(cs, pub, CHANNELS, 20_000);
    console.log(formatReport('reconnect storm', report));
    console.log(clusterSummary(c, pub));
    expect(pub.failures).toEqual([]);
    expect(cs.every((x) => x.closes.includes(1006))).toBe(true);
    expectNoLoss(report, 'reconnect storm');
    expect(report.total.gaps).toBe(0);
    expect(notRecovered(cs)).toBe(0);
  }, 90_000);
});
