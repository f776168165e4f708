/**
 * Abuse benchmark: 1,000 legitimate subscribers of archon-ws beside hostile connections of
 * several kinds. How much do the attackers hurt the legitimate users?
 *
 *   npm run build
 *   node_modules/.bin/node bench/abuse.ts [--legit 1000] [--rate 20] [--size 200] [--seconds 20]
 *        [--warmup 3] [--rounds 3] [--kinds preauth,garbage,oversize,replay,nonreader,health,flood,history]
 *        [--preauth 500] [--garbage 20] [--oversize 10] [--replay 20] [--nonreader 20]
 *        [--health 200] [--flood 10] [--history 5] [--legit-ips 20] [--workers 1] [--batch 100]
 *        [--reconnect-rate 200] [--replay-since oldest|zero] [--quiet-wait 5] [--quiet-below 0.25]
 *        [--timeout SECONDS] [--no-save]
 *   node_modules/.bin/node bench/abuse.ts --seconds 8 --rounds 1      # quick check (~1 min)
 *   node_modules/.bin/node bench/abuse.ts --kinds replay,history      # some kinds only
 *
 * Each round runs two phases, each on a fresh gateway (`bin/archon-ws.js serve --port P`, env
 * HOST=127.0.0.1, a random ARCHON_JWT_SECRET, ARCHON_PUBLISH_TOKENS, ARCHON_ADMIN_TOKENS,
 * LOG_LEVEL=warn, started like bench/run.ts's `archon` target) under the same legitimate load:
 * `quiet` (legitimate clients only) and `attack` (the same plus the attackers); the order
 * alternates per round. Per phase:
 *
 *   1. Publish 1,000 events to `signals` in one batch, so the channel's history is full.
 *   2. Connect the legitimate clients (forked worker process(es), bench/abuse-workers.ts), spread
 *      over the source addresses 127.0.1.1 … 127.0.1.<legit-ips>: WebSocket `archon.v1` → hello
 *      (JWT, sub legit-N) → welcome → subscribe signals → subscribed.
 *   3. attack: start the attackers (another worker process), each kind from its own address
 *      127.0.2.<k>, and wait until each attacker's first connection opened or failed (≤ 10 s).
 *   4. Publish `--rate` events/s (POST /api/v1/publish, ~`--size` B of data); `--warmup` s, then
 *      the measured window of `--seconds` s, then 1 s more. During it: GET /api/health every
 *      200 ms (from 127.0.1.1) and, on one legitimate client, {"op":"ping"} every 500 ms.
 *   5. At the window's start and end: gateway CPU (/proc), GET /metrics (prom-client resets its
 *      event-loop histogram at each scrape, so `nodejs_eventloop_lag_p99_seconds` at the end
 *      covers exactly the window; the archon_* counters are diffed), and at the end
 *      GET /api/v1/admin/websocket/status (its event_loop_lag_p99_ms covers the current minute)
 *      and the gateway's RSS.
 *   6. Stop the attackers, stop publishing, let the legitimate clients drain (≤ 10 s: until every
 *      client has every acknowledged event), count lost / duplicate / out-of-order events.
 *
 * Figures per phase: legit delivery latency (receive time − event `ts`; `ts` is whole ms, so up
 * to 1 ms of it is rounding) p50/p99 of the events received in the window, `e2e p99` (publish
 * request sent → received), client ping RTT p99, /api/health p99, event-loop lag p99 and max
 * (from /metrics; the admin one in the JSON), lost/dup/ooo and legit connections the server
 * closed, `lsn ovf` (TCP listen-queue overflows of the machine in the window, from
 * /proc/net/netstat), gateway CPU and RSS, and per attacker kind:
 * connections opened, refused (HTTP status), closed by the server and the close codes seen.
 * The summary gives medians over the rounds and the median of the per-round ratios
 * attack/quiet of the legit p99 (goal ≤ 1.5) and of the event-loop lag p99. JSON goes to
 * bench/results/abuse-<timestamp>.json (gitignored).
 *
 * Attacker kinds (count flag; all loops are bounded in time, reconnects of all kinds share one
 * token bucket of --reconnect-rate per second; traffic goes to 127.0.0.1 only):
 *   preauth   [500] upgrade, never send hello; reconnect when the server closes.
 *   garbage    [20] pre-auth, one malformed frame every 25 ms in turn: invalid JSON,
 *                   {"op":[[[…6000…]]]}, a 60 KB op string, a binary frame; reconnect.
 *   oversize   [10] a text frame just over 64 KiB (every 200 ms while open); reconnect.
 *   replay     [20] authenticated; after the first `subscribed` stops reading
 *                   (socket.pause()) and re-subscribes to signals with since {epoch, seq}
 *                   5 times a second; reconnect when closed. seq: with --replay-since oldest
 *                   (default) the oldest seq the history still holds, so every resubscribe
 *                   replays ~1,000 events; with `zero`, seq 0 — which replays only until the
 *                   first live publish pushes seq 1 out of the 1,000-event history, after
 *                   which the server answers recovered:false without replaying.
 *   nonreader  [20] authenticated subscriber of signals that stops reading after `subscribed`.
 *   health    [200] raw upgrade to /api/v1/ws/health; after the 101 never reads nor answers
 *                   the close; reconnect when the server drops the socket.
 *   flood      [10] authenticated, sends {"op":"ping"} as fast as the socket takes it.
 *   history     [5] GET /api/v1/history?channel=signals&since_seq=0 (user JWT), back to back.
 * Authenticating attackers use JWTs {"sub":"attacker-N","accounts":["*"]}, one per attacker.
 *
 * Bounded: a hard overall time bound (printed at start; --timeout changes it); children are
 * killed on exit, error, SIGINT and SIGTERM; each gateway runs under `timeout(1)` with one
 * phase's bound and the workers exit by themselves after it or when this process is gone.
 * A default run (3 rounds × 2 phases of ~35 s) takes about 3.5 minutes.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import process from 'node:process';
import { clearInterval, setInterval } from 'node:timers';
import { URL } from 'node:url';
import type { AttackConfig, Kind, KindFigures, LegitConfig, PingProbe } from './abuse-workers.ts';
import { log, parseCli, runMain } from './cli.ts';
import { mergeIntegrity } from './loadgen.ts';
import {
  latencyFigures,
  machineCpu,
  machineWindow,
  mergeCounts,
  mergeHist,
  now,
  percentiles,
  procCpuSeconds,
  procCpuTimes,
  procRssMb,
  quantile,
  sleep,
  sleepUntil,
  tcpDelta,
  tcpExt,
  type Counts,
  type CpuTimes,
  type MachineSample,
  type TcpCounters,
  type WindowStats,
} from './measure.ts';
import { publisher, type Published } from './publisher.ts';
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
  BENCH,
  distBuilt,
  freePort,
  httpGet,
  httpPost,
  staleDist,
  startServer,
  stopServer,
  type Server,
} from './servers.ts';
import type { SubscriberResult } from './subscribers.ts';
import {
  awaitSubscribed,
  drainWorkers,
  endWorkers,
  forkWorker,
  shares,
  startTimeline,
  type ConnectFigures,
  type Message,
  type Worker,
  type WorkerConfig,
} from './workers.ts';

const WORKER = path.join(BENCH, 'abuse-workers.ts');
const GOAL_RATIO = 1.5;
const CHANNEL = 'signals';
/** The gateway's default WEBSOCKET_HISTORY_SIZE: what the pre-publish fills. */
const HISTORY_SIZE = 1000;
const KINDS: Record<Kind, [count: number, address: string]> = {
  // kind: [default count, source address]
  preauth: [500, '127.0.2.1'],
  garbage: [20, '127.0.2.2'],
  oversize: [10, '127.0.2.3'],
  replay: [20, '127.0.2.4'],
  nonreader: [20, '127.0.2.5'],
  health: [200, '127.0.2.6'],
  flood: [10, '127.0.2.7'],
  history: [5, '127.0.2.8'],
};

