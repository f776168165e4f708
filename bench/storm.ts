/**
 * Reconnect storm: N clients of one instance all move to another when it stops, and how long
 * each of them is blind. Cluster mode, measured on this machine end to end.
 *
 *   node_modules/.bin/node bench/storm.ts [--clients 10000] [--rounds 3] [--signal term|kill]
 *        [--rate 5] [--shutdown-timeout 30] [--workers 2] [--batch 200] [--timeout SECONDS] [--no-save]
 *        [--node-args=--max-semi-space-size=16]
 *
 * Each round starts fresh: a private redis-server on a free port (never 6379) and two gateway
 * instances A and B on it (cluster mode, every setting at its default but the per-address
 * limit, raised because every client comes from 127.0.0.1). `--clients` clients, each its own
 * user (`sub` storm-<i>), connect to A, sign in and subscribe to `signals`; a publisher posts
 * `--rate` events per second to B for the whole round. Then A is stopped (`--signal term`:
 * SIGTERM, the graceful drain with close 1012 spread over up to 5 s; `kill`: SIGKILL, a crash).
 * Every client reacts as the SDK does (src/client): the close code's action, then a delay from
 * the SDK's own `Backoff` (full jitter, first window 500 ms), then a connection to B, `hello`,
 * and `subscribe` with `since` {epoch, seq} of the last event it received; a refused attempt
 * backs off again. The clients live in `--workers` forked processes.
 *
 * `--shutdown-timeout` is A's WEBSOCKET_SHUTDOWN_TIMEOUT (30 s, the default), which bounds how
 * long A spreads its closes (a third of it, at most 10 s, about 2 ms per client). A comma-
 * separated list (`--shutdown-timeout 15,30`: 5 s and 10 s of spread for 10,000 clients) runs
 * one storm per value in each round, in alternating order, so they are compared side by side.
 *
 * Figures (per round, and medians over rounds):
 * - back 50 / 99 / 100 %: time from the signal until that share of the clients is
 *   resubscribed on B (its `subscribed` answer arrived);
 * - blind p50 / p90 / p99 / max: per client, from its close to its `subscribed` on B: what a
 *   trader does not see. `own wait` is the part the client spent in its own backoff delays;
 *   `gateway` is blind minus own wait: handshake, sign-in and resubscribe, queued behind the
 *   rest of the storm;
 * - attempts: connection attempts after the close (1 = the first one worked), refusals by why;
 * - integrity after the storm (publishing goes on 2 s after the last client is back, then
 *   stops and the clients drain): per client, every event from the one before its close to the
 *   last one acknowledged must arrive once and in order; lost, duplicated, out of order,
 *   `recovered: false` answers;
 * - B's CPU over the storm (cores), B's RSS and event-loop lag p99 (bench/probe.ts) after it,
 *   and how long A took to exit.
 *
 * The goal (docs/performance.md, "Reconnect storm"): every client back with nothing lost, and
 * blind ≤ 1.5 s at p99. The machine allows 20,000 open files per process, so 10,000 clients
 * on one instance is the largest storm it can run (A and B each hold them in turn).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { Backoff } from '../src/client/backoff.ts';
import { closeAction } from '../src/protocol/close-codes.ts';
import type { TestRedis } from '../test/support/redis.ts';
import { log, nodeArgsOf, parseCli, runMain, type SharedOptions } from './cli.ts';
import { BenchClient, channel, signToken, type Channel, type Handlers } from './client.ts';
import {
  count,
  machineCpu,
  mergeCounts,
  now,
  procCpuSeconds,
  procRssMb,
  quantile,
  sleep,
  tcpDelta,
  tcpExt,
  windowMarks,
  type Counts,
  type TcpCounters,
  type WindowStats,
} from './measure.ts';
import { publisher, type Published } from './publisher.ts';
import { environment, fx, median, saveResults, table } from './report.ts';
import {
  distBuilt,
  freePort,
  probeStats,
  redisServerVersion,
  startBenchRedis,
  startServer,
  stopServer,
  type Server,
} from './servers.ts';
import {
  endWorkers,
  forkWorker,
  fromParent,
  shares,
  toParent,
  workerEntry,
  type Message,
  type Ready,
  type Share,
  type Worker,
  type WorkerConfig,
} from './workers.ts';

const CHANNEL = 'signals';

/** Commands Redis has processed so far (INFO stats), or null. */
function redisCommands(port: number): number | null {
  try {
    const info = execFileSync('redis-cli', ['-p', String(port), 'info', 'stats'], {
      encoding: 'utf8',
      timeout: 5000,
    });
    return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? Number.NaN);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The worker: a share of the clients (forked by the orchestrator with `--worker storm`).

if (process.argv[2] === '--worker') workerEntry(stormWorker);
else orchestrate();

interface StormConfig extends WorkerConfig, Share {
  readonly urlA: string;
  readonly urlB: string;
  readonly jwtSecret: string;
}

/** One client's move, from its close on A to its `subscribed` on B. */
interface Move {
  readonly id: number;
  closeAt: number | null;
  backAt: number | null;
  /** Time spent in its own backoff delays. */
  ownWaitMs: number;
  attempts: number;
  failed: string | null;
  readonly backoff: Backoff;
  /** When its current attempt started. */
  startedAt: number;
  /** Of its last attempt, from its start: upgrade answered, welcome, subscribed. */
  phases: { open: number; welcome: number; subscribed: number };
}
type StormClient = BenchClient<Move>;

/** A client's figures in the `result`. */
interface ClientFigures {
  closeAt: number | null;
  backAt: number | null;
  ownWaitMs: number;
  attempts: number;
  phases: Move['phases'];
  short: number | null;
  lost: number;
  dup: number;
  ooo: number;
  notRecovered: number;
  failed: string | null;
}
interface StormResult extends Message {
  readonly type: 'result';
  readonly clients: ClientFigures[];
  readonly refusals: Counts;
  readonly closeCodes: Counts;
  readonly load: WindowStats | null;
}

/**
 * Messages from the parent: `storm` (A is being stopped: from now on a close sends the client
 * to B), `drain` ({lastSeq}: wait until every client has it) → `result`, `exit`.
 */
async function stormWorker(cfg: StormConfig): Promise<void> {
  const clients: StormClient[] = [];
  const refusals: Counts = {};
  const closeCodes: Counts = {};
  let storming = false;
  let back = 0;
  // This worker's CPU and event-loop utilization from the signal until its last client is back:
  // a saturated worker (ELU near 1) makes the clients, not the gateway, the bottleneck.
  const marks = windowMarks();

  const attach = (c: StormClient, url: string): void => {
    c.data.startedAt = now();
    c.connect(url);
  };
  const since = (c: StormClient, at: number): number => at - c.data.startedAt;

  // Events are counted by seq without parsing them (bench/client.ts, `seqOnly`), so the
  // clients' own work delays them less.
  const handlers: Handlers<Move> = {
    open: (c, at) => (c.data.phases.open = since(c, at)),
    welcome: (c, at) => (c.data.phases.welcome = since(c, at)),
    ready(c, at) {
      c.data.phases.subscribed = since(c, at);
      if (c.data.closeAt === null || c.data.backAt !== null) return;
      c.data.backAt = at;
      if (++back === clients.length) marks.end();
    },
    serverError: (_c, m) => count(refusals, `error ${m.code}`),
    error: (_c, why) => count(refusals, why),
    close(c, code, was) {
      if (was === 'ready') closed(c, code);
      else if (storming) retry(c, code, 'closed before subscribed');
      else c.data.failed = `closed ${code} before subscribed`;
    },
  };

  function closed(c: StormClient, code: number): void {
    count(closeCodes, String(code));
    if (!storming || c.data.closeAt !== null) {
      c.data.failed = `closed ${code} outside the storm`;
      return;
    }
    c.data.closeAt = now();
    retry(c, code, null);
  }

  /** Waits as the SDK would after `code`, then connects to B (resuming with `since`). */
  function retry(c: StormClient, code: number, why: string | null): void {
    if (why) count(refusals, why);
    const delay = c.data.backoff.next(closeAction(code) === 'backoff');
    c.data.ownWaitMs += delay;
    c.data.attempts++;
    setTimeout(() => attach(c, cfg.urlB), delay);
  }

  // Connect every client to A, `batch` handshakes in flight.
  let next = 0;
  const connectOne = async (i: number): Promise<void> => {
    const id = cfg.idBase + i;
    const c: StormClient = new BenchClient(
      {
        token: await signToken(cfg.jwtSecret, `storm-${id}`),
        channels: [channel(CHANNEL)],
        seqOnly: true,
        handshakeTimeoutMs: 10_000,
        data: {
          id,
          closeAt: null,
          backAt: null,
          ownWaitMs: 0,
          attempts: 0,
          failed: null,
          backoff: new Backoff(),
          startedAt: now(),
          phases: { open: 0, welcome: 0, subscribed: 0 },
        },
      },
      handlers,
    );
    clients.push(c);
    await c.open(cfg.urlA, 30_000).catch((err: Error) => {
      count(refusals, err.message);
      c.data.failed = err.message;
    });
  };
  await Promise.all(
    Array.from({ length: Math.min(cfg.batch, cfg.count) }, async () => {
      while (next < cfg.count) await connectOne(next++);
    }),
  );
  const ready = clients.filter((c) => c.channels[0]?.epoch !== null).length;
  toParent({
    type: 'ready',
    connected: ready,
    failed: cfg.count - ready,
    errors: refusals,
  } as Ready);

  const progress = setInterval(
    () => toParent({ type: 'progress', back, connected: back } as Message),
    100,
  );
  const last = (c: StormClient): Channel => c.channels[0] as Channel;
  fromParent<Message & { lastSeq?: number; timeoutMs?: number }>((m) => {
    if (m.type === 'storm') {
      storming = true;
      marks.start();
    } else if (m.type === 'drain') {
      void drain(m.lastSeq ?? 0, m.timeoutMs ?? 0);
    } else if (m.type === 'exit') process.exit(0);
  });

  async function drain(lastSeq: number, timeoutMs: number): Promise<void> {
    const deadline = now() + timeoutMs;
    while (now() < deadline && clients.some((c) => c.ws && last(c).seq < lastSeq)) await sleep(50);
    clearInterval(progress);
    toParent({
      type: 'result',
      clients: clients.map((c) => ({
        closeAt: c.data.closeAt,
        backAt: c.data.backAt,
        ownWaitMs: c.data.ownWaitMs,
        attempts: c.data.attempts,
        phases: c.data.phases,
        short: c.ws ? Math.max(0, lastSeq - last(c).seq) : null,
        lost: last(c).lost,
        dup: last(c).dup,
        // A client that keeps the last seq sees a late event as a repeat (counted in dup).
        ooo: 0,
        notRecovered: last(c).notRecovered,
        failed: c.data.failed,
      })),
      refusals,
      closeCodes,
      load: marks.stats,
    } as StormResult);
    for (const c of clients) c.terminate();
  }
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

function orchestrate() {
  const { argv, check, opt } = parseCli(
    import.meta.url,
    'storm.ts',
    {
      clients: { type: 'string', default: '10000' },
      signal: { type: 'string', default: 'term' },
      workers: { type: 'string', default: '2' },
      batch: { type: 'string', default: '200' },
      'shutdown-timeout': { type: 'string', default: '30' },
      'node-args': { type: 'string', default: '' },
    },
    { rate: '5', quietWait: '0', maxSize: 65_000 },
  );
  const clients = Number(argv.clients);
  const workers = Number(argv.workers);
  const batch = Number(argv.batch);
  const nodeArgs = nodeArgsOf(argv['node-args']);
  const shutdownTimeouts = argv['shutdown-timeout'].split(',').map(Number);
  check(
    shutdownTimeouts.every((t) => t >= 1 && t <= 300),
    '--shutdown-timeout: seconds 1..300, or a comma-separated list of them',
  );
  check(Number.isInteger(clients) && clients >= 1 && clients <= 10_000, '--clients: 1..10000');
  check(argv.signal === 'term' || argv.signal === 'kill', '--signal: term or kill');
  check(Number.isInteger(workers) && workers >= 1 && workers <= 8, '--workers: 1..8');
  check(Number.isInteger(batch) && batch >= 1 && batch <= 2000, '--batch: 1..2000');
  check(
    nodeArgs.every((a) => a.startsWith('--')),
    '--node-args: Node/V8 flags for both instances',
  );
  check(redisServerVersion() !== null, 'redis-server (Redis 7) is needed on the PATH');
  // Per round: three starts (≤ 30 s each), the connect (≥ 100 clients/s), 2 s of traffic,
  // the storm (≤ 60 s), 2 s more, the drain (≤ 15 s), the stops (≤ 10 s each).
  const perRound = 90 + Math.max(60, clients / 100) + 60 + 4 + 15 + 30;
  const hardBound = Number(
    argv.timeout ?? Math.ceil(perRound * opt.rounds * shutdownTimeouts.length + 30),
  );
  check(hardBound > 0, '--timeout: seconds > 0');

  runMain('storm', hardBound, async () => {
    distBuilt();
    const started = new Date();
    log(
      `reconnect storm: ${clients} clients move from A to B on SIG${argv.signal.toUpperCase()}, ` +
        `${opt.rate} events/s published, ${opt.rounds} round(s), hard bound ${hardBound} s`,
    );
    const rounds: Figures[] = [];
    for (let r = 1; r <= opt.rounds; r++) {
      const order = r % 2 === 1 ? shutdownTimeouts : [...shutdownTimeouts].reverse();
      for (const shutdownTimeout of order) {
        const result = await round(r, {
          clients,
          workers,
          batch,
          nodeArgs,
          opt,
          signal: argv.signal,
          shutdownTimeout,
        });
        rounds.push(result);
        log(roundLine(result));
      }
    }
    const variants = shutdownTimeouts.map((t) => rounds.filter((f) => f.shutdownTimeout === t));
    for (const v of variants) report(v, shutdownTimeouts.length > 1);
    if (!argv['no-save'])
      saveResults('storm-', started, {
        environment: environment({ redisServer: redisServerVersion() }),
        options: {
          clients,
          signal: argv.signal,
          rate: opt.rate,
          shutdownTimeouts,
          workers,
          batch,
          nodeArgs,
        },
        rounds,
        summary: variants.map((v) => ({ shutdownTimeout: v[0]?.shutdownTimeout, ...summarize(v) })),
      });
  });
}

interface RoundOptions {
  clients: number;
  workers: number;
  batch: number;
  nodeArgs: string[];
  opt: SharedOptions;
  signal: string;
  shutdownTimeout: number;
}

async function round(
  r: number,
  { clients, workers, batch, nodeArgs, opt, signal, shutdownTimeout }: RoundOptions,
): Promise<Figures> {
  const bound = 300;
  const jwtSecret = randomBytes(32).toString('base64url');
  const secrets = { jwtSecret, publishToken: randomBytes(24).toString('base64url') };
  const procs: Server[] = [];
  const kids: Worker[] = [];
  let redis: TestRedis | null = null;
  try {
    redis = await startBenchRedis(bound);
    const redisPort = redis.port;
    const env = (id: string): Record<string, string> => ({
      ARCHON_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      ARCHON_SERVER_ID: id,
      // Every client comes from 127.0.0.1: one office behind one NAT.
      WEBSOCKET_MAX_CONNECTIONS_PER_IP: '20000',
      WEBSOCKET_SHUTDOWN_TIMEOUT: String(shutdownTimeout),
    });
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startServer('archon', portA, secrets, {
      label: 'A',
      extraEnv: env('storm-a'),
      bound,
      nodeArgs,
    });
    procs.push(a);
    const b = await startServer('archon', portB, secrets, {
      label: 'B',
      extraEnv: env('storm-b'),
      bound,
      nodeArgs,
    });
    procs.push(b);

    const t0 = now();
    for (const share of shares(clients, workers, batch)) {
      kids.push(
        forkWorker(
          fileURLToPath(import.meta.url),
          'storm',
          {
            ...share,
            urlA: `ws://127.0.0.1:${portA}/api/v1/ws`,
            urlB: `ws://127.0.0.1:${portB}/api/v1/ws`,
            jwtSecret,
            lifetimeMs: bound * 1000,
          },
          log,
        ),
      );
    }
    const ready = await Promise.all(kids.map((w) => w.next<Ready>('ready', 120_000)));
    const connected = ready.reduce((n, x) => n + x.connected, 0);
    log(`round ${r}: ${connected}/${clients} clients on A in ${fx((now() - t0) / 1000, 1)} s`);
    if (connected < clients)
      throw new Error(`only ${connected} clients connected: ${JSON.stringify(ready[0]?.errors)}`);

    // Publish to B for the whole round; 2 s of traffic before the storm.
    const stop = { stopped: false };
    const pubStart = now() + 100;
    const publishing = publisher(
      `http://127.0.0.1:${portB}/api/v1/publish`,
      { rate: opt.rate, size: opt.size, channel: 'signals', publishToken: secrets.publishToken },
      pubStart,
      pubStart + 600_000,
      pubStart,
      pubStart,
      stop,
    );
    await sleep(2000);

    for (const w of kids) w.post({ type: 'storm' });
    await sleep(50); // the workers have the message before the first close can arrive
    await probeStats(b, { reset: true });
    const cpuBefore = procCpuSeconds(b.pid);
    const cpuABefore = procCpuSeconds(a.pid);
    const machineBefore = machineCpu();
    const tcpBefore = tcpExt();
    const redisBefore = redisCommands(redisPort);
    const signalAt = now();
    const aGone = new Promise<number>((resolve) => a.wrapper.once('exit', () => resolve(now())));
    process.kill(a.pid, signal === 'term' ? 'SIGTERM' : 'SIGKILL');
    const deadline = signalAt + 60_000;
    let cpuA = cpuABefore;
    while (now() < deadline) {
      cpuA = procCpuSeconds(a.pid) ?? cpuA; // until A is gone: its CPU over its drain
      const back = kids.reduce((n, w) => n + Number(w.progress.back ?? 0), 0);
      if (back >= clients) break;
      await sleep(50);
    }
    const stormSeconds = (now() - signalAt) / 1000;
    const cpuAfter = procCpuSeconds(b.pid);
    const cpuB =
      cpuAfter === null || cpuBefore === null ? null : (cpuAfter - cpuBefore) / stormSeconds;
    const machineAfter = machineCpu();
    const tcpAfter = tcpExt();
    const redisAfter = redisCommands(redisPort);
    const probeB = await probeStats(b);
    const aExitAt = await Promise.race([aGone, sleep(30_000).then(() => null)]);
    const aExitMs = aExitAt === null ? null : aExitAt - signalAt;
    await sleep(2000); // traffic after the storm
    stop.stopped = true;
    const pub = await publishing;
    const lastSeq = pub.ackedSeqs.at(-1) ?? 0;
    const results = await Promise.all(
      kids.map((w) => {
        w.post({ type: 'drain', lastSeq, timeoutMs: 15_000 } as Message);
        return w.next<StormResult>('result', 40_000);
      }),
    );
    const all = results.flatMap((x) => x.clients);
    return figures(r, shutdownTimeout, all, {
      signalAt,
      aExitMs,
      cpuB,
      cpuA: cpuA === null || cpuABefore === null ? null : (cpuA - cpuABefore) / stormSeconds,
      machineBusy:
        machineBefore && machineAfter
          ? (machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)
          : null,
      tcp: tcpDelta(tcpBefore, tcpAfter),
      rssB: procRssMb(b.pid),
      redisCommands: redisBefore === null || redisAfter === null ? null : redisAfter - redisBefore,
      lagP99B: probeB.lag?.p99 ?? null,
      pub,
      lastSeq,
      refusals: mergeCounts(results.map((x) => x.refusals)),
      closeCodes: mergeCounts(results.map((x) => x.closeCodes)),
      load: results.map((x) => x.load),
    });
  } finally {
    await endWorkers(kids);
    for (const s of procs.reverse()) await stopServer(s);
    await redis?.stop();
  }
}

/** One round's figures from every client's record. */
/** What a round measured besides the clients' own figures. */
interface RoundMeasures {
  signalAt: number;
  aExitMs: number | null;
  cpuB: number | null;
  cpuA: number | null;
  machineBusy: number | null;
  tcp: TcpCounters | null;
  rssB: number | null;
  redisCommands: number | null;
  lagP99B: number | null;
  pub: Published;
  lastSeq: number;
  refusals: Counts;
  closeCodes: Counts;
  load: (WindowStats | null)[];
}

type Figures = ReturnType<typeof figures>;

/** One round's figures from every client's record. */
function figures(r: number, shutdownTimeout: number, all: ClientFigures[], x: RoundMeasures) {
  // A client is back once it has both its close and its `subscribed` on B.
  const backs = all.filter(
    (c): c is ClientFigures & { backAt: number; closeAt: number } =>
      c.backAt !== null && c.closeAt !== null,
  );
  const sorted = (xs: number[]): number[] => xs.sort((p, q) => p - q);
  const backMs = sorted(backs.map((c) => c.backAt - x.signalAt));
  const blind = sorted(backs.map((c) => c.backAt - c.closeAt));
  const gateway = sorted(backs.map((c) => c.backAt - c.closeAt - c.ownWaitMs));
  const ownWait = sorted(backs.map((c) => c.ownWaitMs));
  const attempts: Counts = {};
  for (const c of all) count(attempts, String(c.attempts));
  const sum = (k: 'short' | 'lost' | 'dup' | 'ooo' | 'notRecovered'): number =>
    all.reduce((n, c) => n + (c[k] ?? 0), 0);
  return {
    round: r,
    shutdownTimeout,
    clients: all.length,
    back: backs.length,
    backMs: {
      p50: quantile(backMs, 0.5),
      p99: quantile(backMs, 0.99),
      p100: backMs.at(-1) ?? null,
    },
    blindMs: {
      p50: quantile(blind, 0.5),
      p90: quantile(blind, 0.9),
      p99: quantile(blind, 0.99),
      max: blind.at(-1) ?? null,
    },
    gatewayMs: { p50: quantile(gateway, 0.5), p99: quantile(gateway, 0.99) },
    // The last attempt of each client, from its start: the upgrade answered (open), the
    // welcome (sign-in done) and the subscribed answer (resume done).
    phasesMs: Object.fromEntries(
      (['open', 'welcome', 'subscribed'] as const).map((k) => {
        const xs = sorted(backs.map((c) => c.phases[k]));
        return [k, { p50: quantile(xs, 0.5), p99: quantile(xs, 0.99) }];
      }),
    ),
    ownWaitMs: { p50: quantile(ownWait, 0.5), p99: quantile(ownWait, 0.99) },
    attempts,
    refusals: x.refusals,
    closeCodes: x.closeCodes,
    integrity: {
      lost: sum('lost'),
      short: sum('short'),
      dup: sum('dup'),
      ooo: sum('ooo'),
      notRecovered: sum('notRecovered'),
      failed: all.filter((c) => c.failed !== null).length,
    },
    published: { acked: x.pub.acked, errors: x.pub.errors, lastSeq: x.lastSeq },
    aExitMs: x.aExitMs,
    // The clients' workers over the storm: cores and event-loop utilization of the busiest.
    load: {
      cores: Math.max(...x.load.map((l) => l?.cpuCores ?? 0)),
      elu: Math.max(...x.load.map((l) => l?.elu ?? 0)),
    },
    // The whole machine over the storm (busy share of all cores), A's cores until it exited,
    // and the kernel's listen-queue overflows and SYN retransmissions (a dropped SYN is
    // retried after 1 s).
    machineBusy: x.machineBusy,
    a: { cores: x.cpuA },
    // Redis commands over the storm (publishes included): resubscribes share history reads.
    redisCommands: x.redisCommands,
    tcp: x.tcp,
    b: { cores: x.cpuB, rssMb: x.rssB, lagP99Ms: x.lagP99B },
  };
}

const lossless = (f: Figures): boolean =>
  f.back === f.clients &&
  Object.values(f.integrity).every((n) => n === 0) &&
  Object.keys(f.published.errors).length === 0;

function roundLine(f: Figures): string {
  const i = f.integrity;
  return (
    `round ${f.round} (A's shutdown timeout ${f.shutdownTimeout} s): ${f.back}/${f.clients} back; blind p50 ${fx(f.blindMs.p50, 0)} ms, ` +
    `p99 ${fx(f.blindMs.p99, 0)} ms; lost ${i.lost + i.short}, dup ${i.dup}, ooo ${i.ooo}, ` +
    `recovered:false ${i.notRecovered}, failed ${i.failed}; attempts ${JSON.stringify(f.attempts)}` +
    `; last attempt p50/p99 ms: ${Object.entries(f.phasesMs)
      .map(([k, v]) => `${k} ${fx(v.p50, 0)}/${fx(v.p99, 0)}`)
      .join(', ')}` +
    (Object.keys(f.refusals).length ? `; refusals ${JSON.stringify(f.refusals)}` : '') +
    `; close codes ${JSON.stringify(f.closeCodes)}`
  );
}

function summarize(rounds: Figures[]) {
  const m = (pick: (f: Figures) => number | null): number | null => median(rounds.map(pick));
  return {
    back50Ms: m((f) => f.backMs.p50),
    back99Ms: m((f) => f.backMs.p99),
    back100Ms: m((f) => f.backMs.p100),
    blindP50Ms: m((f) => f.blindMs.p50),
    blindP99Ms: m((f) => f.blindMs.p99),
    gatewayP99Ms: m((f) => f.gatewayMs.p99),
    lossless: rounds.every(lossless),
  };
}

const secs = (ms: number | null): number | null => (ms === null ? null : ms / 1000);

function report(rounds: Figures[], titled: boolean): void {
  const s = summarize(rounds);
  const ms = (v: number | null): string => fx(v, 0);
  process.stdout.write(
    (titled ? `\nA's WEBSOCKET_SHUTDOWN_TIMEOUT ${rounds[0]?.shutdownTimeout} s:\n` : '') +
      `${table(
        [
          ['round', 5, (f) => f.round],
          ['back', 6, (f) => `${f.back}`],
          ['50 % s', 7, (f) => fx(secs(f.backMs.p50), 2)],
          ['99 % s', 7, (f) => fx(secs(f.backMs.p99), 2)],
          ['100 % s', 8, (f) => fx(secs(f.backMs.p100), 2)],
          ['blind p50', 9, (f) => ms(f.blindMs.p50)],
          ['p90', 5, (f) => ms(f.blindMs.p90)],
          ['p99', 5, (f) => ms(f.blindMs.p99)],
          ['max', 5, (f) => ms(f.blindMs.max)],
          ['own wait p50/p99', 16, (f) => `${ms(f.ownWaitMs.p50)} / ${ms(f.ownWaitMs.p99)}`],
          ['gateway p50/p99', 15, (f) => `${ms(f.gatewayMs.p50)} / ${ms(f.gatewayMs.p99)}`],
          ['lost', 4, (f) => f.integrity.lost + f.integrity.short],
          ['dup', 3, (f) => f.integrity.dup],
          ['unrec', 5, (f) => f.integrity.notRecovered],
          ['B cores', 7, (f) => fx(f.b.cores, 2)],
          ['B RSS MB', 8, (f) => fx(f.b.rssMb, 0)],
          ['B lag p99', 9, (f) => ms(f.b.lagP99Ms)],
          ['A exit s', 8, (f) => fx(secs(f.aExitMs), 1)],
          ['machine', 7, (f) => `${fx(f.machineBusy === null ? null : 100 * f.machineBusy, 0)} %`],
          ['A cores', 7, (f) => fx(f.a.cores, 2)],
          ['Redis cmds', 10, (f) => f.redisCommands ?? '—'],
          ['lsn ovf', 7, (f) => f.tcp?.listenOverflows ?? '—'],
          ['lg ELU', 6, (f) => fx(f.load.elu, 2) + (f.load.elu > 0.9 ? ' S' : '')],
        ],
        rounds,
      )}\n\n` +
      `median: back 50 % ${fx(secs(s.back50Ms), 2)} s, 99 % ${fx(secs(s.back99Ms), 2)} s, ` +
      `100 % ${fx(secs(s.back100Ms), 2)} s; blind p50 ${ms(s.blindP50Ms)} ms, p99 ` +
      `${ms(s.blindP99Ms)} ms (goal ≤ 1500), of which gateway p99 ${ms(s.gatewayP99Ms)} ms; ` +
      `${s.lossless ? 'every client back, nothing lost' : 'NOT LOSSLESS: see the rounds'}\n`,
  );
}
