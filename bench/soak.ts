/**
 * Soak: does archon-ws's memory stay flat over an hour of steady traffic and reconnects?
 *
 *   node_modules/.bin/node bench/soak.ts [--minutes 60] [--clients 1500] [--reconnect 0.1]
 *        [--every 10] [--sample 10] [--settle 5] [--window 5] [--workers 2] [--timeout SECONDS]
 *        [--no-save] [--node-args=--max-semi-space-size=16]
 *   node_modules/.bin/node bench/soak.ts --report bench/results/soak-<timestamp>.json
 *
 * One gateway, `archon-ws serve --demo` (the embedded demo feed: positions of 3 accounts
 * several times a second, signals, risk alerts), on a free loopback port with bench/probe.ts.
 * `--clients` clients, each its own user allowed on the 3 demo accounts, subscribe as the
 * dashboard does: `signals`, `positions:<account>` and `risk:<account>` (account i mod 3).
 * Every `--every` seconds a `--reconnect` share of them, chosen at random, close and
 * reconnect, resuming `signals` and `risk:` with `since` (the rest of the churn a real floor
 * has: laptops waking up, tabs reloaded). Every `--sample` seconds the orchestrator reads the
 * gateway's memory: RSS (/proc), heap used, heap total, external and array buffers, old space
 * held and used (the probe), and its open file descriptors (/proc/<pid>/fd).
 *
 * Verdict: RSS growth from the first `--window` (5) minutes after minute `--settle` (5) to the
 * last `--window` minutes of the run, each the median of its samples (the heap rises and falls
 * by tens of MB between collections, so one sample against another says nothing), as a share
 * of the first; the goal is < 5 %. The trend (least squares over every sample after minute
 * `--settle`, MB per hour) is reported beside it. Clients check every stream and alert
 * event arrives once and in order, across each reconnect too (a resume that answers
 * `recovered: false` is counted; it should not happen inside the 300 s history). Prints a
 * row per minute and writes bench/results/soak-<timestamp>.json with every sample; `--report`
 * prints the table and verdict of such a file again (with this file's verdict rules).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import process from 'node:process';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { log, nodeArgsOf, parseOptions, runMain } from './cli.ts';
import { BenchClient, channel, signToken, type Handlers } from './client.ts';
import { count, mergeCounts, procRssMb, sleep, type Counts } from './measure.ts';
import { environment, fx, median, saveResults, table } from './report.ts';
import { distBuilt, freePort, probeStats, startServer, stopServer } from './servers.ts';
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

const ACCOUNTS = ['DEMO1', 'DEMO2', 'DEMO3'];

if (process.argv[2] === '--worker') workerEntry(soakWorker);
else orchestrate();

// ---------------------------------------------------------------------------------------------
// The worker: a share of the clients.

interface SoakConfig extends WorkerConfig, Share {
  readonly url: string;
  readonly jwtSecret: string;
  readonly tokenLifetime: string;
  readonly reconnectShare: number;
  readonly everyMs: number;
}

interface SoakResult extends Message {
  readonly type: 'result';
  readonly events: number;
  readonly reconnects: number;
  readonly lost: number;
  readonly dup: number;
  readonly notRecovered: number;
  readonly errors: Counts;
  readonly closeCodes: Counts;
}

/** Reports `progress` ({events, reconnects}) every second, `result` on `stop`. */
async function soakWorker(cfg: SoakConfig): Promise<void> {
  const clients: BenchClient[] = [];
  const errors: Counts = {};
  const closeCodes: Counts = {};
  let events = 0;
  let reconnects = 0;
  let stopping = false;

  // Closed by the server (not by our own reconnect): count it, come back in a second.
  const comeBack = (c: BenchClient): void => {
    setTimeout(() => {
      if (!stopping) c.connect(cfg.url);
    }, 1000);
  };
  const handlers: Handlers<undefined> = {
    event: () => events++,
    snapshot: () => events++,
    parseError: () => count(errors, 'unparsable frame'),
    serverError: (_c, m) => count(errors, `error ${m.code}`),
    error: (_c, why) => count(errors, why),
    close(c, code) {
      if (stopping) return;
      count(closeCodes, String(code));
      comeBack(c);
    },
  };

  const connectOne = async (i: number): Promise<void> => {
    const account = ACCOUNTS[(cfg.idBase + i) % ACCOUNTS.length] as string;
    const c = new BenchClient(
      {
        // Tokens outlive the run: an expiry would close every client in its last minute.
        token: await signToken(
          cfg.jwtSecret,
          `soak-${cfg.idBase + i}`,
          ACCOUNTS,
          cfg.tokenLifetime,
        ),
        // As the dashboard: signals and the account's risk alerts resume with `since`; its
        // positions are state, recovered by their snapshot.
        channels: [
          channel('signals'),
          channel(`positions:${account}`, false),
          channel(`risk:${account}`),
        ],
        data: undefined,
      },
      handlers,
    );
    clients.push(c);
    await c.open(cfg.url, 30_000).catch((err: Error) => {
      count(errors, err.message);
      comeBack(c);
    });
  };
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(100, cfg.count) }, async () => {
      while (next < cfg.count) await connectOne(next++);
    }),
  );
  toParent({ type: 'ready', connected: clients.length, failed: 0, errors } as Message);

  // Churn: every everyMs, a share of the clients reconnect and resume.
  const churn = setInterval(() => {
    for (const c of clients) {
      if (c.ws === null || Math.random() >= cfg.reconnectShare) continue;
      c.close(1000, 'soak reconnect'); // our own close: not counted, no retry from its handler
      reconnects++;
      c.connect(cfg.url);
    }
  }, cfg.everyMs);
  const progress = setInterval(
    () => toParent({ type: 'progress', events, reconnects } as Message),
    1000,
  );

  fromParent<Message>((m) => {
    if (m.type !== 'stop') return;
    stopping = true;
    clearInterval(churn);
    clearInterval(progress);
    const channels = clients.flatMap((c) => c.channels);
    const sum = (k: 'lost' | 'dup' | 'notRecovered'): number =>
      channels.reduce((n, ch) => n + ch[k], 0);
    toParent({
      type: 'result',
      events,
      reconnects,
      lost: sum('lost'),
      dup: sum('dup'),
      notRecovered: sum('notRecovered'),
      errors,
      closeCodes,
    } as SoakResult);
    for (const c of clients) c.terminate();
  });
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

