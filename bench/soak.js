/**
 * Soak: does archon-ws's memory stay flat over an hour of steady traffic and reconnects?
 *
 *   node_modules/.bin/node bench/soak.js [--minutes 60] [--clients 1500] [--reconnect 0.1]
 *        [--every 10] [--sample 10] [--settle 5] [--window 5] [--workers 2] [--timeout SECONDS]
 *        [--no-save] [--node-args=--max-semi-space-size=16]
 *   node_modules/.bin/node bench/soak.js --report bench/results/soak-<timestamp>.json
 *
 * One gateway, `archon-ws serve --demo` (the embedded demo feed: positions of 3 accounts
 * several times a second, signals, risk alerts), on a free loopback port with bench/probe.js.
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
import WebSocket from 'ws';
import {
  distBuilt,
  environment,
  freePort,
  fx,
  median,
  parseOptions,
  probeStats,
  runMain,
  saveResults,
  startServer,
  stopServer,
  table,
} from './common.js';
import {
  count,
  endWorkers,
  forkWorker,
  mergeCounts,
  procRssMb,
  shares,
  signToken,
  sleep,
  workerEntry,
} from './loadgen.js';

const ACCOUNTS = ['DEMO1', 'DEMO2', 'DEMO3'];
const log = (s) => process.stderr.write(`${s}\n`);

if (process.argv[2] === '--worker') workerEntry(soakWorker);
else orchestrate();

// ---------------------------------------------------------------------------------------------
// The worker: a share of the clients.

/**
 * cfg: {url, count, idBase, jwtSecret, tokenLifetime, reconnectShare, everyMs, lifetimeMs}. Reports
 * `progress` ({events, reconnects}) every second, `result` on `stop`.
 */
async function soakWorker(cfg) {
  const toParent = (m) => process.send?.(m);
  const clients = [];
  const errors = {};
  const closeCodes = {};
  let events = 0;
  let reconnects = 0;
  let stopping = false;

  function attach(c, onReady) {
    const ws = new WebSocket(cfg.url, ['archon.v1'], {
      perMessageDeflate: false,
      skipUTF8Validation: true,
    });
    c.ws = ws;
    let waiting = c.channels.length;
    ws.on('open', () => ws.send(JSON.stringify({ op: 'hello', token: c.token })));
    ws.on('message', (raw) => {
      let m;
      try {
        m = JSON.parse(raw.toString('utf8'));
      } catch {
        count(errors, 'unparsable frame');
        return;
      }
      if (m.type === 'event') {
        events++;
        const ch = c.state[m.channel];
        if (!ch || ch.kind === 'state') return;
        if (m.seq === ch.last + 1) ch.last = m.seq;
        else if (m.seq <= ch.last) c.dup++;
        else {
          c.lost += m.seq - ch.last - 1;
          ch.last = m.seq;
        }
      } else if (m.type === 'snapshot') events++;
      else if (m.type === 'ping') ws.send('{"op":"pong"}');
      else if (m.type === 'welcome') {
        c.channels.forEach((channel, id) => {
          const ch = c.state[channel];
          const since =
            ch.kind !== 'state' && ch.epoch !== null
              ? { epoch: ch.epoch, seq: ch.last }
              : undefined;
          ws.send(JSON.stringify({ op: 'subscribe', id, channel, since }));
        });
      } else if (m.type === 'subscribed') {
        const ch = c.state[m.channel];
        if (ch.epoch !== null && ch.kind !== 'state' && !m.recovered) c.notRecovered++;
        if (ch.epoch === null || !m.recovered || ch.kind === 'state') ch.last = m.seq;
        ch.epoch = m.epoch;
        if (--waiting === 0) onReady();
      } else if (m.type === 'error') count(errors, `error ${m.code}`);
    });
    ws.on('error', (err) => count(errors, err.code || err.message));
    ws.on('close', (code) => {
      if (c.ws !== ws) return;
      c.ws = null;
      if (stopping) return;
      // Closed by the server (not by our own reconnect): count it, come back in a second.
      count(closeCodes, String(code));
      setTimeout(() => attach(c, () => {}), 1000);
    });
  }

  const connectOne = (i) =>
    new Promise((resolve) => {
      const account = ACCOUNTS[(cfg.idBase + i) % ACCOUNTS.length];
      const channels = ['signals', `positions:${account}`, `risk:${account}`];
      const c = {
        token: null,
        ws: null,
        channels,
        state: {
          signals: { kind: 'stream', epoch: null, last: 0 },
          [`positions:${account}`]: { kind: 'state', epoch: null, last: 0 },
          [`risk:${account}`]: { kind: 'alert', epoch: null, last: 0 },
        },
        lost: 0,
        dup: 0,
        notRecovered: 0,
      };
      clients.push(c);
      // Tokens outlive the run: an expiry would close every client in its last minute.
      signToken(cfg.jwtSecret, `soak-${cfg.idBase + i}`, ACCOUNTS, cfg.tokenLifetime).then(
        (token) => {
          c.token = token;
          attach(c, resolve);
        },
      );
    });
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(100, cfg.count) }, async () => {
      while (next < cfg.count) await connectOne(next++);
    }),
  );
  toParent({ type: 'ready', connected: clients.length, failed: 0, errors });

  // Churn: every everyMs, a share of the clients reconnect and resume.
  const churn = setInterval(() => {
    for (const c of clients) {
      if (c.ws === null || Math.random() >= cfg.reconnectShare) continue;
      const old = c.ws;
      c.ws = null; // our own close: not counted, no retry from its handler
      old.close(1000, 'soak reconnect');
      reconnects++;
      attach(c, () => {});
    }
  }, cfg.everyMs);
  const progress = setInterval(() => toParent({ type: 'progress', events, reconnects }), 1000);

  process.on('message', (m) => {
    if (m.type !== 'stop') return;
    stopping = true;
    clearInterval(churn);
    clearInterval(progress);
    toParent({
      type: 'result',
      events,
      reconnects,
      lost: clients.reduce((n, c) => n + c.lost, 0),
      dup: clients.reduce((n, c) => n + c.dup, 0),
      notRecovered: clients.reduce((n, c) => n + c.notRecovered, 0),
      errors,
      closeCodes,
    });
    for (const c of clients) c.ws?.terminate();
  });
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

