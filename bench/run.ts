/**
 * Benchmark orchestrator: archon-ws beside the least a Node server can do and beside the
 * servers users compare it with, under the same load; and archon-ws in cluster mode
 * (publisher and subscribers on different instances).
 *
 *   node_modules/.bin/node bench/run.ts [--clients 5000] [--rate 10] [--size 200] [--seconds 20]
 *        [--warmup 3] [--rounds 3] [--only floor,bare,socketio,archon,cluster] [--workers 2]
 *        [--batch 200] [--quiet-wait 20] [--quiet-below 0.25] [--timeout SECONDS] [--no-save]
 *        [--node-args=--max-semi-space-size=16]
 *
 * Targets: `floor` (the frame-once floor: each event serialized and framed once, the same
 * buffer written to every socket), `bare` (a `ws.send` loop), `socketio` (Socket.IO 4, one
 * room per channel), `archon` (one gateway instance, embedded mode) and `cluster` (its own
 * redis-server + two gateway instances on it: publishes go to instance A, every client is on
 * instance B). The default is every target but cluster; `--only` takes a comma-separated
 * list. Each round runs the targets one after the other (order alternates per round), each
 * with fresh child processes on free 127.0.0.1 ports, under the same load (bench/loadgen.ts).
 * The server child's CPU (utime+stime from /proc/<pid>/stat; for cluster: instance B, and also
 * A and Redis) is read at the start and the end of the measured window; CPU µs per delivery =
 * that CPU time / events received by all clients in the same window. Every server carries
 * bench/probe.ts, which gives its event-loop lag over the window and its RSS at the end;
 * `pub p99` is the publisher's HTTP round trip. `--node-args` gives every server (the cluster's
 * instances too) the same Node/V8 flags. Prints a table per round and a summary
 * (medians over rounds; each ratio is the median of the per-round ratios archon/bare,
 * archon/floor and cluster/archon) and writes bench/results/<timestamp>.json.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import type { TestRedis } from '../test/support/redis.ts';
import { log, nodeArgsOf, parseCli, runMain } from './cli.ts';
import { signToken } from './client.ts';
import { dialect } from './dialect.ts';
import { runLoad, type LoadFigures, type LoadOptions } from './loadgen.ts';
import { sleep } from './measure.ts';
import type { ProbeStats } from './probe.ts';
import {
  buildsUsed,
  environment,
  fx,
  median,
  saveResults,
  table,
  waitQuiet,
  type Column,
} from './report.ts';
import {
  GATEWAY,
  ROOT,
  distBuilt,
  freePort,
  probeStats,
  redisServerVersion,
  staleDist,
  startBenchRedis,
  startServer,
  stopServer,
  type Child,
  type Server,
  type Target,
} from './servers.ts';

const REQUIRED_RATIO = 1.3;
type RunTarget = Target | 'cluster';
const ALL_TARGETS: readonly RunTarget[] = ['floor', 'bare', 'socketio', 'archon', 'cluster'];
const DEFAULT_TARGETS: readonly RunTarget[] = ['floor', 'bare', 'socketio', 'archon'];

// ---------------------------------------------------------------------------------------------
// Options
const {
  argv,
  check,
  opt: shared,
} = parseCli(
  import.meta.url,
  'run.ts',
  {
    clients: { type: 'string', default: '5000' },
    only: { type: 'string' },
    workers: { type: 'string', default: '2' },
    batch: { type: 'string', default: '200' },
    'node-args': { type: 'string', default: '' },
  },
  { rate: '10', quietWait: '20', maxSize: 65_000 },
);
const opt = {
  ...shared,
  clients: Number(argv.clients),
  workers: Number(argv.workers),
  batch: Number(argv.batch),
  nodeArgs: nodeArgsOf(argv['node-args']),
};
check(
  Number.isInteger(opt.clients) && opt.clients >= 1 && opt.clients <= 15_000,
  '--clients: 1..15000',
);
check(Number.isInteger(opt.workers) && opt.workers >= 1 && opt.workers <= 8, '--workers: 1..8');
check(opt.batch >= 1 && opt.batch <= 1000, '--batch: 1..1000');
check(
  opt.nodeArgs.every((a) => a.startsWith('--')),
  '--node-args: Node/V8 flags for every server, e.g. "--max-semi-space-size=16"',
);
const only = argv.only
  ? argv.only
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean)
  : null;
check(
  !only || (only.length > 0 && only.every((t) => (ALL_TARGETS as readonly string[]).includes(t))),
  `--only: a comma-separated list of ${ALL_TARGETS.join(', ')}`,
);

let targets = only ? ALL_TARGETS.filter((t) => only.includes(t)) : [...DEFAULT_TARGETS];
const skipped: Record<string, string> = {};
const skip = (target: RunTarget, why: string): void => {
  if (!targets.includes(target)) return;
  skipped[target] = why;
  log(`run.ts: ${target} skipped: ${why}`);
  targets = targets.filter((t) => t !== target);
};
if (!existsSync(GATEWAY)) {
  skip('archon', `${path.relative(ROOT, GATEWAY)} does not exist`);
  skip('cluster', `${path.relative(ROOT, GATEWAY)} does not exist`);
}
if (targets.includes('cluster') && !redisServerVersion()) {
  skip('cluster', 'redis-server is not installed (not on PATH)');
}
check(targets.length > 0, 'nothing to run');
const usesGateway = targets.includes('archon') || targets.includes('cluster');

// The gateway runs from dist/ (bin/archon-ws.js imports ../dist/cli/main.js): warn if stale.
const distWarning = usesGateway ? staleDist() : null;
if (distWarning) log(`run.ts: WARNING: ${distWarning}`);

// Hard bound on the whole run: per server run ≈ start 30 s + connect + warm-up + window +
// cool-down + drain 10 s + stop 10 s, with slack; a cluster run starts and stops three
// processes (Redis, A, B) one after the other: 30 s more. Overridable with --timeout.
const perRunBase =
  opt.quietWait + 30 + Math.max(60, opt.clients / 20) + opt.warmup + opt.seconds + 1 + 10 + 10 + 15;
const perRun = (target: RunTarget): number => perRunBase + (target === 'cluster' ? 30 : 0);
const hardBound = argv.timeout
  ? Number(argv.timeout)
  : Math.ceil(targets.reduce((a, t) => a + perRun(t), 0) * opt.rounds + 30);
check(hardBound > 0, '--timeout: seconds > 0');
// One server run never needs more than perRun: its `timeout` wrappers stop its processes after
// that even if this process was killed (the bare server also exits when this process is gone).
const serverBound = (target: RunTarget): number => Math.ceil(Math.min(hardBound, perRun(target)));

// ---------------------------------------------------------------------------------------------
// Children: the load generator's workers (workers.ts) and the servers (servers.ts, started
// under `timeout` so that they stop by themselves even if this process is killed); runMain
// (at the end) kills them on exit, error, signals and at the hard bound.

interface Secrets {
  jwtSecret: string;
  jwt: string;
  publishToken: string;
}

/** One server run: the load's figures and what this script adds to them. */
type Run = LoadFigures & {
  target: RunTarget;
  quiet: Awaited<ReturnType<typeof waitQuiet>>;
  distBuilt: string | null;
  cluster?: Record<string, unknown> & {
    totalCpuUsPerDelivery: number | null;
    totalCpuCores: number;
  };
};

