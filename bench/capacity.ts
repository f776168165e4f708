/**
 * Capacity: the model's answer for 1,000,000 traders (bench/capacity-model.ts, docs/capacity.md),
 * then a check of the model against a small run on this machine.
 *
 *   node_modules/.bin/node bench/capacity.ts [--clients 2000] [--seconds 15] [--warmup 3]
 *        [--scale 1] [--workers 2] [--model-only] [--timeout SECONDS]
 *
 * The run: its own redis-server as a one-shard Redis Cluster (every slot on one primary: what
 * one shard of a production cluster does, with the cluster's scripts and sharded pub/sub), one
 * gateway on it as the Docker image runs (--max-semi-space-size=16), and `--clients` traders
 * in worker processes, each its own user with its own account, subscribed as the dashboard is:
 * `signals`, `positions:<account>` (state), `risk:<account>`. The script publishes over HTTP,
 * every event with an id, in four phases of `--warmup` + `--seconds` each:
 *
 * - idle: nothing published: the cost of connections and of the instance's background work;
 * - signals: 20 signals/s to every trader: µs per delivery (the per-event part is < 1 %);
 * - positions: the mix's position events alone (one subscriber each): µs per event, and Redis
 *   CPU per published event;
 * - mix: the stated mix scaled down (× `--scale`): positions, one signal a second, alerts.
 *
 * In each window: the gateway's and Redis's CPU (/proc), the gateway's RSS, Redis's
 * INFO commandstats and network bytes, the bytes the gateway wrote (/proc/<pid>/io, less what
 * went to Redis and the HTTP answers) and the events the clients received. The last table puts
 * the model's prediction for the mix phase (with the constants of capacity-model.ts, and with
 * the costs calibrated by the first three phases) beside what was measured. A `redis-benchmark`
 * of plain SETs on the same Redis gives the price of a simple command to compare a publish
 * with. Bounded: about 2 minutes; every child stops by itself at the time bound.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { clearInterval, setInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { startRedis, type TestRedis } from '../test/support/redis.ts';
import {
  BUDGET,
  MEASURED,
  MILLION,
  gatewayCores,
  network,
  plan,
  rates,
  redisCommands,
  workerRssMb,
  type Costs,
  type Mix,
} from './capacity-model.ts';
import { log, parseOptions, runMain } from './cli.ts';
import { BenchClient, channel, signToken, type Handlers } from './client.ts';
import { count, procCpuSeconds, procRssMb, sleep, type Counts } from './measure.ts';
import { environment, fx, table } from './report.ts';
import { freePort, httpPost, startServer, stopServer, type Server } from './servers.ts';
import {
  endWorkers,
  forkWorker,
  fromParent,
  shares,
  toParent,
  workerEntry,
  type Message,
  type Share,
  type Worker,
  type WorkerConfig,
} from './workers.ts';

if (process.argv[2] === '--worker') workerEntry(traders);
else main();

const account = (i: number): string => `${10_000_000 + i}`;

// ---------------------------------------------------------------------------------------------
// The worker: a share of the traders, counting what they receive by class.

interface TraderConfig extends WorkerConfig, Share {
  readonly url: string;
  readonly jwtSecret: string;
}

type ClassCounts = Record<'positions' | 'signals' | 'risk', number>;

async function traders(cfg: TraderConfig): Promise<void> {
  const received: ClassCounts = { positions: 0, signals: 0, risk: 0 };
  const errors: Counts = {};
  const handlers: Handlers<undefined> = {
    event: (_c, ch) => {
      const cls = ch.name.split(':')[0];
      if (cls === 'positions' || cls === 'signals' || cls === 'risk') received[cls]++;
    },
    serverError: (_c, m) => count(errors, `error ${m.code}`),
    error: (_c, why) => count(errors, why),
    close: (_c, code) => count(errors, `closed ${code}`),
  };
  const clients: BenchClient[] = [];
  let next = 0;
  const connectOne = async (i: number): Promise<void> => {
    const acc = account(cfg.idBase + i);
    const c = new BenchClient(
      {
        token: await signToken(cfg.jwtSecret, `trader-${cfg.idBase + i}`, [acc], '1h'),
        channels: [channel('signals'), channel(`positions:${acc}`, false), channel(`risk:${acc}`)],
        data: undefined,
      },
      handlers,
    );
    clients.push(c);
    await c.open(cfg.url, 30_000).catch((err: Error) => count(errors, err.message));
  };
  await Promise.all(
    Array.from({ length: Math.min(cfg.batch, cfg.count) }, async () => {
      while (next < cfg.count) await connectOne(next++);
    }),
  );
  toParent({ type: 'ready', connected: clients.length, failed: 0, errors } as Message);
  const progress = setInterval(
    () =>
      toParent({ type: 'progress', connected: clients.length, failed: 0, ...received } as Message),
    250,
  );
  fromParent<Message>((m) => {
    if (m.type !== 'stop') return;
    clearInterval(progress);
    toParent({ type: 'result', ...received, errors } as Message);
    for (const c of clients) c.terminate();
  });
}

// ---------------------------------------------------------------------------------------------
// The publisher: the mix as HTTP batches, every 100 ms.

interface Load {
  /** Position events per account per second, in batchesPerAccount scripts. */
  readonly positionEvents: number;
  readonly positionBatches: number;
  readonly signalRate: number;
  readonly alertsPerSecond: number;
}

