/**
 * Load generator of the benchmark (module and CLI).
 *
 * N WebSocket clients (split over forked worker processes, bench/subscribers.ts) do the
 * archon.v1 handshake (hello → welcome, subscribe → subscribed) on one channel; then a
 * publisher in this process (bench/publisher.ts) POSTs to /api/v1/publish at R msg/s with a
 * data object of ~S bytes of JSON carrying `t0` (wall clock: performance.timeOrigin +
 * performance.now()) and a publish counter `n`. Every client records each event: latency =
 * now − t0, and per-client `seq` bookkeeping (lost = acknowledged publishes never received,
 * duplicates, out of order).
 *
 * Timeline: connect → publishing starts → warm-up (excluded) → measured window → cool-down
 * (still publishing, so the window ends in steady state) → publishing stops → drain (wait until
 * every client has every acknowledged event, bounded) → results.
 *
 * CLI (against a running server):
 *   node_modules/.bin/node bench/loadgen.ts --url ws://127.0.0.1:8000/api/v1/ws \
 *     --clients 200 --seconds 5 [--jwt-secret S | --token JWT] [--publish-token T] [--pid P]
 *     [--publish-url http://127.0.0.1:8001/api/v1/publish]
 * `--pid` measures that process's CPU over the window (/proc/<pid>/stat). `--publish-url`
 * publishes to another server than the clients' (default: the clients' server).
 */