interface Round {
  round: number;
  order: RunTarget[];
  runs: Partial<Record<RunTarget, Run>>;
  errors: Partial<Record<RunTarget, string>>;
  /** archon/bare, archon/floor and cluster (B)/archon CPU per delivery. */
  ratio: number | null;
  floorRatio: number | null;
  clusterRatio: number | null;
}

/** A target's medians over the rounds (sums for the integrity counts). */
interface TargetSummary {
  runs: number;
  failedRuns: number;
  deliveredPerSecond: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  cpuUsPerDelivery: number | null;
  cpuCores: number | null;
  rssMb: number | null;
  publishP50Ms: number | null;
  publishP99Ms: number | null;
  lagP99Ms: number | null;
  lost: number;
  dup: number;
  ooo: number;
  closedDuringRun: number;
  connectFailed: number;
  publishFailed: number;
  allComplete: boolean;
  loadgenSaturatedRuns: number;
  disturbedRuns: number;
  // cluster only
  publisherCpuCores?: number | null;
  publisherCpuUsPerDelivery?: number | null;
  redisCpuCores?: number | null;
  redisCpuUsPerDelivery?: number | null;
  totalCpuCores?: number | null;
  totalCpuUsPerDelivery?: number | null;
}

interface RatioSummary {
  ratios: number[];
  ratio: number | null;
  cleanRatios: number[];
  cleanRatio: number | null;
  bestRatio: number | null;
}