interface SoakOptions {
  minutes: number;
  clients: number;
  reconnect: number;
  every: number;
  sample: number;
  settle: number;
  window: number;
  report: string | null;
  workers: number;
  nodeArgs: string[];
  save: boolean;
  hardBound: number;
}

function options(): SoakOptions {
  const { argv, fail } = parseOptions(import.meta.url, 'soak', {
    minutes: { type: 'string', default: '60' },
    clients: { type: 'string', default: '1500' },
    reconnect: { type: 'string', default: '0.1' },
    every: { type: 'string', default: '10' },
    sample: { type: 'string', default: '10' },
    settle: { type: 'string', default: '5' },
    window: { type: 'string', default: '5' },
    report: { type: 'string' },
    workers: { type: 'string', default: '2' },
    'node-args': { type: 'string', default: '' },
    timeout: { type: 'string' },
    'no-save': { type: 'boolean', default: false },
  });
  const o: SoakOptions = {
    minutes: Number(argv.minutes),
    clients: Number(argv.clients),
    reconnect: Number(argv.reconnect),
    every: Number(argv.every),
    sample: Number(argv.sample),
    settle: Number(argv.settle),
    window: Number(argv.window),
    report: argv.report ?? null,
    workers: Number(argv.workers),
    nodeArgs: nodeArgsOf(argv['node-args']),
    save: !argv['no-save'],
    hardBound: 0,
  };
  if (!(o.minutes >= 1 && o.minutes <= 240)) fail('--minutes: 1..240');
  if (!(Number.isInteger(o.clients) && o.clients >= 1 && o.clients <= 15_000))
    fail('--clients: 1..15000');
  if (!(o.reconnect >= 0 && o.reconnect <= 1)) fail('--reconnect: a share of the clients, 0..1');
  if (!(o.every >= 1 && o.every <= 600)) fail('--every: 1..600 seconds');
  if (!(o.sample >= 1 && o.sample <= 600)) fail('--sample: 1..600 seconds');
  if (!(o.settle >= 0 && o.settle < o.minutes)) fail('--settle: 0..minutes (exclusive)');
  if (!(o.window > 0 && o.window <= o.minutes)) fail('--window: minutes > 0, at most --minutes');
  if (!(Number.isInteger(o.workers) && o.workers >= 1 && o.workers <= 8)) fail('--workers: 1..8');
  if (!o.nodeArgs.every((a) => a.startsWith('--'))) fail('--node-args: Node/V8 flags');
  o.hardBound = Number(argv.timeout ?? Math.ceil(o.minutes * 60 + 180));
  if (!(o.hardBound > 0)) fail('--timeout: seconds > 0');
  return o;
}