// ---------------------------------------------------------------------------------------------
// Options
const {
  argv,
  check,
  opt: shared,
} = parseCli(
  import.meta.url,
  'abuse.ts',
  {
    legit: { type: 'string', default: '1000' },
    kinds: { type: 'string', default: Object.keys(KINDS).join(',') },
    ...Object.fromEntries(
      Object.entries(KINDS).map(([k, [n]]) => [k, { type: 'string', default: String(n) }]),
    ),
    'legit-ips': { type: 'string', default: '20' },
    workers: { type: 'string', default: '1' },
    batch: { type: 'string', default: '100' },
    'reconnect-rate': { type: 'string', default: '200' },
    'replay-since': { type: 'string', default: 'oldest' },
  },
  { rate: '20', quietWait: '5', maxSize: 60_000 },
);
const kinds = argv.kinds
  .split(',')
  .map((k) => k.trim())
  .filter(Boolean) as Kind[];
check(
  kinds.every((k) => k in KINDS),
  `--kinds: a comma-separated list of ${Object.keys(KINDS).join(', ')}`,
);
const opt = {
  ...shared,
  legit: Number(argv.legit),
  legitIps: Number(argv['legit-ips']),
  workers: Number(argv.workers),
  batch: Number(argv.batch),
  reconnectRate: Number(argv['reconnect-rate']),
  replaySince: argv['replay-since'],
  cooldown: 1,
  drain: 10,
  counts: Object.fromEntries(
    kinds.map((k) => [k, Number((argv as Record<string, unknown>)[k])]),
  ) as Partial<Record<Kind, number>>,
};
check(Number.isInteger(opt.legit) && opt.legit >= 1 && opt.legit <= 10_000, '--legit: 1..10000');
check(Number.isInteger(opt.legitIps) && opt.legitIps >= 1 && opt.legitIps <= 250, '--legit-ips');
check(Number.isInteger(opt.workers) && opt.workers >= 1 && opt.workers <= 4, '--workers: 1..4');
check(opt.batch >= 1 && opt.batch <= 1000, '--batch: 1..1000');
check(opt.reconnectRate > 0 && opt.reconnectRate <= 1000, '--reconnect-rate: 1..1000 per s');
check(['oldest', 'zero'].includes(opt.replaySince), '--replay-since: oldest or zero');
for (const [k, n] of Object.entries(opt.counts)) {
  check(Number.isInteger(n) && n >= 0 && n <= 5000, `--${k}: 0..5000`);
}
const LEGIT_IPS = Array.from({ length: opt.legitIps }, (_, i) => `127.0.1.${i + 1}`);
const attackCounts = Object.fromEntries(
  Object.entries(opt.counts).filter(([, n]) => n > 0),
) as Partial<Record<Kind, number>>;

// Hard bounds: one phase ≈ quiet wait + start + pre-publish + connect + attackers' ramp +
// warm-up + window + cool-down + drain + stop, with slack. Overridable with --timeout.
const phaseBound = Math.ceil(
  opt.quietWait +
    30 +
    10 +
    Math.max(30, opt.legit / 50) +
    15 +
    opt.warmup +
    opt.seconds +
    1 +
    10 +
    20,
);
const hardBound = argv.timeout ? Number(argv.timeout) : phaseBound * 2 * opt.rounds + 30;
check(hardBound > 0, '--timeout: seconds > 0');

// ---------------------------------------------------------------------------------------------
// Children: the gateway (servers.ts, under `timeout`) and the forked workers (workers.ts's
// forkWorker); runMain (at the end) kills them on exit, error, signals and at the hard bound.
const forkAbuseWorker = <C extends WorkerConfig>(role: string, cfg: C): Worker =>
  forkWorker(WORKER, role, cfg, (s) => log(`  ${s}`));