import process from 'node:process';
import { setTimeout } from 'node:timers';
import { URL, fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { signToken } from './client.ts';
import {
  HIST_SIZE,
  histIndex,
  latencyFigures,
  machineCpu,
  machineWindow,
  mergeCounts,
  mergeHist,
  now,
  procCpuSeconds,
  procCpuTimes,
  procRssMb,
  sleepUntil,
  type Counts,
  type CpuTimes,
  type LatencyFigures,
  type MachineSample,
} from './measure.ts';
import { publisher, type Published } from './publisher.ts';
import {
  subscriberWorker,
  type Integrity,
  type SubscriberConfig,
  type SubscriberResult,
} from './subscribers.ts';
import {
  awaitSubscribed,
  describe,
  drainWorkers,
  endWorkers,
  forkWorker,
  shares,
  startTimeline,
  workerEntry,
  type ConnectFigures,
} from './workers.ts';

const SELF = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------
// The worker: latency publish → receipt (now − data.t0) and receipts per ms.

interface LoadConfig extends SubscriberConfig {
  readonly token: string;
  /** How long the receipts per ms cover. */
  readonly maxMs: number;
}
interface LoadResult extends SubscriberResult {
  readonly hist: Uint32Array;
  readonly receipts: Uint32Array;
  readonly latencySum: number;
  readonly latencyMax: number;
  readonly negative: number;
}

function workerMain(cfg: LoadConfig): Promise<void> {
  const hist = new Uint32Array(HIST_SIZE);
  const receipts = new Uint32Array(Math.ceil(cfg.maxMs)); // unique receipts per ms since `start`
  let base = Infinity;
  let winA = Infinity;
  let winB = -Infinity;
  let negative = 0;
  let latencySum = 0;
  let latencyMax = 0;
  const pool = subscriberWorker(
    { ...cfg, client: 'bench/1' },
    {
      start(m) {
        base = m.base;
        winA = m.winA;
        winB = m.winB;
      },
      event(_c, msg, t) {
        const b = Math.floor(t - base);
        if (b >= 0 && b < receipts.length) receipts[b] = (receipts[b] ?? 0) + 1;
        if (t >= winA && t < winB) {
          const t0 = (msg.data as { t0?: unknown } | null)?.t0;
          if (typeof t0 === 'number') {
            const lat = t - t0;
            if (lat < 0) negative++;
            const i = histIndex(lat);
            hist[i] = (hist[i] ?? 0) + 1;
            latencySum += lat;
            if (lat > latencyMax) latencyMax = lat;
          }
        }
      },
      result: () => ({ hist, receipts, latencySum, latencyMax, negative }),
    },
  );
  return pool.connectAll(() => cfg.token);
}

// ---------------------------------------------------------------------------------------------
// Coordinator: forks the workers, publishes, measures the window, gathers results.

export interface LoadOptions {
  /** ws:// URL of the client endpoint. */
  url: string;
  /** 'socketio': the clients speak through Socket.IO (bench/dialect.ts). */
  target?: string;
  /** Default: same origin + /api/v1/publish. */
  publishUrl?: string;
  /** JWT sent in hello ('' for the reference servers). */
  token?: string;
  publishToken?: string;
  /** The process whose CPU is measured over the window. */
  serverPid?: number;
  /** Called at the start and the end of the window; what end() gives is the result's `probe`. */
  probe?: { start(): Promise<unknown>; end(): Promise<unknown> };
  /**
   * More processes (name → pid) whose CPU is measured over the same window, e.g. the
   * publishing instance and Redis of a cluster run; reported in `extra` and not counted as
   * `other`.
   */
  extraPids?: Record<string, number>;
  channel?: string;
  clients?: number;
  rate?: number;
  size?: number;
  warmup?: number;
  seconds?: number;
  cooldown?: number;
  drain?: number;
  workers?: number;
  batch?: number;
  connectTimeout?: number;
  log?: (line: string) => void;
}

interface Sample extends MachineSample {
  t: number;
  server: CpuTimes | null;
  extra: Record<string, CpuTimes | null>;
  workers: (number | null)[];
}

export interface CpuFigures {
  pid: number;
  cpuSeconds: number | null;
  cpuCores: number | null;
  cpuUsPerDelivery: number | null;
  sysShare?: number | null;
  rssMb?: number | null;
}

/** The figures of one load (bench/README.md, "Figures"). */
export interface LoadFigures {
  params: {
    url: string;
    channel: string;
    clients: number;
    rate: number;
    size: number;
    warmup: number;
    seconds: number;
    workers: number;
  };
  connect: ConnectFigures;
  window: { seconds: number; plannedSeconds: number };
  publish: Omit<Published, 'ackedSeqs'> & { ackedSeqs?: undefined };
  delivered: { inWindow: number; perSecond: number };
  latencyMs: LatencyFigures & { negative: number };
  integrity: Integrity & { parseErrors: number; publishFailed: number; complete: boolean };
  server: (CpuFigures & { logLines?: number; logTail?: string }) | null;
  extra: Record<string, CpuFigures>;
  loadgen: {
    workers: {
      pid: number;
      cpuCores: number | null;
      elu: number | null;
      sysShare: number | null;
    }[];
    coordinatorCpuCores: number;
    machineBusy: number | null;
    contended: boolean;
    keptUp: boolean;
    machineCores: number;
    irqCores: number | null;
    stealCores: number | null;
    otherCores: number | null;
    saturated: boolean;
    notes: string[];
    pongs: number;
    serverErrors: Counts;
  };
  timeline: number[];
  probe?: unknown;
}

type Settings = Required<
  Omit<LoadOptions, 'target' | 'publishUrl' | 'serverPid' | 'probe' | 'extraPids'>
> &
  LoadOptions;

/** Runs one load against a server; resolves with the figures (see bench/README.md). */
export async function runLoad(o: LoadOptions): Promise<LoadFigures> {
  const opt: Settings = {
    channel: 'signals',
    clients: 5000,
    rate: 10,
    size: 200,
    warmup: 3,
    seconds: 20,
    cooldown: 1,
    drain: 10,
    workers: 2,
    batch: 200,
    connectTimeout: 20,
    token: '',
    publishToken: '',
    log: (s) => process.stderr.write(`${s}\n`),
    ...o,
  };
  const publishUrl = new URL(opt.publishUrl ?? '/api/v1/publish', opt.url.replace(/^ws/, 'http'));
  const nWorkers = Math.max(1, Math.min(opt.workers, opt.clients));
  const runSeconds = opt.warmup + opt.seconds + opt.cooldown;
  const expectedEvents = Math.ceil(opt.rate * runSeconds) + 16;
  // Receipt buckets cover the whole publish + drain time.
  const maxMs = (runSeconds + opt.drain + 30) * 1000;
  const connectDeadline = Math.max(60, opt.clients / 20) * 1000;

  const stop = { stopped: false }; // ends the publisher early when the run fails
  const workers = shares(opt.clients, nWorkers, opt.batch).map((share) =>
    forkWorker(
      SELF,
      'loadgen',
      {
        ...share,
        url: opt.url,
        target: opt.target,
        token: opt.token,
        channel: opt.channel,
        client: 'bench/1',
        connectTimeoutMs: opt.connectTimeout * 1000,
        expectedEvents,
        maxMs,
        // A worker exits by itself after this long, whatever happens to this process.
        lifetimeMs: connectDeadline + maxMs + 60_000,
      } satisfies LoadConfig,
      opt.log,
    ),
  );
  try {
    const died = Promise.race(workers.map((w) => w.died));
    died.catch(() => {});
    const connect = await awaitSubscribed(workers, {
      requested: opt.clients,
      t0: now(),
      timeoutMs: connectDeadline,
      log: opt.log,
    });

    const { tStart, A, B, stopAt } = startTimeline(workers, opt);

    // -- publisher
    const pub = publisher(publishUrl, opt, tStart, stopAt, A, B, stop);
    // -- window marks
    const sample = (): Sample => ({
      t: now(),
      server: opt.serverPid ? procCpuTimes(opt.serverPid) : null,
      extra: Object.fromEntries(
        Object.entries(opt.extraPids ?? {}).map(([name, pid]) => [name, procCpuTimes(pid)]),
      ),
      machine: machineCpu(),
      workers: workers.map((w) => procCpuSeconds(w.pid)),
      self: process.cpuUsage(),
    });
    await Promise.race([sleepUntil(A), died]);
    const sA = sample();
    for (const w of workers) w.post({ type: 'mark-start' });
    const probing = opt.probe?.start().catch((err: unknown) => ({ error: describe(err) }));
    opt.log(`  warm-up done, measuring ${opt.seconds} s…`);
    await Promise.race([sleepUntil(B), died]);
    const sB = sample();
    for (const w of workers) w.post({ type: 'mark-end' });
    await probing;
    const probe = await opt.probe?.end().catch((err: unknown) => ({ error: describe(err) }));
    const published = await Promise.race([pub, died]);

    // -- drain and gather
    const results = await drainWorkers<LoadResult>(workers, published.ackedSeqs, opt.drain);
    const r = summarize({ opt, connect, published, results, sA, sB, tStart, A, B, workers });
    r.probe = probe ?? null;
    return r;
  } finally {
    stop.stopped = true;
    await endWorkers(workers);
  }
}

/** The workers' integrity figures summed (drainSeconds: the longest drain). */
export function mergeIntegrity(results: readonly { integrity: Integrity }[]): Integrity {
  const integrity = { ...(results[0] as { integrity: Integrity }).integrity };
  for (const key of Object.keys(integrity) as (keyof Integrity)[]) {
    integrity[key] =
      key === 'drainSeconds'
        ? Math.max(...results.map((r) => r.integrity[key]))
        : results.reduce((a, r) => a + r.integrity[key], 0);
  }
  return integrity;
}

/** CPU of a process over the window (two procCpuTimes samples), also per delivery. */
function cpuFigures(
  pid: number,
  a: CpuTimes,
  b: CpuTimes,
  windowSeconds: number,
  delivered: number,
): CpuFigures {
  const sys = b.sys - a.sys;
  const cpuSeconds = b.user - a.user + sys;
  return {
    pid,
    cpuSeconds,
    cpuCores: cpuSeconds / windowSeconds,
    cpuUsPerDelivery: delivered > 0 ? (cpuSeconds * 1e6) / delivered : null,
    sysShare: cpuSeconds > 0 ? sys / cpuSeconds : null,
    rssMb: procRssMb(pid),
  };
}

function summarize(x: {
  opt: Settings;
  connect: ConnectFigures;
  published: Published;
  results: LoadResult[];
  sA: Sample;
  sB: Sample;
  tStart: number;
  A: number;
  B: number;
  workers: readonly { pid: number }[];
}): LoadFigures {
  const { opt, connect, published, results, sA, sB, tStart, A, B, workers } = x;
  const hist = mergeHist(results, 'hist');
  const receipts = new Uint32Array(results[0]?.receipts.length ?? 0);
  for (const r of results)
    for (let i = 0; i < receipts.length; i++)
      receipts[i] = (receipts[i] ?? 0) + (r.receipts[i] ?? 0);
  // Deliveries received while the CPU was being measured: [sA.t, sB.t) on the 1 ms buckets.
  let delivered = 0;
  for (let i = Math.max(0, Math.round(sA.t - tStart)); i < Math.round(sB.t - tStart); i++) {
    delivered += receipts[i] ?? 0;
  }
  const windowSeconds = (sB.t - sA.t) / 1000;
  const timeline: number[] = [];
  for (let s = 0; s * 1000 < receipts.length; s++) {
    let sum = 0;
    for (let i = s * 1000; i < Math.min(receipts.length, (s + 1) * 1000); i++)
      sum += receipts[i] ?? 0;
    timeline.push(sum);
  }
  while (timeline.length && timeline[timeline.length - 1] === 0) timeline.pop();

  const merged = mergeIntegrity(results);
  const publishFailed = published.sent - published.acked;
  const integrity = {
    ...merged,
    parseErrors: results.reduce((a, r) => a + r.parseErrors, 0),
    publishFailed,
    complete:
      merged.lost === 0 &&
      merged.dup === 0 &&
      merged.closedDuringRun === 0 &&
      publishFailed === 0 &&
      connect.failed === 0,
  };

  const wk = workers.map((w, i) => {
    const a = sA.workers[i] ?? null;
    const b = sB.workers[i] ?? null;
    return {
      pid: w.pid,
      cpuCores: a !== null && b !== null ? (b - a) / windowSeconds : null,
      elu: results[i]?.window?.elu ?? null,
      sysShare: results[i]?.window?.sysShare ?? null,
    };
  });
  const notes: string[] = [];
  const maxElu = Math.max(...wk.map((w) => w.elu ?? 0));
  const maxCores = Math.max(...wk.map((w) => w.cpuCores ?? 0));
  const saturated = maxElu > 0.9 || maxCores > 0.9;
  if (saturated) {
    notes.push(
      `load generator saturated (worker event loop ${(maxElu * 100).toFixed(0)} % busy, ` +
        `${maxCores.toFixed(2)} cores): latency and possibly delivery rate are bounded by the clients`,
    );
  }
  const server =
    opt.serverPid && sA.server && sB.server
      ? cpuFigures(opt.serverPid, sA.server, sB.server, windowSeconds, delivered)
      : null;
  // The other measured processes (cluster run: the publishing instance and Redis), over the
  // same window and per delivery counted in it, like the server.
  const extra: Record<string, CpuFigures> = {};
  for (const [name, pid] of Object.entries(opt.extraPids ?? {})) {
    const a = sA.extra[name];
    const b = sB.extra[name];
    extra[name] =
      a && b
        ? cpuFigures(pid, a, b, windowSeconds, delivered)
        : { pid, cpuSeconds: null, cpuCores: null, cpuUsPerDelivery: null };
  }
  // Interrupt time (mostly the loopback network stack: it is not charged to any process) and
  // CPU used by anything but the server and the load generator (other tenants, kernel threads):
  // shows how noisy the measurement was.
  const machine = machineWindow(
    sA,
    sB,
    windowSeconds,
    [server, ...Object.values(extra), ...wk].reduce((acc, w) => acc + (w?.cpuCores ?? 0), 0),
  );
  if (machine.busy !== null && machine.busy > 0.9) {
    notes.push(
      `machine CPU ${(machine.busy * 100).toFixed(0)} % busy during the window ` +
        `(other processes ${(machine.otherCores ?? 0).toFixed(2)} cores, interrupts ${(machine.irqCores ?? 0).toFixed(2)}): ` +
        'server and clients competed for cores',
    );
  }
  const offered = connect.connected * opt.rate;
  const keptUp = delivered / windowSeconds >= 0.95 * offered;
  if (!keptUp) {
    notes.push(
      `delivery rate ${(delivered / windowSeconds).toFixed(0)}/s is below the offered ${offered}/s: ` +
        'the system did not keep up during the window (events queued, latency grew)',
    );
  }
  if (published.late > 0) notes.push(`publisher fell behind schedule ${published.late} times`);

  return {
    params: {
      url: opt.url,
      channel: opt.channel,
      clients: opt.clients,
      rate: opt.rate,
      size: opt.size,
      warmup: opt.warmup,
      seconds: opt.seconds,
      workers: workers.length,
    },
    connect,
    window: { seconds: windowSeconds, plannedSeconds: (B - A) / 1000 },
    publish: { ...published, ackedSeqs: undefined },
    delivered: { inWindow: delivered, perSecond: delivered / windowSeconds },
    latencyMs: {
      ...latencyFigures(hist, results),
      negative: results.reduce((a, r) => a + r.negative, 0),
    },
    integrity,
    server,
    extra,
    loadgen: {
      workers: wk,
      coordinatorCpuCores: machine.selfCores,
      machineBusy: machine.busy,
      contended: machine.contended,
      keptUp,
      machineCores: machine.cores,
      irqCores: machine.irqCores,
      stealCores: machine.stealCores,
      otherCores: machine.otherCores,
      saturated,
      notes,
      pongs: results.reduce((a, r) => a + r.pongs, 0),
      serverErrors: mergeCounts(results.map((r) => r.serverErrors)),
    },
    timeline,
  };
}

// ---------------------------------------------------------------------------------------------
// CLI
async function cliMain(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      clients: { type: 'string', default: '200' },
      rate: { type: 'string', default: '10' },
      size: { type: 'string', default: '200' },
      warmup: { type: 'string', default: '3' },
      seconds: { type: 'string', default: '20' },
      workers: { type: 'string', default: '2' },
      batch: { type: 'string', default: '200' },
      channel: { type: 'string', default: 'signals' },
      token: { type: 'string' },
      'jwt-secret': { type: 'string' },
      'publish-token': { type: 'string', default: '' },
      'publish-url': { type: 'string' },
      pid: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.url) {
    process.stderr.write(
      'usage: loadgen.ts --url ws://127.0.0.1:PORT/api/v1/ws [--clients N] [--rate R] [--size S]\n' +
        '       [--seconds T] [--warmup W] [--workers K]\n' +
        '       [--token JWT | --jwt-secret S]\n' +
        '       [--publish-token T] [--publish-url http://HOST:PORT/api/v1/publish]\n' +
        '       [--pid SERVER_PID] [--json]\n',
    );
    process.exit(2);
  }
  const opts = {
    url: values.url,
    clients: Number(values.clients),
    rate: Number(values.rate),
    size: Number(values.size),
    warmup: Number(values.warmup),
    seconds: Number(values.seconds),
    workers: Number(values.workers),
    batch: Number(values.batch),
    channel: values.channel,
    publishToken: values['publish-token'],
    publishUrl: values['publish-url'],
    token: values.token ?? (values['jwt-secret'] ? await signToken(values['jwt-secret']) : ''),
    serverPid: values.pid ? Number(values.pid) : undefined,
  };
  if (!(opts.clients > 0 && opts.clients <= 20_000)) throw new Error('--clients must be 1..20000');
  if (!(opts.seconds > 0 && opts.seconds <= 600)) throw new Error('--seconds must be 1..600');
  if (!(opts.rate > 0 && opts.rate <= 1000)) throw new Error('--rate must be 1..1000 msg/s');
  const bound = (opts.warmup + opts.seconds + 180 + opts.clients / 20) * 1000;
  setTimeout(() => {
    process.stderr.write('loadgen: overall time bound reached, exiting\n');
    process.exit(124);
  }, bound).unref();
  const r = await runLoad(opts);
  if (values.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else process.stdout.write(`${formatResult(r)}\n`);
  process.exit(0);
}

export function formatResult(r: LoadFigures): string {
  const f = (x: number | null | undefined, d = 2): string =>
    x === null || x === undefined ? '—' : Number(x).toFixed(d);
  const lines = [
    `clients ${r.connect.connected}/${r.connect.requested}, window ${f(r.window.seconds, 1)} s, published ${r.publish.acked}/${r.publish.sent} (http p50 ${f(r.publish.httpP50)} ms, p99 ${f(r.publish.httpP99)} ms)`,
    `delivered ${f(r.delivered.perSecond, 0)} msg/s (${r.delivered.inWindow} in window)`,
    `latency p50 ${f(r.latencyMs.p50)} ms, p90 ${f(r.latencyMs.p90)} ms, p99 ${f(r.latencyMs.p99)} ms, p99.9 ${f(r.latencyMs.p999)} ms, max ${f(r.latencyMs.max)} ms`,
    `integrity: expected ${r.integrity.expected}, lost ${r.integrity.lost}, dup ${r.integrity.dup}, out-of-order ${r.integrity.ooo}, closed ${r.integrity.closedDuringRun} (drain ${f(r.integrity.drainSeconds)} s) → ${r.integrity.complete ? 'complete' : 'INCOMPLETE'}`,
    `loadgen: workers ${r.loadgen.workers.map((w) => `${f(w.cpuCores)} cores/ELU ${f(w.elu)}`).join(', ')}; machine ${f((r.loadgen.machineBusy ?? 0) * 100, 0)} % busy`,
  ];
  if (r.server) {
    lines.push(
      `server pid ${r.server.pid}: ${f(r.server.cpuCores)} cores, ${f(r.server.cpuUsPerDelivery, 3)} µs CPU per delivery, RSS ${f(r.server.rssMb, 0)} MB`,
    );
  }
  for (const [name, e] of Object.entries(r.extra)) {
    lines.push(
      `${name} pid ${e.pid}: ${f(e.cpuCores)} cores, ${f(e.cpuUsPerDelivery, 3)} µs CPU per delivery`,
    );
  }
  for (const n of r.loadgen.notes) lines.push(`NOTE: ${n}`);
  return lines.join('\n');
}

if (process.argv[1] === SELF) {
  if (process.argv.includes('--worker')) workerEntry(workerMain);
  else
    cliMain().catch((err: unknown) => {
      process.stderr.write(`loadgen: ${describe(err)}\n`);
      process.exit(1);
    });
}