interface Summary extends RatioSummary {
  targets: Partial<Record<RunTarget, TargetSummary>>;
  skipped: Record<string, string>;
  cluster: RatioSummary & { complete?: boolean; line?: string };
  floor: RatioSummary;
  disturbedRuns: number;
  verdict: string;
}

// ---------------------------------------------------------------------------------------------
const loadOptions = (): Partial<LoadOptions> => ({
  clients: opt.clients,
  rate: opt.rate,
  size: opt.size,
  warmup: opt.warmup,
  seconds: opt.seconds,
  workers: opt.workers,
  batch: opt.batch,
  log: (line: string) => log(line),
});

/** Server output for an error message: the tail of each process's log. */
function tails(procs: readonly { target: string; logTail: string }[]): string {
  return procs
    .filter((s) => s.logTail.trim())
    .map((s) => `\n  ${s.target} output (tail):\n${indent(s.logTail.slice(-1500))}`)
    .join('');
}

/** Every load-generator client is the same user from the same address (127.0.0.1): the
 * per-user and per-address limits are raised for them, as for a trading floor behind one NAT
 * with one service account. bench/abuse.ts measures the limits themselves. */
const ONE_USER_ONE_ADDRESS = {
  WEBSOCKET_MAX_CONNECTIONS_PER_USER: '20000',
  WEBSOCKET_MAX_CONNECTIONS_PER_IP: '20000',
};

async function runTarget(target: RunTarget, secrets: Secrets): Promise<Run> {
  if (target === 'cluster') return runCluster(secrets);
  const quiet = await waitQuiet(opt, log);
  const port = await freePort();
  log(`\n▶ ${target} on 127.0.0.1:${port}`);
  const built = target === 'bare' ? null : distBuilt();
  const s = await startServer(target, port, secrets, {
    bound: serverBound(target),
    extraEnv: ONE_USER_ONE_ADDRESS,
    nodeArgs: opt.nodeArgs,
  });
  try {
    const load = await runLoad({
      ...loadOptions(),
      target,
      url: dialect(target).url(`ws://127.0.0.1:${port}`),
      token: target === 'archon' ? secrets.jwt : '',
      publishToken: target === 'archon' ? secrets.publishToken : '',
      serverPid: s.pid,
      probe: windowProbe(s),
    });
    if (s.exited) throw new Error(`${target} exited during the run:\n${s.logTail}`);
    if (!load.server) throw new Error(`could not read /proc/${s.pid}/stat`);
    const r: Run = Object.assign(load, { target, quiet, distBuilt: built });
    Object.assign(load.server, {
      logLines: s.logLines,
      logTail: s.logLines ? s.logTail.slice(-2000) : '',
    });
    return r;
  } catch (err) {
    throw new Error(`${message(err)}${tails([s])}`, { cause: err });
  } finally {
    await stopServer(s);
  }
}

/**
 * Cluster run: a private redis-server and two gateway instances on it (cluster mode). Every
 * client connects to instance B; every publish goes to instance A's HTTP port, so each event
 * travels A → Redis (script + PUBLISH) → B (pub/sub) → clients. The measured server is B (the
 * figure comparable to the single instance); A's and Redis's CPU over the same window are
 * reported next to it (`r.extra.publisher`, `r.extra.redis`).
 */