interface Secrets {
  jwtSecret: string;
  publishToken: string;
  adminToken: string;
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers
/** Fills the channel's history: HISTORY_SIZE events in one batch; resolves the last seq. */
async function prepublish(base: string, secrets: Secrets): Promise<number> {
  const pad = 'p'.repeat(Math.max(0, opt.size - 30));
  const events = Array.from({ length: HISTORY_SIZE }, (_, n) => ({
    channel: CHANNEL,
    data: { pre: n, pad },
  }));
  const r = await httpPost(
    `${base}/api/v1/publish`,
    { events },
    { authorization: `Bearer ${secrets.publishToken}` },
  );
  if (r.status !== 200) throw new Error(`pre-publish failed: HTTP ${r.status} ${r.body}`);
  const { results } = JSON.parse(r.body) as { results: { seq: number }[] };
  return results.at(-1)?.seq ?? 0;
}

/** GET /metrics → {lagP99Ms, counters: {name{labels}: value}} (null when it failed). */
interface Scrape {
  lagP99Ms: number | null;
  lagMaxMs: number | null;
  counters: Record<string, number>;
  ms: number;
}
async function scrapeMetrics(base: string): Promise<Scrape | null> {
  const t0 = now();
  const r = await httpGet(`${base}/metrics`, 10_000);
  if (r.status !== 200) return null;
  const counters: Record<string, number> = {};
  let lagP99Ms: number | null = null;
  let lagMaxMs: number | null = null;
  for (const line of r.body.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    const value = Number(line.slice(sp + 1));
    // name{a="x",server="…"} → name{a="x"}: the server label is the same on every line.
    const m = /^([^{]+)(?:\{(.*)\})?$/.exec(line.slice(0, sp));
    if (!m?.[1]) continue;
    const labels = (m[2] ?? '')
      .split(/,(?=[A-Za-z_]+=")/)
      .filter((l) => l && !l.startsWith('server='))
      .join(',');
    const key = labels ? `${m[1]}{${labels}}` : m[1];
    if (key.startsWith('nodejs_eventloop_lag_p99_seconds')) lagP99Ms = value * 1000;
    else if (key.startsWith('nodejs_eventloop_lag_max_seconds')) lagMaxMs = value * 1000;
    else if (key.startsWith('archon_') && /_total(\{|$)/.test(key)) counters[key] = value;
  }
  return { lagP99Ms, lagMaxMs, counters, ms: now() - t0 };
}

/** What this script reads of GET /api/v1/admin/websocket/status. */
interface AdminStatus {
  event_loop_lag_p99_ms?: number;
  memory?: { rss_bytes: number };
  active_connections?: number;
  queue_depth?: number;
}
async function adminStatus(base: string, secrets: Secrets): Promise<AdminStatus | null> {
  const r = await httpGet(`${base}/api/v1/admin/websocket/status`, 10_000, {
    authorization: `Bearer ${secrets.adminToken}`,
  });
  if (r.status !== 200) return null;
  try {
    return JSON.parse(r.body) as AdminStatus;
  } catch {
    return null;
  }
}

/**
 * GET /api/health every 200 ms from tStart to stopAt (one at a time: a tick while one is still
 * out counts as `late`); latencies of the requests sent in [A, B).
 */
interface HealthPolls {
  sent: number;
  ok: number;
  late: number;
  errors: Counts;
  latencies: number[];
}
async function healthPoller(
  base: string,
  tStart: number,
  stopAt: number,
  A: number,
  B: number,
): Promise<HealthPolls> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out: HealthPolls = { sent: 0, ok: 0, late: 0, errors: {}, latencies: [] };
  let inFlight: Promise<unknown> | null = null;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const t0 = now();
      out.sent++;
      const done = (why: string | null): void => {
        if (why) out.errors[why] = (out.errors[why] ?? 0) + 1;
        else {
          out.ok++;
          if (t0 >= A && t0 < B) out.latencies.push(now() - t0);
        }
        resolve();
      };
      const req = http.get(
        `${base}/api/health`,
        { agent, localAddress: LEGIT_IPS[0], timeout: 5000 },
        (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode === 200 ? null : `HTTP ${res.statusCode}`));
          res.on('error', () => done('response error'));
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e: NodeJS.ErrnoException) =>
        done(e.message === 'timeout' ? 'timeout' : (e.code ?? e.message)),
      );
    });
  for (let n = 0; ; n++) {
    const due = tStart + n * 200;
    if (due >= stopAt) break;
    if (due > now()) await sleep(due - now());
    if (inFlight) {
      out.late++;
      continue;
    }
    inFlight = one().then(() => (inFlight = null));
  }
  await inFlight;
  agent.destroy();
  return out;
}