function options() {
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
  const o = {
    minutes: Number(argv.minutes),
    clients: Number(argv.clients),
    reconnect: Number(argv.reconnect),
    every: Number(argv.every),
    sample: Number(argv.sample),
    settle: Number(argv.settle),
    window: Number(argv.window),
    report: argv.report ?? null,
    workers: Number(argv.workers),
    nodeArgs: argv['node-args'].split(' ').filter(Boolean),
    save: !argv['no-save'],
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

function openFds(pid) {
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
    const saved = JSON.parse(readFileSync(o.report, 'utf8'));
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
    const kids = [];
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
      const t0 = Date.now();
      const samples = [];
      const end = t0 + o.minutes * 60_000;
      for (let t = t0; t <= end; t += o.sample * 1000) {
        await sleep(Math.max(0, t - Date.now()));
        const m = await probeStats(server);
        const s = {
          s: Math.round((Date.now() - t0) / 1000),
          rssMb: procRssMb(server.pid),
          heapUsedMb: m.heapUsed / 2 ** 20,
          heapTotalMb: m.heapTotal / 2 ** 20,
          externalMb: m.external / 2 ** 20,
          arrayBuffersMb: m.arrayBuffers / 2 ** 20,
          oldSizeMb: (m.spaces?.old_space?.size ?? 0) / 2 ** 20,
          oldUsedMb: (m.spaces?.old_space?.used ?? 0) / 2 ** 20,
          newSpaceMb: m.newSpace / 2 ** 20,
          fds: openFds(server.pid),
          events: kids.reduce((n, w) => n + (w.progress.events ?? 0), 0),
          reconnects: kids.reduce((n, w) => n + (w.progress.reconnects ?? 0), 0),
        };
        samples.push(s);
        if (s.s % 60 < o.sample) log(minuteLine(s));
      }
      const results = await Promise.all(
        kids.map((w) => {
          w.post({ type: 'stop' });
          return w.next('result', 30_000);
        }),
      );
      const sum = (k) => results.reduce((n, r) => n + r[k], 0);
      const integrity = {
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

function minuteLine(s) {
  return (
    `  ${fx(s.s / 60, 1)} min: RSS ${fx(s.rssMb, 0)} MB, heap used ${fx(s.heapUsedMb, 0)} / ` +
    `total ${fx(s.heapTotalMb, 0)} MB (old space ${fx(s.oldUsedMb, 0)} / ${fx(s.oldSizeMb, 0)}), ` +
    `external ${fx(s.externalMb, 1)} MB, fds ${s.fds}, ${s.events} events, ${s.reconnects} reconnects`
  );
}

/** Growth from the first window after minute `settle` to the last window, medians of each. */
function growth(samples, { settle, window }) {
  const after = samples.filter((s) => s.s >= settle * 60);
  const end = samples.at(-1).s;
  const first = after.filter((s) => s.s < settle * 60 + window * 60);
  const last = after.filter((s) => s.s > end - window * 60);
  const pct = (k) => {
    const a = median(first.map((s) => s[k]));
    const b = median(last.map((s) => s[k]));
    return a ? (100 * (b - a)) / a : null;
  };
  // Least-squares slope of RSS over time, in MB per hour.
  const n = after.length;
  const mx = after.reduce((a, s) => a + s.s, 0) / n;
  const my = after.reduce((a, s) => a + s.rssMb, 0) / n;
  const sxy = after.reduce((a, s) => a + (s.s - mx) * (s.rssMb - my), 0);
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
    fdsTo: samples.at(-1).fds,
    pass: rssPct !== null && rssPct < 5,
  };
}

function report(samples, integrity, v, o) {
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
        ['fds', 5, (s) => s.fds],
        ['events', 10, (s) => s.events],
        ['reconnects', 10, (s) => s.reconnects],
      ],
      perMinute,
    )}\n\n` +
      `${integrity.events} events delivered, ${integrity.reconnects} reconnects; lost ` +
      `${integrity.lost}, duplicated ${integrity.dup}, recovered:false ${integrity.notRecovered}` +
      `${Object.keys(integrity.closeCodes).length ? `, closed by the server ${JSON.stringify(integrity.closeCodes)}` : ''}` +
      `${Object.keys(integrity.errors).length ? `, errors ${JSON.stringify(integrity.errors)}` : ''}\n` +
      `medians of the ${v.windowMinutes} minutes from minute ${fx(v.fromSecond / 60, 1)} and of the last ` +
      `${v.windowMinutes} (to minute ${fx(v.toSecond / 60, 1)}): RSS ${fx(v.firstRssMb, 0)} → ${fx(v.lastRssMb, 0)} MB ` +
      `(${fx(v.rssPct, 1)} %), heap used ${fx(v.heapUsedPct, 1)} %, heap total ${fx(v.heapTotalPct, 1)} %, ` +
      `external ${fx(v.externalPct, 1)} %; RSS trend ${fx(v.rssMbPerHour, 1)} MB/h; fds ${v.fdsFrom} → ${v.fdsTo}: ` +
      `${v.pass ? 'PASS' : 'FAIL'} (goal: RSS growth < 5 %)\n`,
  );
}