async function runCluster(secrets: Secrets): Promise<Run> {
  const quiet = await waitQuiet(opt, log);
  const bound = serverBound('cluster');
  const built = distBuilt();
  const procs: Child[] = [];
  let redis: TestRedis | null = null;
  try {
    redis = await startBenchRedis(bound);
    const redisPort = redis.port;
    const redisUrl = redis.url;
    const aPort = await freePort();
    const a = await startServer('archon', aPort, secrets, {
      label: 'cluster A',
      bound,
      nodeArgs: opt.nodeArgs,
      extraEnv: {
        ...ONE_USER_ONE_ADDRESS,
        ARCHON_REDIS_URL: redisUrl,
        ARCHON_SERVER_ID: 'bench-a',
      },
    });
    procs.push(a);
    const bPort = await freePort();
    const b = await startServer('archon', bPort, secrets, {
      label: 'cluster B',
      bound,
      nodeArgs: opt.nodeArgs,
      extraEnv: {
        ...ONE_USER_ONE_ADDRESS,
        ARCHON_REDIS_URL: redisUrl,
        ARCHON_SERVER_ID: 'bench-b',
      },
    });
    procs.push(b);
    log(
      `\n▶ cluster: Redis on 127.0.0.1:${redisPort}, publish → A on 127.0.0.1:${aPort}, ` +
        `clients → B on 127.0.0.1:${bPort}`,
    );
    const load = await runLoad({
      ...loadOptions(),
      url: `ws://127.0.0.1:${bPort}/api/v1/ws`,
      publishUrl: `http://127.0.0.1:${aPort}/api/v1/publish`,
      token: secrets.jwt,
      publishToken: secrets.publishToken,
      serverPid: b.pid,
      extraPids: { publisher: a.pid, redis: redis.pid() },
      probe: windowProbe(b),
    });
    for (const s of procs) {
      if (s.exited) throw new Error(`${s.target} exited during the run:\n${s.logTail}`);
    }
    if (!load.server) throw new Error(`could not read /proc/${b.pid}/stat`);
    Object.assign(load.server, {
      logLines: b.logLines,
      logTail: b.logLines ? b.logTail.slice(-2000) : '',
    });
    const parts = [load.server, load.extra.publisher, load.extra.redis];
    const total = parts.every((x) => typeof x?.cpuUsPerDelivery === 'number')
      ? parts.reduce((acc, x) => acc + (x?.cpuUsPerDelivery ?? 0), 0)
      : null;
    const redisLog = redis.log();
    const r: Run = Object.assign(load, { target: 'cluster' as const, quiet, distBuilt: built });
    r.cluster = {
      redisPort,
      redisVersion: redisServerVersion(),
      publisherPort: aPort,
      subscriberPort: bPort,
      publisherLogLines: a.logLines,
      publisherLogTail: a.logLines ? a.logTail.slice(-2000) : '',
      redisLogTail: redisLog.slice(-2000),
      // B + A + Redis CPU per delivery: what the whole cluster spends (interrupts excluded).
      totalCpuUsPerDelivery: total,
      totalCpuCores: parts.reduce((acc, x) => acc + (x?.cpuCores ?? 0), 0),
    };
    return r;
  } catch (err) {
    const redisTail = redis ? [{ target: 'redis', logTail: redis.log() }] : [];
    throw new Error(`${message(err)}${tails([...redisTail, ...procs])}`, { cause: err });
  } finally {
    // The instances first (their shutdown still talks to Redis), then Redis.
    await Promise.all(procs.map(stopServer));
    await redis?.stop();
  }
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Event-loop lag and memory of the measured server over the window (bench/probe.ts). */
const windowProbe = (s: Server): NonNullable<LoadOptions['probe']> => ({
  start: () => probeStats(s, { reset: true }),
  end: () => probeStats(s),
});

const indent = (text: string): string =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');

// ---------------------------------------------------------------------------------------------
// Reporting
const COLUMNS: Column<Run>[] = [
  ['server', 8, (r) => r.target],
  ['clients', 11, (r) => `${r.connect.connected}/${r.connect.requested}`],
  ['deliv/s', 9, (r) => fx(r.delivered.perSecond, 0)],
  ['p50 ms', 8, (r) => fx(r.latencyMs.p50)],
  ['p99 ms', 8, (r) => fx(r.latencyMs.p99)],
  ['µs/deliv', 9, (r) => fx(r.server?.cpuUsPerDelivery, 3)],
  ['cores', 6, (r) => fx(r.server?.cpuCores)],
  ['RSS MB', 7, (r) => fx(rssMb(r), 0)],
  ['pub p99', 8, (r) => fx(r.publish.httpP99)],
  ['lag p99', 8, (r) => fx(probeOf(r)?.lag.p99)],
  ['lost', 6, (r) => String(r.integrity.lost)],
  ['dup', 5, (r) => String(r.integrity.dup)],
  ['ooo', 5, (r) => String(r.integrity.ooo)],
  ['lg cores', 9, (r) => fx(r.loadgen.workers.reduce((a, w) => a + (w.cpuCores ?? 0), 0))],
  ['lg ELU', 10, (r) => r.loadgen.workers.map((w) => fx(w.elu)).join('/')],
  ['irq', 5, (r) => fx(r.loadgen.irqCores)],
  // Approximate (the kernel counts processes and the machine differently): shown clamped at 0.
  ['other', 6, (r) => fx(r.loadgen.otherCores === null ? null : Math.max(0, r.loadgen.otherCores))],
  ['machine', 8, (r) => `${fx((r.loadgen.machineBusy ?? 0) * 100, 0)}%`],
  ['flags', 6, flags],
];
/** The server's RSS at the end of the window (the probe's), else after the run (/proc). */
function rssMb(r: Run): number | null {
  const probe = probeOf(r);
  return probe ? probe.rss / 1024 / 1024 : (r.server?.rssMb ?? null);
}
/** The probe's figures at the window's end, unless it could not be read. */
function probeOf(r: Run): ProbeStats | null {
  // The probe's end() answer (windowProbe), or {error} when it could not be read.
  const probe = r.probe as ProbeStats | { error: string } | null | undefined;
  return probe && 'rss' in probe ? probe : null;
}
/** C: contended (other processes used > 0.25 core or machine > 95 % busy); B: behind (delivered
 * < 95 % of the offered load in the window); S: load generator saturated. */
function flags(r: Run): string {
  return (
    (r.loadgen.contended ? 'C' : '') +
      (r.loadgen.keptUp ? '' : 'B') +
      (r.loadgen.saturated ? 'S' : '') || '-'
  );
}
const clean = (r: Run | undefined): boolean =>
  r !== undefined && !r.loadgen.contended && r.loadgen.keptUp && !r.loadgen.saturated;
/** The summary table: one row per target ([name, medians]). */
const SUMMARY_COLUMNS: Column<[string, TargetSummary]>[] = [
  ['server', 8, ([t]) => t],
  ['runs', 5, ([, s]) => s.runs],
  ['deliv/s', 9, ([, s]) => fx(s.deliveredPerSecond, 0)],
  ['p50 ms', 8, ([, s]) => fx(s.p50Ms)],
  ['p99 ms', 8, ([, s]) => fx(s.p99Ms)],
  ['µs/deliv', 9, ([, s]) => fx(s.cpuUsPerDelivery, 3)],
  ['cores', 6, ([, s]) => fx(s.cpuCores)],
  ['RSS MB', 7, ([, s]) => fx(s.rssMb, 0)],
  ['pub p50', 8, ([, s]) => fx(s.publishP50Ms)],
  ['pub p99', 8, ([, s]) => fx(s.publishP99Ms)],
  ['lag p99', 8, ([, s]) => fx(s.lagP99Ms)],
  ['lost', 7, ([, s]) => s.lost],
  ['dup', 6, ([, s]) => s.dup],
  ['complete', 9, ([, s]) => (s.allComplete ? 'yes' : 'NO')],
];

// ---------------------------------------------------------------------------------------------
/** Per-round ratio of two targets' CPU per delivery (null unless both ran). */
function roundRatio(round: Round, num: RunTarget, den: RunTarget): number | null {
  const a = round.runs[num]?.server?.cpuUsPerDelivery;
  const b = round.runs[den]?.server?.cpuUsPerDelivery;
  return a && b ? a / b : null;
}

/** The cluster figures that do not fit the common table: A, Redis and the whole cluster. */
function clusterLine(r: Run): string {
  const e = r.extra ?? {};
  return (
    `cluster: B (subscriber instance, row above) ${fx(r.server?.cpuUsPerDelivery, 3)} µs/deliv; ` +
    `A (publisher instance) ${fx(e.publisher?.cpuCores)} cores, ` +
    `${fx(e.publisher?.cpuUsPerDelivery, 3)} µs/deliv; ` +
    `Redis ${fx(e.redis?.cpuCores)} cores, ${fx(e.redis?.cpuUsPerDelivery, 3)} µs/deliv; ` +
    `A+B+Redis ${fx(r.cluster?.totalCpuCores)} cores, ` +
    `${fx(r.cluster?.totalCpuUsPerDelivery, 3)} µs/deliv`
  );
}

async function main(): Promise<void> {
  const started = new Date();
  const jwtSecret = randomBytes(32).toString('base64url');
  const secrets = {
    jwtSecret,
    jwt: await signToken(jwtSecret, 'bench-0'),
    publishToken: randomBytes(24).toString('base64url'),
  };
  log(
    `archon-ws benchmark: ${opt.clients} clients × ${opt.rate} msg/s × ${opt.size} B, ` +
      `warm-up ${opt.warmup} s + window ${opt.seconds} s, ${opt.rounds} round(s), ` +
      `targets ${targets.join(', ')}; hard bound ${hardBound} s`,
  );
  const rounds: Round[] = [];
  for (let i = 0; i < opt.rounds; i++) {
    const order = i % 2 === 0 ? [...targets] : [...targets].reverse();
    const round: Round = {
      round: i + 1,
      order,
      runs: {},
      errors: {},
      ratio: null,
      floorRatio: null,
      clusterRatio: null,
    };
    for (const t of order) {
      try {
        const run = await runTarget(t, secrets);
        round.runs[t] = run;
        for (const n of run.loadgen.notes) log(`  NOTE: ${n}`);
      } catch (err) {
        const e = message(err);
        round.errors[t] = e;
        log(`  ✗ ${t} failed: ${e}`);
      }
      await sleep(2000); // let sockets and the machine settle between servers
    }
    round.ratio = roundRatio(round, 'archon', 'bare');
    round.floorRatio = roundRatio(round, 'archon', 'floor');
    // Cluster (instance B) against the single instance of the same round.
    round.clusterRatio = roundRatio(round, 'cluster', 'archon');
    rounds.push(round);
    const rows = order.map((t) => round.runs[t]).filter((r) => r !== undefined);
    process.stdout.write(
      `\nround ${i + 1} (order: ${order.join(' → ')})\n${table(COLUMNS, rows)}\n`,
    );
    if (round.runs.cluster) process.stdout.write(`${clusterLine(round.runs.cluster)}\n`);
    if (round.ratio !== null) {
      process.stdout.write(`ratio archon/bare CPU per delivery: ${fx(round.ratio, 3)}\n`);
    }
    if (round.floorRatio !== null) {
      process.stdout.write(`ratio archon/floor CPU per delivery: ${fx(round.floorRatio, 3)}\n`);
    }
    if (round.clusterRatio !== null) {
      process.stdout.write(
        `ratio cluster B/archon (single) CPU per delivery: ${fx(round.clusterRatio, 3)}\n`,
      );
    }
    for (const [t, e] of Object.entries(round.errors)) {
      process.stdout.write(`${t}: FAILED — ${e.split('\n')[0]}\n`);
    }
  }

  // Another engineer may rebuild dist/ while this runs: then the runs did not all test the
  // same gateway build.
  const builds = buildsUsed(rounds);
  const warnings = distWarning ? [distWarning] : [];
  if (builds > 1) {
    warnings.push(
      `dist/ was rebuilt during the benchmark: the gateway runs used ${builds} different ` +
        `builds (see distBuilt of each run)`,
    );
  }

  // Summary: medians over rounds.
  const summaries: Partial<Record<RunTarget, TargetSummary>> = {};
  for (const t of targets) {
    const rs = rounds.map((r) => r.runs[t]).filter((r) => r !== undefined);
    if (!rs.length) continue;
    summaries[t] = {
      runs: rs.length,
      failedRuns: rounds.length - rs.length,
      deliveredPerSecond: median(rs.map((r) => r.delivered.perSecond)),
      p50Ms: median(rs.map((r) => r.latencyMs.p50)),
      p99Ms: median(rs.map((r) => r.latencyMs.p99)),
      cpuUsPerDelivery: median(rs.map((r) => r.server?.cpuUsPerDelivery)),
      cpuCores: median(rs.map((r) => r.server?.cpuCores)),
      rssMb: median(rs.map(rssMb)),
      publishP50Ms: median(rs.map((r) => r.publish.httpP50)),
      publishP99Ms: median(rs.map((r) => r.publish.httpP99)),
      lagP99Ms: median(rs.map((r) => probeOf(r)?.lag.p99)),
      lost: rs.reduce((a, r) => a + r.integrity.lost, 0),
      dup: rs.reduce((a, r) => a + r.integrity.dup, 0),
      ooo: rs.reduce((a, r) => a + r.integrity.ooo, 0),
      closedDuringRun: rs.reduce((a, r) => a + r.integrity.closedDuringRun, 0),
      connectFailed: rs.reduce((a, r) => a + r.connect.failed, 0),
      publishFailed: rs.reduce((a, r) => a + r.integrity.publishFailed, 0),
      allComplete: rs.every((r) => r.integrity.complete),
      loadgenSaturatedRuns: rs.filter((r) => r.loadgen.saturated).length,
      disturbedRuns: rs.filter((r) => !clean(r)).length,
    };
    if (t === 'cluster') {
      Object.assign(summaries[t], {
        publisherCpuCores: median(rs.map((r) => r.extra.publisher?.cpuCores)),
        publisherCpuUsPerDelivery: median(rs.map((r) => r.extra.publisher?.cpuUsPerDelivery)),
        redisCpuCores: median(rs.map((r) => r.extra.redis?.cpuCores)),
        redisCpuUsPerDelivery: median(rs.map((r) => r.extra.redis?.cpuUsPerDelivery)),
        totalCpuCores: median(rs.map((r) => r.cluster?.totalCpuCores)),
        totalCpuUsPerDelivery: median(rs.map((r) => r.cluster?.totalCpuUsPerDelivery)),
      });
    }
  }
  // Noise only ever adds CPU, so the least-disturbed estimate of each server's cost is its
  // lowest CPU per delivery over the rounds; their ratio is a cross-check of the median ratio.
  const best = (t: RunTarget): number =>
    Math.min(...rounds.map((r) => r.runs[t]?.server?.cpuUsPerDelivery ?? Infinity));
  const ratioSummary = (
    key: 'ratio' | 'floorRatio' | 'clusterRatio',
    num: RunTarget,
    den: RunTarget,
  ): RatioSummary => {
    const all = rounds.map((r) => r[key]).filter((x) => x !== null);
    // Rounds where neither run was disturbed: the ratio to trust most when there are some.
    const cleanOnes = rounds
      .filter((r) => clean(r.runs[num]) && clean(r.runs[den]))
      .map((r) => r[key])
      .filter((x) => x !== null);
    return {
      ratios: all,
      ratio: median(all),
      cleanRatios: cleanOnes,
      cleanRatio: median(cleanOnes),
      bestRatio:
        Number.isFinite(best(num)) && Number.isFinite(best(den)) ? best(num) / best(den) : null,
    };
  };
  // archon/bare at the top level (as before); cluster/archon under summary.cluster.
  const summary: Summary = {
    targets: summaries,
    skipped,
    ...ratioSummary('ratio', 'archon', 'bare'),
    cluster: ratioSummary('clusterRatio', 'cluster', 'archon'),
    floor: ratioSummary('floorRatio', 'archon', 'floor'),
    disturbedRuns: rounds.flatMap((r) => Object.values(r.runs)).filter((r) => !clean(r)).length,
    verdict: '',
  };
  const arch = summary.targets.archon;
  if (summary.ratio === null || !arch) {
    summary.verdict = 'NOT EVALUATED (needs both bare and archon to run)';
  } else {
    const costOk = summary.ratio <= REQUIRED_RATIO;
    const complete = arch.allComplete && arch.failedRuns === 0;
    summary.verdict =
      `${costOk && complete ? 'PASS' : 'FAIL'}: ratio ${fx(summary.ratio, 3)} ` +
      `(${costOk ? '≤' : '>'} ${REQUIRED_RATIO}), archon ${complete ? 'delivered everything' : 'did NOT deliver everything'}`;
  }
  const clu = summary.targets.cluster;
  if (clu) {
    const complete = clu.allComplete && clu.failedRuns === 0;
    summary.cluster.complete = complete;
    summary.cluster.line =
      `cluster (publish → A, clients on B): ${complete ? 'delivered everything' : 'did NOT deliver everything'} ` +
      `(lost ${clu.lost}, dup ${clu.dup}, ooo ${clu.ooo}, closed ${clu.closedDuringRun}, ` +
      `connect failed ${clu.connectFailed}, publish failed ${clu.publishFailed}` +
      `${clu.failedRuns ? `, ${clu.failedRuns} run(s) FAILED` : ''})`;
  }

  const ratioLine = (name: string, s: RatioSummary): string =>
    s.ratios.length
      ? `ratio ${name} CPU per delivery: median ${fx(s.ratio, 3)} (rounds: ${s.ratios.map((x) => fx(x, 3)).join(', ')}); ` +
        `best/best: ${fx(s.bestRatio, 3)}` +
        (s.cleanRatios.length < s.ratios.length
          ? s.cleanRatios.length
            ? `; over the ${s.cleanRatios.length} undisturbed round(s): ${fx(s.cleanRatio, 3)}`
            : '; no round was undisturbed: treat it as approximate'
          : '') +
        '\n'
      : '';
  process.stdout.write(
    `\nsummary (medians over ${opt.rounds} round(s); lost/dup summed)\n` +
      table(SUMMARY_COLUMNS, Object.entries<TargetSummary>(summary.targets)) +
      '\n' +
      (clu
        ? `cluster medians: B (subscriber instance) ${fx(clu.cpuUsPerDelivery, 3)} µs/deliv; ` +
          `A (publisher instance) ${fx(clu.publisherCpuCores)} cores, ${fx(clu.publisherCpuUsPerDelivery, 3)} µs/deliv; ` +
          `Redis ${fx(clu.redisCpuCores)} cores, ${fx(clu.redisCpuUsPerDelivery, 3)} µs/deliv; ` +
          `A+B+Redis ${fx(clu.totalCpuUsPerDelivery, 3)} µs/deliv\n`
        : '') +
      ratioLine('archon/bare', summary) +
      ratioLine('archon/floor', summary.floor) +
      ratioLine('cluster B/archon (single)', summary.cluster) +
      (summary.disturbedRuns
        ? `warning: ${summary.disturbedRuns} run(s) flagged C/B/S (see the flags column)\n`
        : '') +
      (builds > 1 ? `warning: ${warnings[warnings.length - 1]}\n` : '') +
      (summary.cluster.line ? `${summary.cluster.line}\n` : '') +
      `${summary.verdict}\n`,
  );
  for (const [t, s] of Object.entries(summary.targets)) {
    if (s.loadgenSaturatedRuns) {
      process.stdout.write(
        `note: load generator saturated in ${s.loadgenSaturatedRuns} ${t} run(s)\n`,
      );
    }
  }

  const result = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    params: { ...opt, targets, hardBound },
    warnings,
    environment: environment({
      redisServer: targets.includes('cluster') ? redisServerVersion() : null,
    }),
    rounds,
    summary,
  };
  if (!argv['no-save']) saveResults('', started, result);
}

runMain('run.ts', hardBound, main);