/** Checks that this kernel lets us bind the loopback source addresses we use. */
async function checkSourceAddresses(): Promise<void> {
  for (const ip of [LEGIT_IPS[0] ?? '', LEGIT_IPS.at(-1) ?? '', '127.0.2.1']) {
    await new Promise<void>((resolve) => {
      const srv = net.createServer();
      srv.on('error', (err: NodeJS.ErrnoException) => {
        log(
          `abuse.ts: cannot bind source address ${ip} (${err.code}): this kernel does not route ` +
            '127.0.0.0/8 to loopback; per-IP limits cannot be exercised',
        );
        process.exit(2);
      });
      srv.listen(0, ip, () => srv.close(() => resolve()));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// One phase on a fresh gateway.
type Phase = 'quiet' | 'attack';

async function runPhase(phase: Phase, secrets: Secrets): Promise<PhaseFigures> {
  const quiet = await waitQuiet(opt, log);
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  log(`\n▶ ${phase} on 127.0.0.1:${port}`);
  const built = distBuilt();
  const tcp0 = tcpExt();
  const s = await startServer('archon', port, secrets, {
    label: `archon (${phase})`,
    bound: phaseBound,
    extraEnv: { ARCHON_ADMIN_TOKENS: secrets.adminToken },
  });
  let legit: Worker[] = [];
  let attacker: Worker | null = null;
  const workers = (): Worker[] => (attacker ? [...legit, attacker] : legit);
  let sinceTimer: NodeJS.Timeout | undefined;
  const stop = { stopped: false }; // ends the publisher early when the phase fails
  try {
    const preSeq = await prepublish(base, secrets);
    const lifetimeMs = phaseBound * 1000;

    // -- legitimate clients
    const t0 = now();
    const runSeconds = opt.warmup + opt.seconds + opt.cooldown;
    legit = shares(opt.legit, opt.workers, opt.batch).map((share, i) =>
      forkAbuseWorker('legit', {
        ...share,
        url: `ws://127.0.0.1:${port}/api/v1/ws`,
        secret: secrets.jwtSecret,
        ips: LEGIT_IPS,
        connectTimeoutMs: 20_000,
        expectedEvents: Math.ceil(opt.rate * (runSeconds + 5)) + 16,
        pingEveryMs: 500,
        probe: i === 0,
        lifetimeMs,
      } satisfies LegitConfig),
    );
    const connect = await awaitSubscribed(legit, {
      requested: opt.legit,
      t0,
      timeoutMs: Math.max(30, opt.legit / 50) * 1000,
      log,
      who: 'legit client',
    });

    // -- attackers
    let attackReady: AttackReady | null = null;
    if (phase === 'attack' && Object.keys(attackCounts).length) {
      attacker = forkAbuseWorker('attack', {
        port,
        secret: secrets.jwtSecret,
        counts: attackCounts,
        ips: Object.fromEntries(Object.entries(KINDS).map(([k, [, ip]]) => [k, ip])) as Record<
          Kind,
          string
        >,
        reconnectRate: opt.reconnectRate,
        rampRate: 500,
        replaySince: replaySeq(preSeq),
        maxHistoryRequests: 1_000_000,
        lifetimeMs,
      } satisfies AttackConfig);
      attackReady = await attacker.next<AttackReady>('ready', 30_000);
      log(
        `  attackers: ${attackReady.slots} started, ${attackReady.opened} connections opened ` +
          `after ${attackReady.seconds.toFixed(1)} s`,
      );
    }

    // -- timeline
    const { tStart, A, B, stopAt } = startTimeline(legit, opt);
    const pub = publisher(
      new URL('/api/v1/publish', base),
      { rate: opt.rate, size: opt.size, channel: CHANNEL, publishToken: secrets.publishToken },
      tStart,
      stopAt,
      A,
      B,
      stop,
    );
    // Replay attackers resume from the oldest seq still held (see the header): publishing runs
    // on an absolute schedule, so the newest seq is known from the time.
    if (attacker) {
      const worker = attacker;
      sinceTimer = setInterval(() => {
        const published = Math.max(0, Math.floor(((now() - tStart) * opt.rate) / 1000));
        worker.post({ type: 'since', since: replaySeq(preSeq + published) } as Message);
      }, 250);
    }
    const health = healthPoller(base, tStart, stopAt, A, B);
    const died = Promise.race(workers().map((w) => w.died));
    died.catch(() => {});
    const sample = (): Sample => ({
      t: now(),
      server: procCpuTimes(s.pid),
      machine: machineCpu(),
      workers: workers().map((w) => procCpuSeconds(w.pid)),
      self: process.cpuUsage(),
      tcp: tcpExt(),
    });

    await Promise.race([sleepUntil(A), died]);
    const sA = sample();
    for (const w of workers()) w.post({ type: 'mark-start' });
    const mA = await scrapeMetrics(base);
    log(`  warm-up done, measuring ${opt.seconds} s…`);
    await Promise.race([sleepUntil(B), died]);
    const sB = sample();
    for (const w of workers()) w.post({ type: 'mark-end' });
    const rssMb = procRssMb(s.pid);
    const [mB, status] = await Promise.all([scrapeMetrics(base), adminStatus(base, secrets)]);

    await Promise.race([sleepUntil(stopAt), died]);
    let attack: AttackResult | null = null;
    if (attacker) {
      clearInterval(sinceTimer);
      attacker.post({ type: 'stop' });
      // A stuck attack worker must not cost the legit figures: report it and go on.
      attack = await attacker.next<AttackResult>('result', 15_000).catch((err: unknown) => ({
        type: 'result' as const,
        kinds: {},
        window: null,
        error: err instanceof Error ? err.message : String(err),
      }));
    }
    const published = await Promise.race([pub, died]);
    const healthOut = await health;
    const results = await drainWorkers<LegitResult>(legit, published.ackedSeqs, opt.drain);
    await endWorkers(workers());
    const tcp = { window: tcpDelta(sA.tcp, sB.tcp), phase: tcpDelta(tcp0, tcpExt()) };
    // A gateway that died under attack is a result, not a benchmark failure: the legit figures
    // (closed connections, lost events) show what it cost; the exit and its log are reported.
    if (s.exited)
      log(`  ✗ the gateway EXITED during the ${phase} phase: ${JSON.stringify(s.exited)}`);
    return summarize({
      phase,
      port,
      built,
      quiet,
      connect,
      attackReady,
      attack,
      published,
      health: healthOut,
      results,
      sA,
      sB,
      mA,
      mB,
      status,
      rssMb,
      s,
      tcp,
    });
  } finally {
    stop.stopped = true;
    clearInterval(sinceTimer);
    await endWorkers(workers());
    await stopServer(s);
  }
}

/** The `since.seq` of the replay attackers when the newest seq of the channel is `latest`. */
function replaySeq(latest: number): number {
  if (opt.replaySince === 'zero') return 0;
  // The oldest seq held is latest − HISTORY_SIZE + 1; a second of margin keeps the resume
  // inside the history when an event lands between two resubscribes.
  return Math.max(0, latest - HISTORY_SIZE + Math.ceil(opt.rate) + 1);
}

interface AttackReady extends Message {
  readonly seconds: number;
  readonly opened: number;
  readonly slots: number;
}
interface AttackResult extends Message {
  readonly type: 'result';
  readonly kinds: Partial<Record<Kind, KindFigures>>;
  readonly window: WindowStats | null;
  readonly error?: string;
}
interface LegitResult extends SubscriberResult {
  readonly hist: Uint32Array;
  readonly e2eHist: Uint32Array;
  readonly worstTs: number[];
  readonly worstE2e: number[];
  readonly latencySum: number;
  readonly latencyMax: number;
  readonly probe: PingProbe | null;
}
interface Sample extends MachineSample {
  t: number;
  server: CpuTimes | null;
  workers: (number | null)[];
  tcp: TcpCounters | null;
}

type PhaseFigures = ReturnType<typeof summarize>;

function summarize(x: {
  phase: Phase;
  port: number;
  built: string | null;
  quiet: Awaited<ReturnType<typeof waitQuiet>>;
  connect: ConnectFigures;
  attackReady: AttackReady | null;
  attack: AttackResult | null;
  published: Published;
  health: HealthPolls;
  results: LegitResult[];
  sA: Sample;
  sB: Sample;
  mA: Scrape | null;
  mB: Scrape | null;
  status: AdminStatus | null;
  rssMb: number | null;
  s: Server;
  tcp: { window: TcpCounters | null; phase: TcpCounters | null };
}) {
  const { results, sA, sB, mA, mB, status } = x;
  const windowSeconds = (sB.t - sA.t) / 1000;
  const latencyMs = latencyFigures(mergeHist(results, 'hist'), results);
  const pe = percentiles(mergeHist(results, 'e2eHist'), [0.5, 0.99, 0.999]);
  // Worst latency per second since publishing started, over all legit workers (JSON only).
  const worst = (key: 'worstTs' | 'worstE2e'): number[] => {
    const out = (results[0]?.[key] ?? []).map((_, i) =>
      Math.max(...results.map((r) => r[key][i] ?? 0)),
    );
    while (out.length && out[out.length - 1] === 0) out.pop();
    return out.map((v) => Math.round(v * 10) / 10);
  };
  const integrity = {
    ...mergeIntegrity(results),
    closeCodes: mergeCounts(results.map((r) => r.closeCodes)),
    publishFailed: x.published.sent - x.published.acked,
  };
  const probe = results.find((r) => r.probe)?.probe ?? { sent: 0, answered: 0, late: 0, rtts: [] };
  const rtts = probe.rtts.sort((a, b) => a - b);
  const hl = x.health.latencies.sort((a, b) => a - b);
  const cpu = (a: number | null | undefined, b: number | null | undefined): number | null =>
    a !== null && a !== undefined && b !== null && b !== undefined ? (b - a) / windowSeconds : null;
  const gwCpu =
    sA.server && sB.server
      ? (sB.server.user + sB.server.sys - sA.server.user - sA.server.sys) / windowSeconds
      : null;
  // sA.workers / sB.workers: the legit workers, then the attack worker if any.
  const legitCores = results.map((_, i) => cpu(sA.workers[i], sB.workers[i]));
  const attackCores = x.attack ? cpu(sA.workers.at(-1), sB.workers.at(-1)) : null;
  // `other`: CPU used by anything but the gateway and this benchmark's processes (other
  // tenants, kernel threads); approximate, like bench/run.ts's.
  const machine = machineWindow(
    sA,
    sB,
    windowSeconds,
    [gwCpu, ...legitCores, attackCores].reduce<number>((a, c) => a + (c ?? 0), 0),
  );
  const legitElu = results.map((r) => r.window?.elu ?? null);
  const offeredPerSecond = x.connect.connected * opt.rate;
  const deliveredPerSecond = latencyMs.count / windowSeconds;
  // archon_* counters over the window.
  const counters: Record<string, number> = {};
  if (mA && mB) {
    for (const [k, v] of Object.entries(mB.counters)) {
      const d = v - (mA.counters[k] ?? 0);
      if (d) counters[k] = d;
    }
  }
  const round3 = (v: number | null | undefined): number | null =>
    v === null || v === undefined ? null : Math.round(v * 1000) / 1000;
  return {
    phase: x.phase,
    port: x.port,
    distBuilt: x.built,
    quiet: x.quiet,
    connect: x.connect,
    window: { seconds: windowSeconds },
    legit: {
      clients: x.connect.connected,
      deliveredPerSecond,
      offeredPerSecond,
      latencyMs,
      // Publish request sent → event received (includes the HTTP publish).
      endToEndMs: { p50: pe[0.5], p99: pe[0.99], p999: pe[0.999] },
      worstPerSecondMs: { ts: worst('worstTs'), endToEnd: worst('worstE2e') },
      integrity,
      serverPingsAnswered: results.reduce((a, r) => a + r.pongs, 0),
      serverErrors: mergeCounts(results.map((r) => r.serverErrors)),
      parseErrors: results.reduce((a, r) => a + r.parseErrors, 0),
    },
    ping: {
      sent: probe.sent,
      answered: probe.answered,
      late: probe.late,
      inWindow: rtts.length,
      p50: quantile(rtts, 0.5),
      p99: quantile(rtts, 0.99),
      max: rtts.at(-1) ?? null,
    },
    health: {
      sent: x.health.sent,
      ok: x.health.ok,
      late: x.health.late,
      errors: x.health.errors,
      inWindow: hl.length,
      p50: quantile(hl, 0.5),
      p99: quantile(hl, 0.99),
      max: hl.at(-1) ?? null,
    },
    eventLoopLag: {
      p99Ms: round3(mB?.lagP99Ms),
      maxMs: round3(mB?.lagMaxMs),
      adminP99Ms: status?.event_loop_lag_p99_ms ?? null,
      metricsScrapeMs: { start: round3(mA?.ms), end: round3(mB?.ms) },
    },
    gateway: {
      pid: x.s.pid,
      cpuCores: gwCpu,
      rssMb: x.rssMb,
      adminRssMb: status?.memory ? status.memory.rss_bytes / 2 ** 20 : null,
      activeConnections: status?.active_connections ?? null,
      queueDepth: status?.queue_depth ?? null,
      exited: x.s.exited, // {code, signal} when the gateway died during the phase
      logLines: x.s.logLines,
      logTail: x.s.logLines ? x.s.logTail.slice(-3000) : '',
      counters,
    },
    publish: { ...x.published, ackedSeqs: undefined },
    // Machine-wide: listen-queue overflows and SYN retransmits over the window and the phase.
    kernelTcp: x.tcp,
    loadgen: {
      legitCores,
      legitElu,
      attackCores,
      attackElu: x.attack?.window?.elu ?? null,
      coordinatorCores: machine.selfCores,
      machineBusy: machine.busy,
      machineCores: machine.cores,
      irqCores: machine.irqCores,
      otherCores: machine.otherCores,
      contended: machine.contended,
      saturated: legitElu.some((e) => e !== null && e > 0.9),
      behind: deliveredPerSecond < 0.95 * offeredPerSecond,
    },
    attackers: x.attack
      ? {
          ready: x.attackReady,
          kinds: x.attack.kinds,
          replaySince: opt.replaySince,
          error: x.attack.error ?? null,
        }
      : null,
  };
}

// ---------------------------------------------------------------------------------------------
// Reporting
const COLUMNS: Column<PhaseFigures>[] = [
  ['phase', 7, (r) => r.phase],
  ['legit', 10, (r) => `${r.connect.connected}/${r.connect.requested}`],
  ['deliv/s', 8, (r) => fx(r.legit.deliveredPerSecond, 0)],
  ['p50 ms', 7, (r) => fx(r.legit.latencyMs.p50)],
  ['p99 ms', 8, (r) => fx(r.legit.latencyMs.p99)],
  ['e2e p99', 8, (r) => fx(r.legit.endToEndMs.p99)],
  ['ping p99', 9, (r) => fx(r.ping.p99)],
  ['health p99', 11, (r) => fx(r.health.p99)],
  ['lag p99', 8, (r) => fx(r.eventLoopLag.p99Ms)],
  ['lag max', 8, (r) => fx(r.eventLoopLag.maxMs, 0)],
  ['lost', 6, (r) => String(r.legit.integrity.lost)],
  ['dup', 5, (r) => String(r.legit.integrity.dup)],
  ['ooo', 5, (r) => String(r.legit.integrity.ooo)],
  ['closed', 7, (r) => String(r.legit.integrity.closedDuringRun)],
  ['lsn ovf', 8, (r) => String(r.kernelTcp?.window?.listenOverflows ?? '—')],
  ['gw cores', 9, (r) => fx(r.gateway.cpuCores)],
  ['RSS MB', 7, (r) => fx(r.gateway.rssMb, 0)],
  [
    'lg cores',
    10,
    (r) =>
      [...r.loadgen.legitCores, ...(r.loadgen.attackCores === null ? [] : [r.loadgen.attackCores])]
        .map((c) => fx(c))
        .join('/'),
  ],
  ['other', 6, (r) => fx(r.loadgen.otherCores === null ? null : Math.max(0, r.loadgen.otherCores))],
  ['machine', 8, (r) => `${fx((r.loadgen.machineBusy ?? 0) * 100, 0)}%`],
  ['flags', 6, flags],
];
/** C: contended (other processes used > 0.25 core or machine > 95 % busy); S: the legit
 * clients' worker was saturated (ELU > 0.9); B: behind (legit deliveries in the window < 95 %
 * of the offered load). */
function flags(r: PhaseFigures): string {
  const l = r.loadgen;
  return (l.contended ? 'C' : '') + (l.saturated ? 'S' : '') + (l.behind ? 'B' : '') || '-';
}
const clean = (r: PhaseFigures | undefined): boolean =>
  r !== undefined && !r.loadgen.contended && !r.loadgen.saturated;
/** The summary table: one row per phase ([name, medians and sums]). */
const SUMMARY_COLUMNS: Column<[string, PhaseSummary]>[] = [
  ['phase', 7, ([ph]) => ph],
  ['runs', 5, ([, s]) => s.runs],
  ['p50 ms', 7, ([, s]) => fx(s.p50Ms)],
  ['p99 ms', 8, ([, s]) => fx(s.p99Ms)],
  ['e2e p99', 8, ([, s]) => fx(s.e2eP99Ms)],
  ['ping p99', 9, ([, s]) => fx(s.pingP99Ms)],
  ['health p99', 11, ([, s]) => fx(s.healthP99Ms)],
  ['lag p99', 8, ([, s]) => fx(s.lagP99Ms)],
  ['lag max', 8, ([, s]) => fx(s.lagMaxMs, 0)],
  ['lost', 6, ([, s]) => s.lost],
  ['dup', 5, ([, s]) => s.dup],
  ['ooo', 5, ([, s]) => s.ooo],
  ['closed', 7, ([, s]) => s.legitClosed],
  ['gw cores', 9, ([, s]) => fx(s.gatewayCores)],
  ['RSS MB', 7, ([, s]) => fx(s.rssMb, 0)],
];
const topCounts = (obj: Counts | undefined, n = 4): string =>
  Object.entries(obj ?? {})
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k}×${v}`)
    .join(' ') || '-';
/** The attackers' figures per kind (one attack phase, or summed over several). */
function attackTable(kindsOut: Partial<Record<Kind, AttackerSummary>>): string {
  const heads = ['kind', 'n', 'opened', 'refused', 'closed', 'close codes', 'errors', 'sent'];
  const widths = [9, 5, 7, 17, 7, 28, 34, 9];
  const fmt = (cells: (string | number)[]): string[] =>
    cells.map((c, i) =>
      i === 0 ? String(c).padEnd(widths[i] ?? 0) : String(c).padStart(widths[i] ?? 0),
    );
  const rows = (Object.entries(kindsOut) as [Kind, AttackerSummary][]).map(([k, s]) => [
    k,
    s.slots,
    s.opened,
    topCounts(s.refused, 2),
    s.closedByServer,
    topCounts(s.closeCodes),
    topCounts(s.errors, 2),
    s.sent,
  ]);
  return [fmt(heads).join(' '), ...rows.map((c) => fmt(c).join(' '))].join('\n');
}
/** A few server-side counters worth a line: disconnects, refusals, errors, recoveries. */
function counterLine(r: PhaseFigures): string {
  const c = r.gateway.counters;
  const pick = (name: string): string =>
    Object.entries(c)
      .filter(([k]) => k.startsWith(name))
      .map(([k, v]) => `${/\{(.*)\}/.exec(k)?.[1] ?? ''}=${v}`)
      .join(' ');
  const parts = (
    [
      ['disconnects', pick('archon_websocket_disconnects_total')],
      ['rejected', pick('archon_websocket_connections_rejected_total')],
      ['errors', pick('archon_websocket_errors_total')],
      ['recoveries', pick('archon_websocket_recoveries_total')],
    ] as const
  ).filter(([, v]) => v);
  return parts.map(([k, v]) => `${k}: ${v.replaceAll('"', '')}`).join('; ');
}

/** A phase's medians over the rounds (sums for the counts). */
interface PhaseSummary {
  runs: number;
  failedRuns: number;
  p50Ms: number | null;
  p99Ms: number | null;
  e2eP99Ms: number | null;
  publishHttpP99Ms: number | null;
  pingP99Ms: number | null;
  healthP99Ms: number | null;
  lagP99Ms: number | null;
  lagMaxMs: number | null;
  adminLagP99Ms: number | null;
  deliveredPerSecond: number | null;
  gatewayCores: number | null;
  rssMb: number | null;
  lost: number;
  dup: number;
  ooo: number;
  legitClosed: number;
  connectFailed: number;
  publishFailed: number;
  healthErrors: number;
  gatewayExits: number;
}
/** An attacker kind's figures summed over the attack phases. */
type AttackerSummary = Pick<
  KindFigures,
  'slots' | 'opened' | 'refused' | 'closedByServer' | 'closeCodes' | 'errors' | 'sent'
>;
interface Round {
  round: number;
  order: Phase[];
  runs: Partial<Record<Phase, PhaseFigures>>;
  errors: Partial<Record<Phase, string>>;
  /** attack/quiet: legit delivery p99 and event-loop lag p99. */
  p99Ratio: number | null;
  lagRatio: number | null;
}

async function main(): Promise<void> {
  const started = new Date();
  await checkSourceAddresses();
  const distWarning = staleDist();
  if (distWarning) log(`abuse.ts: WARNING: ${distWarning}`);
  const secrets = {
    jwtSecret: randomBytes(32).toString('base64url'),
    publishToken: randomBytes(24).toString('base64url'),
    adminToken: randomBytes(24).toString('base64url'),
  };
  const attackers = Object.entries(attackCounts)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  log(
    `archon-ws abuse benchmark: ${opt.legit} legit clients × ${opt.rate} msg/s × ${opt.size} B; ` +
      `attackers: ${attackers || 'none'}; warm-up ${opt.warmup} s + window ${opt.seconds} s, ` +
      `${opt.rounds} round(s); hard bound ${hardBound} s`,
  );
  const rounds: Round[] = [];
  for (let i = 0; i < opt.rounds; i++) {
    const order: Phase[] = i % 2 === 0 ? ['quiet', 'attack'] : ['attack', 'quiet'];
    const round: Round = {
      round: i + 1,
      order,
      runs: {},
      errors: {},
      p99Ratio: null,
      lagRatio: null,
    };
    for (const phase of order) {
      try {
        round.runs[phase] = await runPhase(phase, secrets);
      } catch (err) {
        const e = err instanceof Error ? err.message : String(err);
        round.errors[phase] = e;
        log(`  ✗ ${phase} failed: ${e}`);
      }
      await sleep(1000); // let sockets and the machine settle between gateways
    }
    const q = round.runs.quiet;
    const a = round.runs.attack;
    const ratio = (f: (r: PhaseFigures) => number | null): number | null => {
      const num = a ? f(a) : null;
      const den = q ? f(q) : null;
      return typeof num === 'number' && typeof den === 'number' && den > 0 ? num / den : null;
    };
    round.p99Ratio = ratio((r) => r.legit.latencyMs.p99);
    round.lagRatio = ratio((r) => r.eventLoopLag.p99Ms);
    rounds.push(round);
    const rows = order.map((ph) => round.runs[ph]).filter((r) => r !== undefined);
    let text = `\nround ${i + 1} (order: ${order.join(' → ')})\n${table(COLUMNS, rows)}\n`;
    for (const r of rows) {
      if (r.gateway.exited) {
        text += `${r.phase}: THE GATEWAY EXITED during the phase (${JSON.stringify(r.gateway.exited)}); log tail in the JSON\n`;
      }
      const line = counterLine(r);
      if (line) text += `${r.phase} gateway counters: ${line}\n`;
      if (r.attackers?.error) text += `${r.phase}: attack worker: ${r.attackers.error}\n`;
    }
    if (a?.attackers) text += `attackers (attack phase):\n${attackTable(a.attackers.kinds)}\n`;
    if (round.p99Ratio !== null) {
      text +=
        `legit p99 attack/quiet: ${fx(round.p99Ratio, 2)}; ` +
        `event-loop lag p99 attack/quiet: ${fx(round.lagRatio, 2)}\n`;
    }
    for (const [ph, e] of Object.entries(round.errors)) {
      text += `${ph}: FAILED — ${e.split('\n')[0] ?? ''}\n`;
    }
    process.stdout.write(text);
  }

  // Summary: medians over rounds.
  const phases: Partial<Record<Phase, PhaseSummary>> = {};
  for (const ph of ['quiet', 'attack'] as const) {
    const rs = rounds.map((r) => r.runs[ph]).filter((r) => r !== undefined);
    if (!rs.length) continue;
    const sum = (f: (r: PhaseFigures) => number): number => rs.reduce((acc, r) => acc + f(r), 0);
    phases[ph] = {
      runs: rs.length,
      failedRuns: rounds.length - rs.length,
      p50Ms: median(rs.map((r) => r.legit.latencyMs.p50)),
      p99Ms: median(rs.map((r) => r.legit.latencyMs.p99)),
      e2eP99Ms: median(rs.map((r) => r.legit.endToEndMs.p99)),
      publishHttpP99Ms: median(rs.map((r) => r.publish.httpP99)),
      pingP99Ms: median(rs.map((r) => r.ping.p99)),
      healthP99Ms: median(rs.map((r) => r.health.p99)),
      lagP99Ms: median(rs.map((r) => r.eventLoopLag.p99Ms)),
      lagMaxMs: median(rs.map((r) => r.eventLoopLag.maxMs)),
      adminLagP99Ms: median(rs.map((r) => r.eventLoopLag.adminP99Ms)),
      deliveredPerSecond: median(rs.map((r) => r.legit.deliveredPerSecond)),
      gatewayCores: median(rs.map((r) => r.gateway.cpuCores)),
      rssMb: median(rs.map((r) => r.gateway.rssMb)),
      lost: sum((r) => r.legit.integrity.lost),
      dup: sum((r) => r.legit.integrity.dup),
      ooo: sum((r) => r.legit.integrity.ooo),
      legitClosed: sum((r) => r.legit.integrity.closedDuringRun),
      connectFailed: sum((r) => r.connect.failed),
      publishFailed: sum((r) => r.legit.integrity.publishFailed),
      healthErrors: sum((r) => Object.values(r.health.errors).reduce((a, b) => a + b, 0)),
      gatewayExits: rs.filter((r) => r.gateway.exited).length,
    };
  }
  // Attackers summed over the attack phases.
  const attackRuns = rounds
    .map((r) => r.runs.attack?.attackers?.kinds)
    .filter((k) => k !== undefined);
  const attackerSums: Partial<Record<Kind, AttackerSummary>> = {};
  for (const kind of Object.keys(attackCounts) as Kind[]) {
    const ks = attackRuns.map((k) => k[kind]).filter((k) => k !== undefined);
    const first = ks[0];
    if (!first) continue;
    const total = (f: (k: KindFigures) => number): number => ks.reduce((acc, k) => acc + f(k), 0);
    attackerSums[kind] = {
      slots: first.slots,
      opened: total((k) => k.opened),
      refused: mergeCounts(ks.map((k) => k.refused)),
      closedByServer: total((k) => k.closedByServer),
      closeCodes: mergeCounts(ks.map((k) => k.closeCodes)),
      errors: mergeCounts(ks.map((k) => k.errors)),
      sent: total((k) => k.sent),
    };
  }
  const ratios = rounds.map((r) => r.p99Ratio).filter((x) => x !== null);
  const lagRatios = rounds.map((r) => r.lagRatio).filter((x) => x !== null);
  // Rounds where neither phase was contended nor had a saturated load generator.
  const cleanRatios = rounds
    .filter((r) => clean(r.runs.quiet) && clean(r.runs.attack))
    .map((r) => r.p99Ratio)
    .filter((x) => x !== null);
  const summary = {
    phases,
    attackers: attackerSums,
    p99Ratios: ratios,
    p99Ratio: median(ratios),
    cleanP99Ratios: cleanRatios,
    cleanP99Ratio: median(cleanRatios),
    disturbedRuns: rounds.flatMap((r) => Object.values(r.runs)).filter((r) => !clean(r)).length,
    lagRatios,
    lagRatio: median(lagRatios),
    verdict: '',
  };
  const att = summary.phases.attack;
  const legitWhole =
    att &&
    att.lost === 0 &&
    att.dup === 0 &&
    att.legitClosed === 0 &&
    att.connectFailed === 0 &&
    att.gatewayExits === 0;
  summary.verdict = att?.gatewayExits
    ? `FAIL: the gateway EXITED during ${att.gatewayExits} attack phase(s); ` +
      `legit p99 attack/quiet ${fx(summary.p99Ratio, 2)} is not meaningful`
    : summary.p99Ratio === null
      ? 'NOT EVALUATED (needs a quiet and an attack phase in the same round)'
      : `${summary.p99Ratio <= GOAL_RATIO && legitWhole ? 'PASS' : 'FAIL'}: legit p99 ` +
        `attack/quiet ${fx(summary.p99Ratio, 2)} (${summary.p99Ratio <= GOAL_RATIO ? '≤' : '>'} ` +
        `${GOAL_RATIO}), legit clients ${legitWhole ? 'got everything' : 'did NOT get everything (lost, duplicated, closed or refused)'}`;

  const builds = buildsUsed(rounds);
  const warnings = distWarning ? [distWarning] : [];
  if (builds > 1) {
    warnings.push(
      `dist/ was rebuilt during the benchmark: the phases used ${builds} different builds`,
    );
  }
  process.stdout.write(
    `\nsummary (medians over ${opt.rounds} round(s); lost/dup/ooo/closed summed)\n` +
      table(SUMMARY_COLUMNS, Object.entries(summary.phases)) +
      '\n' +
      (Object.keys(summary.attackers).length
        ? `attackers, summed over ${attackRuns.length} attack phase(s):\n${attackTable(summary.attackers)}\n`
        : '') +
      (ratios.length
        ? `legit delivery p99 attack/quiet: median ${fx(summary.p99Ratio, 2)} ` +
          `(rounds: ${ratios.map((v) => fx(v, 2)).join(', ')}; goal ≤ ${GOAL_RATIO})\n` +
          `event-loop lag p99 attack/quiet: median ${fx(summary.lagRatio, 2)} ` +
          `(rounds: ${lagRatios.map((v) => fx(v, 2)).join(', ')})\n`
        : '') +
      (summary.disturbedRuns
        ? `warning: ${summary.disturbedRuns} phase(s) flagged C/S (see the flags column): ` +
          (cleanRatios.length
            ? `over the ${cleanRatios.length} undisturbed round(s) the p99 ratio is ${fx(summary.cleanP99Ratio, 2)}\n`
            : 'no round was undisturbed: treat the ratio as approximate\n')
        : '') +
      warnings.map((w) => `warning: ${w}\n`).join('') +
      `${summary.verdict}\n`,
  );

  const result = {
    started: started.toISOString(),
    finished: new Date().toISOString(),
    params: { ...opt, kinds, legitIps: LEGIT_IPS, attackIps: KINDS, hardBound, phaseBound },
    warnings,
    environment: environment(),
    rounds,
    summary,
  };
  if (!argv['no-save']) saveResults('abuse-', started, result);
}

runMain('abuse.ts', hardBound, main);