function openFds(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

function orchestrate() {
  const o = options();
  if (o.report) {
    // A saved run, reported again.
    const saved = JSON.parse(readFileSync(o.report, 'utf8')) as {
      options: SoakOptions;
      samples: Sample[];
      integrity: Integrity;
    };
    const opts = { ...saved.options, settle: o.settle, window: o.window };
    report(saved.samples, saved.integrity, growth(saved.samples, opts), opts);
    return;
  }
  runMain('soak', o.hardBound, async () => {
    distBuilt();
    const started = new Date();
    const jwtSecret = randomBytes(32).toString('base64url');
    const secrets = { jwtSecret, publishToken: randomBytes(24).toString('base64url') };
    const port = await freePort();
    const server = await startServer('archon', port, secrets, {
      bound: o.hardBound,
      nodeArgs: o.nodeArgs,
      gatewayArgs: ['--demo'],
      extraEnv: { WEBSOCKET_MAX_CONNECTIONS_PER_IP: '20000' },
    });
    const kids: Worker[] = [];
    try {
      log(
        `soak: ${o.clients} clients on archon-ws --demo (pid ${server.pid}), ${fx(100 * o.reconnect, 0)} % ` +
          `reconnecting every ${o.every} s, ${o.minutes} min, a sample every ${o.sample} s`,
      );
      for (const share of shares(o.clients, o.workers, 100)) {
        kids.push(
          forkWorker(
            fileURLToPath(import.meta.url),
            'soak',
            {
              ...share,
              url: `ws://127.0.0.1:${port}/api/v1/ws`,
              jwtSecret,
              reconnectShare: o.reconnect,
              everyMs: o.every * 1000,
              tokenLifetime: `${Math.ceil(o.hardBound / 60) + 10}m`,
              lifetimeMs: o.hardBound * 1000,
            },
            log,
          ),
        );
      }
      await Promise.all(kids.map((w) => w.next('ready', 120_000)));
      const progressOf = (k: 'events' | 'reconnects'): number =>
        kids.reduce((n, w) => n + Number(w.progress[k] ?? 0), 0);
      const t0 = Date.now();
      const samples: Sample[] = [];
      const end = t0 + o.minutes * 60_000;
      for (let t = t0; t <= end; t += o.sample * 1000) {
        await sleep(Math.max(0, t - Date.now()));
        const m = await probeStats(server);
        const s: Sample = {
          s: Math.round((Date.now() - t0) / 1000),
          rssMb: procRssMb(server.pid),
          heapUsedMb: m.heapUsed / 2 ** 20,
          heapTotalMb: m.heapTotal / 2 ** 20,
          externalMb: m.external / 2 ** 20,
          arrayBuffersMb: m.arrayBuffers / 2 ** 20,
          oldSizeMb: (m.spaces.old_space?.size ?? 0) / 2 ** 20,
          oldUsedMb: (m.spaces.old_space?.used ?? 0) / 2 ** 20,
          newSpaceMb: m.newSpace / 2 ** 20,
          fds: openFds(server.pid),
          events: progressOf('events'),
          reconnects: progressOf('reconnects'),
        };
        samples.push(s);
        if (s.s % 60 < o.sample) log(minuteLine(s));
      }
      const results = await Promise.all(
        kids.map((w) => {
          w.post({ type: 'stop' });
          return w.next<SoakResult>('result', 30_000);
        }),
      );
      const sum = (k: 'events' | 'reconnects' | 'lost' | 'dup' | 'notRecovered'): number =>
        results.reduce((n, r) => n + r[k], 0);
      const integrity: Integrity = {
        events: sum('events'),
        reconnects: sum('reconnects'),
        lost: sum('lost'),
        dup: sum('dup'),
        notRecovered: sum('notRecovered'),
        errors: mergeCounts(results.map((r) => r.errors)),
        closeCodes: mergeCounts(results.map((r) => r.closeCodes)),
      };
      const verdict = growth(samples, o);
      report(samples, integrity, verdict, o);
      if (o.save)
        saveResults('soak-', started, {
          environment: environment(),
          options: o,
          samples,
          integrity,
          verdict,
        });
    } finally {
      await endWorkers(kids);
      await stopServer(server);
    }
  });
}

/** A sample of the gateway's memory (MB) and of the clients' progress. */
interface Sample {
  s: number;
  rssMb: number | null;
  heapUsedMb: number;
  heapTotalMb: number;
  externalMb: number;
  arrayBuffersMb: number;
  oldSizeMb: number;
  oldUsedMb: number;
  newSpaceMb: number;
  fds: number | null;
  events: number;
  reconnects: number;
}

interface Integrity {
  events: number;
  reconnects: number;
  lost: number;
  dup: number;
  notRecovered: number;
  errors: Counts;
  closeCodes: Counts;
}

function minuteLine(s: Sample): string {
  return (
    `  ${fx(s.s / 60, 1)} min: RSS ${fx(s.rssMb, 0)} MB, heap used ${fx(s.heapUsedMb, 0)} / ` +
    `total ${fx(s.heapTotalMb, 0)} MB (old space ${fx(s.oldUsedMb, 0)} / ${fx(s.oldSizeMb, 0)}), ` +
    `external ${fx(s.externalMb, 1)} MB, fds ${s.fds}, ${s.events} events, ${s.reconnects} reconnects`
  );
}

/** Growth from the first window after minute `settle` to the last window, medians of each. */
function growth(samples: Sample[], { settle, window }: { settle: number; window: number }) {
  const after = samples.filter((s) => s.s >= settle * 60);
  const end = samples.at(-1)?.s ?? 0;
  const first = after.filter((s) => s.s < settle * 60 + window * 60);
  const last = after.filter((s) => s.s > end - window * 60);
  const pct = (k: 'rssMb' | 'heapUsedMb' | 'heapTotalMb' | 'externalMb'): number | null => {
    const a = median(first.map((s) => s[k]));
    const b = median(last.map((s) => s[k]));
    return a && b !== null ? (100 * (b - a)) / a : null;
  };
  // Least-squares slope of RSS over time, in MB per hour.
  const n = after.length;
  const mx = after.reduce((a, s) => a + s.s, 0) / n;
  const my = after.reduce((a, s) => a + (s.rssMb ?? 0), 0) / n;
  const sxy = after.reduce((a, s) => a + (s.s - mx) * ((s.rssMb ?? 0) - my), 0);
  const sxx = after.reduce((a, s) => a + (s.s - mx) ** 2, 0);
  const rssPct = pct('rssMb');
  return {
    fromSecond: first[0]?.s ?? null,
    toSecond: end,
    windowMinutes: window,
    firstRssMb: median(first.map((s) => s.rssMb)),
    lastRssMb: median(last.map((s) => s.rssMb)),
    rssPct,
    heapUsedPct: pct('heapUsedMb'),
    heapTotalPct: pct('heapTotalMb'),
    externalPct: pct('externalMb'),
    rssMbPerHour: sxx > 0 ? (sxy / sxx) * 3600 : null,
    fdsFrom: first[0]?.fds ?? null,
    fdsTo: samples.at(-1)?.fds ?? null,
    pass: rssPct !== null && rssPct < 5,
  };
}

function report(
  samples: Sample[],
  integrity: Integrity,
  v: ReturnType<typeof growth>,
  o: { sample: number },
): void {
  const perMinute = samples.filter((s, i) => s.s % 60 < o.sample || i === samples.length - 1);
  process.stdout.write(
    `${table(
      [
        ['min', 5, (s) => fx(s.s / 60, 1)],
        ['RSS MB', 6, (s) => fx(s.rssMb, 0)],
        ['heap used', 9, (s) => fx(s.heapUsedMb, 1)],
        ['heap total', 10, (s) => fx(s.heapTotalMb, 1)],
        ['old used/held', 13, (s) => `${fx(s.oldUsedMb, 0)} / ${fx(s.oldSizeMb, 0)}`],
        ['new space', 9, (s) => fx(s.newSpaceMb, 0)],
        ['external', 8, (s) => fx(s.externalMb, 1)],
        ['fds', 5, (s) => String(s.fds)],
        ['events', 10, (s) => s.events],
        ['reconnects', 10, (s) => s.reconnects],
      ],
      perMinute,
    )}\n\n` +
      `${integrity.events} events delivered, ${integrity.reconnects} reconnects; lost ` +
      `${integrity.lost}, duplicated ${integrity.dup}, recovered:false ${integrity.notRecovered}` +
      `${Object.keys(integrity.closeCodes).length ? `, closed by the server ${JSON.stringify(integrity.closeCodes)}` : ''}` +
      `${Object.keys(integrity.errors).length ? `, errors ${JSON.stringify(integrity.errors)}` : ''}\n` +
      `medians of the ${v.windowMinutes} minutes from minute ${fx(v.fromSecond === null ? null : v.fromSecond / 60, 1)} and of the last ` +
      `${v.windowMinutes} (to minute ${fx(v.toSecond / 60, 1)}): RSS ${fx(v.firstRssMb, 0)} → ${fx(v.lastRssMb, 0)} MB ` +
      `(${fx(v.rssPct, 1)} %), heap used ${fx(v.heapUsedPct, 1)} %, heap total ${fx(v.heapTotalPct, 1)} %, ` +
      `external ${fx(v.externalPct, 1)} %; RSS trend ${fx(v.rssMbPerHour, 1)} MB/h; fds ${v.fdsFrom} → ${v.fdsTo}: ` +
      `${v.pass ? 'PASS' : 'FAIL'} (goal: RSS growth < 5 %)\n`,
  );
}