const SYMBOLS = Array.from({ length: 20 }, (_, i) => `SYM${String(i).padStart(3, '0')}`);

/** Data of about `bytes` of JSON, shaped like the demo feed's. */
const positionData = (symbol: string, n: number): object => ({
  symbol,
  side: 'long',
  size: 160000,
  entry_price: 1.08512,
  price: 1.08 + (n % 1000) / 1e5,
  pnl: 760.25,
  pnl_pct: 0.44,
  updated_at: Date.now(),
});
const signalData = (n: number): object => ({
  symbol: 'EURUSD',
  action: n % 2 ? 'buy' : 'sell',
  strength: 0.81,
  strategy: 'momentum',
  price: 1.08512,
  reason: 'EURUSD up 0.8% in 15 min on rising volume, n ' + String(n).padStart(8, '0'),
});
const alertData = (n: number): object => ({
  level: 'warning',
  kind: 'margin_level',
  margin_level: 120 + (n % 20),
  message: 'Margin level 120% — below 150% warning threshold',
  ts: Date.now(),
});

interface Published {
  events: number;
  posts: number;
  failed: number;
  answerBytes: number;
}

/** Publishes `load` to the gateway until `stop.stopped`; counts what it sent. */
async function publish(
  server: Server,
  token: string,
  clients: number,
  load: Load,
  stop: { stopped: boolean },
): Promise<Published> {
  const out: Published = { events: 0, posts: 0, failed: 0, answerBytes: 0 };
  const url = `http://127.0.0.1:${server.port}/api/v1/publish`;
  const headers = { authorization: `Bearer ${token}` };
  const perBatch = load.positionBatches > 0 ? load.positionEvents / load.positionBatches : 0;
  // Fractions carried from tick to tick, so low rates come out right on average.
  let batchesDue = 0;
  let signalsDue = 0;
  let alertsDue = 0;
  let cursor = 0;
  let n = 0;
  const inFlight = new Set<Promise<void>>();
  for (let tick = 0; !stop.stopped; tick++) {
    const at = Date.now() + 100;
    batchesDue += (clients * load.positionBatches) / 10;
    signalsDue += load.signalRate / 10;
    alertsDue += load.alertsPerSecond / 10;
    const events: object[] = [];
    for (; batchesDue >= 1; batchesDue--) {
      const acc = account(cursor++ % clients);
      for (let k = 0; k < perBatch; k++) {
        const symbol = SYMBOLS[(n + k) % SYMBOLS.length] as string;
        events.push({
          channel: `positions:${acc}`,
          key: symbol,
          id: `p${++n}`.padEnd(20, '0'),
          data: positionData(symbol, n),
        });
      }
    }
    for (; signalsDue >= 1; signalsDue--)
      events.push({ channel: 'signals', id: `s${++n}`.padEnd(20, '0'), data: signalData(n) });
    for (; alertsDue >= 1; alertsDue--) {
      const acc = account(Math.floor(Math.random() * clients));
      events.push({ channel: `risk:${acc}`, id: `a${++n}`.padEnd(20, '0'), data: alertData(n) });
    }
    // The engine's batches: up to 1000 events per request (docs/http-api.md).
    for (let i = 0; i < events.length; i += 1000) {
      const chunk = events.slice(i, i + 1000);
      const p = httpPost(url, { events: chunk }, headers).then((r) => {
        out.posts++;
        if (r.status === 200) out.events += chunk.length;
        else out.failed += chunk.length;
        out.answerBytes += Buffer.byteLength(r.body) + 150; // + the status line and headers
      });
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
    await sleep(Math.max(0, at - Date.now()));
  }
  await Promise.all(inFlight);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Measurements of one window.

function redisInfo(port: number, section: string): Map<string, string> {
  const text = execFileSync('redis-cli', ['-p', String(port), 'INFO', section], {
    encoding: 'utf8',
    timeout: 5000,
  });
  const m = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}

interface RedisCounters {
  calls: Record<string, number>;
  netIn: number;
  netOut: number;
}

function redisCounters(port: number): RedisCounters {
  const calls: Record<string, number> = {};
  for (const [k, v] of redisInfo(port, 'commandstats')) {
    const c = /calls=(\d+)/.exec(v);
    if (c) calls[k.replace('cmdstat_', '')] = Number(c[1]);
  }
  const stats = redisInfo(port, 'stats');
  return {
    calls,
    netIn: Number(stats.get('total_net_input_bytes')),
    netOut: Number(stats.get('total_net_output_bytes')),
  };
}

function writtenBytes(pid: number): number {
  const m = /wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

interface Sample {
  at: number;
  gatewayCpu: number;
  redisCpu: number;
  redis: RedisCounters;
  written: number;
  received: ClassCounts;
}

function sample(server: Server, redis: TestRedis, workers: readonly Worker[]): Sample {
  const received: ClassCounts = { positions: 0, signals: 0, risk: 0 };
  for (const w of workers)
    for (const k of Object.keys(received) as (keyof ClassCounts)[])
      received[k] += Number(w.progress[k] ?? 0);
  return {
    at: Date.now(),
    gatewayCpu: procCpuSeconds(server.pid) ?? 0,
    redisCpu: procCpuSeconds(redis.pid()) ?? 0,
    redis: redisCounters(redis.port),
    written: writtenBytes(server.pid),
    received,
  };
}

interface Window {
  phase: string;
  seconds: number;
  gatewayCores: number;
  redisCores: number;
  rssMb: number;
  deliveries: number;
  byClass: ClassCounts;
  published: number;
  failed: number;
  commands: number;
  calls: Record<string, number>;
  toRedis: number;
  fromRedis: number;
  egress: number;
}

function windowOf(
  phase: string,
  a: Sample,
  b: Sample,
  rssMb: number,
  published: Published,
  fraction: number,
): Window {
  const s = (b.at - a.at) / 1000;
  const calls: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.redis.calls)) {
    const d = v - (a.redis.calls[k] ?? 0);
    if (d > 0) calls[k] = d / s;
  }
  // The bench's own INFO calls are not the gateway's.
  delete calls.info;
  const byClass: ClassCounts = {
    positions: (b.received.positions - a.received.positions) / s,
    signals: (b.received.signals - a.received.signals) / s,
    risk: (b.received.risk - a.received.risk) / s,
  };
  const toRedis = (b.redis.netIn - a.redis.netIn) / s;
  return {
    phase,
    seconds: s,
    gatewayCores: (b.gatewayCpu - a.gatewayCpu) / s,
    redisCores: (b.redisCpu - a.redisCpu) / s,
    rssMb,
    deliveries: byClass.positions + byClass.signals + byClass.risk,
    byClass,
    published: (published.events * fraction) / s,
    failed: published.failed,
    commands: Object.values(calls).reduce((x, y) => x + y, 0),
    calls,
    toRedis,
    fromRedis: (b.redis.netOut - a.redis.netOut) / s,
    // What the gateway wrote, less its Redis commands and its HTTP answers: the WebSocket
    // frames (and pings) to the traders.
    egress: (b.written - a.written) / s - toRedis - (published.answerBytes * fraction) / s,
  };
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

function printModel(title: string, mix: Mix, costs: Costs): void {
  const p = plan(mix, costs, BUDGET);
  const gb = (b: number): string => `${fx(b / 1e9, 2)} GB/s`;
  process.stdout.write(
    `${title}\n` +
      `  events/s: positions ${fx(p.rates.positionEvents, 0)}, signals ${fx(p.rates.signalEvents, 0)}, ` +
      `alerts ${fx(p.rates.alertEvents, 0)}; publish scripts/s ${fx(p.rates.scripts, 0)}\n` +
      `  deliveries/s: ${fx(p.rates.deliveries, 0)} (positions ${fx(p.rates.positionDeliveries, 0)}, ` +
      `signals ${fx(p.rates.signalDeliveries, 0)}, alerts ${fx(p.rates.alertDeliveries, 0)})\n` +
      `  gateway: ${p.fleet.workers} workers (bound by ${p.fleet.boundBy}) = ${fx(p.fleet.cores, 1)} cores ` +
      `busy, ${fx(p.fleet.workerCpu * 100, 0)} % each, ${fx(p.fleet.connectionsPerWorker, 0)} connections each, ` +
      `RSS ${fx(p.fleet.rssPerWorkerMb, 0)} MB each; ${p.fleet.nodes} nodes of ${BUDGET.workersPerNode} cores, ` +
      `${fx(p.fleet.memoryPerNodeGb, 1)} GB RSS each\n` +
      `  Redis: ${p.shards.shards} primaries (bound by ${p.shards.boundBy}), ${fx(p.shards.redisCores, 1)} cores of ` +
      `scripts, ${fx(p.shards.commandsPerShard, 0)} commands/s and ${fx(p.shards.cpuPerShard * 100, 0)} % CPU ` +
      `per primary, ${fx(p.shards.bytesPerShard / 1e6, 1)} MB/s per primary\n` +
      `  network: to traders ${gb(p.network.egress)}, gateways → Redis ${gb(p.network.toRedis)}, ` +
      `Redis → gateways ${gb(p.network.fromRedis)}\n\n`,
  );
}

interface Options {
  clients: number;
  seconds: number;
  warmup: number;
  scale: number;
  workers: number;
  modelOnly: boolean;
  hardBound: number;
}

function options(): Options {
  const { argv, fail } = parseOptions(import.meta.url, 'capacity', {
    clients: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '3' },
    scale: { type: 'string', default: '1' },
    workers: { type: 'string', default: '2' },
    'model-only': { type: 'boolean', default: false },
    timeout: { type: 'string' },
  });
  const o: Options = {
    clients: Number(argv.clients),
    seconds: Number(argv.seconds),
    warmup: Number(argv.warmup),
    scale: Number(argv.scale),
    workers: Number(argv.workers),
    modelOnly: argv['model-only'],
    hardBound: 0,
  };
  if (!(Number.isInteger(o.clients) && o.clients >= 10 && o.clients <= 10_000))
    fail('--clients: 10..10000');
  if (!(o.seconds >= 3 && o.seconds <= 120)) fail('--seconds: 3..120');
  if (!(o.warmup >= 0 && o.warmup <= 30)) fail('--warmup: 0..30');
  if (!(o.scale > 0 && o.scale <= 10)) fail('--scale: 0..10');
  if (!(Number.isInteger(o.workers) && o.workers >= 1 && o.workers <= 8)) fail('--workers: 1..8');
  o.hardBound = Number(argv.timeout ?? 4 * (o.seconds + o.warmup) + 150);
  if (!(o.hardBound > 0)) fail('--timeout: seconds > 0');
  return o;
}

/** A private redis-server serving every slot alone: one shard of a Redis Cluster. */
async function oneShardCluster(bound: number): Promise<TestRedis> {
  const redis = await startRedis({
    args: [
      '--cluster-enabled',
      'yes',
      // Without it CLUSTER SLOTS names the node by an empty address, which no client can reach.
      '--cluster-announce-ip',
      '127.0.0.1',
      '--maxmemory-policy',
      'noeviction',
      '--loglevel',
      'warning',
    ],
    maxSeconds: bound,
  });
  const cli = (...args: string[]): string =>
    execFileSync('redis-cli', ['-p', String(redis.port), ...args], { encoding: 'utf8' });
  cli('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  for (let i = 0; i < 100 && !cli('CLUSTER', 'INFO').includes('cluster_state:ok'); i++)
    await sleep(100);
  return redis;
}

/** µs of Redis CPU per plain SET, from redis-benchmark on the same server. */
function simpleOpUs(redis: TestRedis): { us: number; opsPerSecond: number } {
  const n = 200_000;
  const before = procCpuSeconds(redis.pid()) ?? 0;
  const t0 = Date.now();
  execFileSync(
    'redis-benchmark',
    ['-p', String(redis.port), '-t', 'set', '-n', String(n), '-c', '20', '-q'],
    { encoding: 'utf8', timeout: 60_000 },
  );
  const cpu = (procCpuSeconds(redis.pid()) ?? 0) - before;
  return { us: (cpu * 1e6) / n, opsPerSecond: n / ((Date.now() - t0) / 1000) };
}

function main(): void {
  const o = options();
  printModel(
    'The model, 1,000,000 traders (capacity-model.ts MILLION, MEASURED, BUDGET):',
    MILLION,
    MEASURED,
  );
  if (o.modelOnly) return;
  runMain('capacity', o.hardBound, async () => {
    const env = environment();
    const redis = await oneShardCluster(o.hardBound);
    const secrets = {
      jwtSecret: randomBytes(32).toString('base64url'),
      publishToken: randomBytes(24).toString('base64url'),
    };
    const port = await freePort();
    const server = await startServer('archon', port, secrets, {
      bound: o.hardBound,
      nodeArgs: ['--max-semi-space-size=16'],
      extraEnv: {
        ARCHON_REDIS_URL: `redis+cluster://127.0.0.1:${redis.port}/`,
        ARCHON_SERVER_ID: 'capacity-1',
        WEBSOCKET_MAX_CONNECTIONS_PER_IP: '20000',
      },
    });
    const kids: Worker[] = [];
    try {
      await sleep(3000);
      const baseRssMb = procRssMb(server.pid) ?? 0;
      log(`capacity: gateway pid ${server.pid} (RSS ${fx(baseRssMb, 0)} MB), Redis :${redis.port}`);
      for (const share of shares(o.clients, o.workers, 100))
        kids.push(
          forkWorker(
            fileURLToPath(import.meta.url),
            'traders',
            {
              ...share,
              url: `ws://127.0.0.1:${port}/api/v1/ws`,
              jwtSecret: secrets.jwtSecret,
              lifetimeMs: o.hardBound * 1000,
            },
            log,
          ),
        );
      await Promise.all(kids.map((w) => w.next('ready', 120_000)));
      log(`capacity: ${o.clients} traders subscribed`);

      // The stated mix, scaled to this many traders and by --scale.
      const mix: Mix = { ...MILLION, traders: o.clients };
      const scaled: Mix = {
        ...mix,
        positionEventsPerAccount: mix.positionEventsPerAccount * o.scale,
        positionBatchesPerAccount: mix.positionBatchesPerAccount * o.scale,
        signalRate: mix.signalRate * o.scale,
        alertsPerAccountPerHour: mix.alertsPerAccountPerHour * o.scale,
      };
      const loadOf = (m: Mix): Load => ({
        positionEvents: m.positionEventsPerAccount,
        positionBatches: m.positionBatchesPerAccount,
        signalRate: m.signalRate,
        alertsPerSecond: (m.traders * m.alertsPerAccountPerHour) / 3600,
      });
      const phases: [string, Load][] = [
        ['idle', { positionEvents: 0, positionBatches: 0, signalRate: 0, alertsPerSecond: 0 }],
        ['signals', { positionEvents: 0, positionBatches: 0, signalRate: 20, alertsPerSecond: 0 }],
        ['positions', { ...loadOf(scaled), signalRate: 0, alertsPerSecond: 0 }],
        ['mix', loadOf(scaled)],
      ];
      const windows: Window[] = [];
      for (const [phase, load] of phases) {
        log(`capacity: phase ${phase}, ${o.warmup} + ${o.seconds} s`);
        const stop = { stopped: false };
        const publishing = publish(server, secrets.publishToken, o.clients, load, stop);
        await sleep(o.warmup * 1000);
        const a = sample(server, redis, kids);
        await sleep(o.seconds * 1000);
        const b = sample(server, redis, kids);
        const rss = procRssMb(server.pid) ?? 0;
        stop.stopped = true;
        const published = await publishing;
        // The publisher ran warmup + window; count the window's share of what it sent.
        windows.push(windowOf(phase, a, b, rss, published, o.seconds / (o.seconds + o.warmup)));
        await sleep(1000); // let the last fan-out end before the next phase
      }
      const simple = simpleOpUs(redis);
      report(o, env, baseRssMb, windows, scaled, simple);
    } finally {
      for (const w of kids) w.post({ type: 'stop' });
      await endWorkers(kids);
      await stopServer(server);
      await redis.stop();
    }
  });
}

function report(
  o: Options,
  env: ReturnType<typeof environment>,
  baseRssMb: number,
  windows: readonly Window[],
  planMix: Mix,
  simple: { us: number; opsPerSecond: number },
): void {
  const w = (phase: string): Window => windows.find((x) => x.phase === phase) as Window;
  const [idle, signals, positions, measured] = [w('idle'), w('signals'), w('positions'), w('mix')];
  process.stdout.write(
    `${table(
      [
        ['phase', 9, (x) => x.phase],
        ['gw cores', 8, (x) => fx(x.gatewayCores, 3)],
        ['RSS MB', 6, (x) => fx(x.rssMb, 0)],
        ['deliv/s', 8, (x) => fx(x.deliveries, 0)],
        [
          'pos/sig/risk per s',
          20,
          (x) =>
            `${fx(x.byClass.positions, 0)}/${fx(x.byClass.signals, 0)}/${fx(x.byClass.risk, 1)}`,
        ],
        ['published/s', 11, (x) => fx(x.published, 0)],
        ['redis cores', 11, (x) => fx(x.redisCores, 3)],
        ['redis cmd/s', 11, (x) => fx(x.commands, 0)],
        ['→redis B/s', 10, (x) => fx(x.toRedis, 0)],
        ['redis→ B/s', 10, (x) => fx(x.fromRedis, 0)],
        ['egress B/s', 10, (x) => fx(x.egress, 0)],
      ],
      windows,
    )}\n\n`,
  );
  for (const x of windows)
    if (x.failed) process.stdout.write(`  ${x.phase}: ${x.failed} events NOT published\n`);
  const perCommand = Object.entries(measured.calls)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${fx(v / Math.max(1, measured.published), 2)}`)
    .join(', ');
  process.stdout.write(`mix: Redis commands per published event: ${perCommand}\n`);

  // Calibration from the first three phases.
  const usPerConnectionSecond = (idle.gatewayCores * 1e6) / o.clients;
  const usPerDelivery = ((signals.gatewayCores - idle.gatewayCores) * 1e6) / signals.deliveries;
  const usPerEvent =
    ((positions.gatewayCores - idle.gatewayCores) * 1e6) / positions.published - usPerDelivery;
  const redisUsPerEvent = ((positions.redisCores - idle.redisCores) * 1e6) / positions.published;
  const kbPerConnection = ((measured.rssMb - baseRssMb) * 1024) / o.clients;
  const calibrated: Costs = {
    usPerDelivery,
    usPerEvent,
    usPerConnectionSecond,
    baseRssMb,
    kbPerConnection,
    redisUsPerEvent,
    redisUsPerPubsubCopy: MEASURED.redisUsPerPubsubCopy,
  };
  process.stdout.write(
    `\nThis run's costs: ${fx(usPerDelivery, 2)} µs per delivery, ${fx(usPerEvent, 1)} µs per event ` +
      `(position, fan-out 1), ${fx(usPerConnectionSecond, 2)} µs/s per idle connection; Redis ` +
      `${fx(redisUsPerEvent, 1)} µs per published position event, ${fx(simple.us, 2)} µs per plain SET ` +
      `(redis-benchmark: ${fx(simple.opsPerSecond, 0)} SET/s, 20 clients, no pipelining): a ` +
      `published event costs ${fx(redisUsPerEvent / simple.us, 1)} SETs; RSS ${fx(baseRssMb, 0)} MB ` +
      `with nothing connected, ${fx(((idle.rssMb - baseRssMb) * 1024) / o.clients, 1)} KB per idle ` +
      `connection, ${fx(kbPerConnection, 1)} KB per connection under the mix\n\n`,
  );

  // Predicted vs measured for the mix phase. Background Redis work (heartbeats, expiry sweep,
  // slot refresh) is what the idle phase measured; the model leaves it out of the 1M answer
  // (about 20 commands/s per instance) but the check adds it.
  // The publisher may fall a little behind its schedule on a busy machine: the model is asked
  // about the rate actually published, not the one planned.
  const planned = rates(planMix);
  const f =
    measured.published / (planned.positionEvents + planned.signalEvents + planned.alertEvents);
  const mix: Mix = {
    ...planMix,
    positionEventsPerAccount: planMix.positionEventsPerAccount * f,
    positionBatchesPerAccount: planMix.positionBatchesPerAccount * f,
  };
  const r = rates(mix);
  const net = network(mix, 1);
  const commands = redisCommands(mix, { withId: true, cluster: true }) + idle.commands;
  const predict = (costs: Costs) => ({
    cores: gatewayCores(mix, costs, 1),
    rss: workerRssMb(costs, o.clients),
    redisCores:
      idle.redisCores +
      ((r.positionEvents + r.signalEvents + r.alertEvents) * costs.redisUsPerEvent) / 1e6,
  });
  const a = predict({ ...MEASURED, baseRssMb });
  const c = predict(calibrated);
  const rows: [string, number, number, number][] = [
    ['deliveries/s', r.deliveries, r.deliveries, measured.deliveries],
    ['gateway CPU, cores', a.cores, c.cores, measured.gatewayCores],
    ['gateway RSS, MB', a.rss, c.rss, measured.rssMb],
    ['Redis commands/s', commands, commands, measured.commands],
    ['Redis CPU, cores', a.redisCores, c.redisCores, measured.redisCores],
    [
      'gateway → Redis, B/s',
      net.toRedis + idle.toRedis,
      net.toRedis + idle.toRedis,
      measured.toRedis,
    ],
    [
      'Redis → gateway, B/s',
      net.fromRedis + idle.fromRedis,
      net.fromRedis + idle.fromRedis,
      measured.fromRedis,
    ],
    ['gateway → traders, B/s', net.egress + idle.egress, net.egress + idle.egress, measured.egress],
  ];
  process.stdout.write(
    `Mix phase (${o.clients} traders, × ${o.scale}, ${fx(f * 100, 1)} % of the planned rate published): predicted vs measured\n` +
      `${table(
        [
          ['quantity', 22, (x) => x[0]],
          ['model, MEASURED', 15, (x) => fx(x[1], x[1] < 10 ? 3 : 0)],
          ['model, this run', 15, (x) => fx(x[2], x[2] < 10 ? 3 : 0)],
          ['measured', 10, (x) => fx(x[3], x[3] < 10 ? 3 : 0)],
          ['measured / MEASURED', 19, (x) => fx(x[3] / x[1], 2)],
          ['measured / this run', 19, (x) => fx(x[3] / x[2], 2)],
        ],
        rows,
      )}\n\n`,
  );
  printModel("The model, 1,000,000 traders with this run's costs:", MILLION, calibrated);
  process.stdout.write(
    `${JSON.stringify({ date: new Date().toISOString(), node: env.node, commit: env.commit })}\n`,
  );
}
