/**
 * Reconnect storm: N clients of one instance all move to another when it stops, and how long
 * each of them is blind. Cluster mode, measured on this machine end to end.
 *
 *   node_modules/.bin/node bench/storm.js [--clients 10000] [--rounds 3] [--signal term|kill]
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
 * - B's CPU over the storm (cores), B's RSS and event-loop lag p99 (bench/probe.js) after it,
 *   and how long A took to exit.
 *
 * The goal (docs/performance.md, "Reconnect storm"): every client back with nothing lost, and
 * blind ≤ 1.5 s at p99. The machine allows 20,000 open files per process, so 10,000 clients
 * on one instance is the largest storm it can run (A and B each hold them in turn).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import {
  distBuilt,
  environment,
  freePort,
  freeRedisPort,
  fx,
  median,
  parseCli,
  probeStats,
  redisServerVersion,
  runMain,
  saveResults,
  startRedis,
  startServer,
  stopServer,
  table,
  tcpExt,
} from './common.js';
import {
  count,
  endWorkers,
  forkWorker,
  machineCpu,
  mergeCounts,
  now,
  procCpuSeconds,
  procRssMb,
  publisher,
  quantile,
  shares,
  signToken,
  sleep,
  windowMarks,
  workerEntry,
} from './loadgen.js';

const CHANNEL = 'signals';
const EVENT_PREFIX = '{"type":"event",';
const SEQ_FIELD = '"seq":';
const log = (s) => process.stderr.write(`${s}\n`);

/** Commands Redis has processed so far (INFO stats), or null. */
function redisCommands(port) {
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

/**
 * cfg: {urlA, urlB, count, idBase, batch, jwtSecret, lifetimeMs}. Messages from the parent:
 * `storm` (A is being stopped at m.at: from now on a close sends the client to B), `drain`
 * ({lastSeq}: wait until every client has it), `exit`.
 */
async function stormWorker(cfg) {
  // The SDK's own reconnect policy: what a close code means and how long to wait.
  const { Backoff } = await import('../dist/client/backoff.js');
  const { closeAction } = await import('../dist/protocol/close-codes.js');
  const toParent = (m) => process.send?.(m);
  const clients = [];
  const refusals = {};
  const closeCodes = {};
  let storming = false;
  let back = 0;
  // This worker's CPU and event-loop utilization from the signal until its last client is back:
  // a saturated worker (ELU near 1) makes the clients, not the gateway, the bottleneck.
  const marks = windowMarks();

  function attach(c, url, onReady) {
    const ws = new WebSocket(url, ['archon.v1'], {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      handshakeTimeout: 10_000,
    });
    c.ws = ws;
    let subscribed = false;
    const startedAt = now();
    ws.on('open', () => {
      c.phases.open = now() - startedAt;
      ws.send(JSON.stringify({ op: 'hello', token: c.token }));
    });
    ws.on('message', (raw) => {
      // Events are most of the traffic: their seq is read without parsing the whole frame
      // (the gateway writes `type` first and `seq` third), so the clients' own work delays
      // them less. Everything else is parsed.
      const text = raw.toString('latin1');
      if (text.startsWith(EVENT_PREFIX)) {
        const at = text.indexOf(SEQ_FIELD) + SEQ_FIELD.length;
        onEvent(c, Number.parseInt(text.slice(at, at + 20), 10));
        return;
      }
      let m;
      try {
        m = JSON.parse(text);
      } catch {
        count(refusals, 'unparsable frame');
        return;
      }
      if (m.type === 'ping') ws.send('{"op":"pong"}');
      else if (m.type === 'welcome') {
        c.phases.welcome = now() - startedAt;
        const since = c.epoch === null ? undefined : { epoch: c.epoch, seq: c.last };
        ws.send(JSON.stringify({ op: 'subscribe', id: 1, channel: CHANNEL, since }));
      } else if (m.type === 'subscribed') {
        subscribed = true;
        c.phases.subscribed = now() - startedAt;
        if (c.epoch !== null && !m.recovered) c.notRecovered++;
        if (c.epoch === null) c.last = m.seq;
        c.epoch = m.epoch;
        onReady(m);
      } else if (m.type === 'error') count(refusals, `error ${m.code}`);
    });
    ws.on('error', (err) => {
      const status = /Unexpected server response: (\d+)/.exec(err.message);
      count(refusals, status ? `HTTP ${status[1]}` : err.code || err.message);
    });
    ws.on('close', (code) => {
      if (c.ws !== ws) return;
      c.ws = null;
      if (subscribed) onClosed(c, code);
      else if (storming) retry(c, code, 'closed before subscribed');
      else c.failed = `closed ${code} before subscribed`;
    });
  }

  function onEvent(c, seq) {
    if (seq === c.last + 1) c.last = seq;
    else if (seq <= c.last) c.dup++;
    else {
      c.lost += seq - c.last - 1;
      c.ooo += seq < c.last ? 1 : 0;
      c.last = seq;
    }
  }

  function onClosed(c, code) {
    count(closeCodes, String(code));
    if (!storming || c.closeAt !== null) {
      c.failed = `closed ${code} outside the storm`;
      return;
    }
    c.closeAt = now();
    retry(c, code, null);
  }

  /** Waits as the SDK would after `code`, then connects to B. */
  function retry(c, code, why) {
    if (why) count(refusals, why);
    const delay = c.backoff.next(closeAction(code) === 'backoff');
    c.ownWaitMs += delay;
    c.attempts++;
    setTimeout(() => {
      attach(c, cfg.urlB, () => {
        c.backAt = now();
        if (++back === clients.length) marks.end();
      });
    }, delay);
  }

  // Connect every client to A, `batch` handshakes in flight.
  let next = 0;
  const connectOne = (i) =>
    new Promise((resolve) => {
      const c = {
        id: cfg.idBase + i,
        token: null,
        ws: null,
        epoch: null,
        last: 0,
        lost: 0,
        dup: 0,
        ooo: 0,
        notRecovered: 0,
        closeAt: null,
        backAt: null,
        ownWaitMs: 0,
        attempts: 0,
        failed: null,
        backoff: new Backoff(),
        phases: { open: 0, welcome: 0, subscribed: 0 },
      };
      clients.push(c);
      signToken(cfg.jwtSecret, `storm-${c.id}`).then((token) => {
        c.token = token;
        const timer = setTimeout(() => resolve(), 30_000);
        attach(c, cfg.urlA, () => {
          clearTimeout(timer);
          resolve();
        });
      });
    });
  await Promise.all(
    Array.from({ length: Math.min(cfg.batch, cfg.count) }, async () => {
      while (next < cfg.count) await connectOne(next++);
    }),
  );
  const ready = clients.filter((c) => c.epoch !== null).length;
  toParent({ type: 'ready', connected: ready, failed: cfg.count - ready, errors: refusals });

  const progress = setInterval(() => toParent({ type: 'progress', back, connected: back }), 100);
  process.on('message', async (m) => {
    if (m.type === 'storm') {
      storming = true;
      marks.start();
    } else if (m.type === 'drain') {
      const deadline = now() + m.timeoutMs;
      while (now() < deadline && clients.some((c) => c.ws && c.last < m.lastSeq)) await sleep(50);
      clearInterval(progress);
      toParent({
        type: 'result',
        clients: clients.map((c) => ({
          closeAt: c.closeAt,
          backAt: c.backAt,
          ownWaitMs: c.ownWaitMs,
          attempts: c.attempts,
          phases: c.phases,
          short: c.ws ? Math.max(0, m.lastSeq - c.last) : null,
          lost: c.lost,
          dup: c.dup,
          ooo: c.ooo,
          notRecovered: c.notRecovered,
          failed: c.failed,
        })),
        refusals,
        closeCodes,
        load: marks.stats,
      });
      for (const c of clients) c.ws?.terminate();
    } else if (m.type === 'exit') process.exit(0);
  });
}

// ---------------------------------------------------------------------------------------------
// The orchestrator.

function orchestrate() {
  const { argv, check, opt } = parseCli(
    import.meta.url,
    'storm.js',
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
  const nodeArgs = argv['node-args'].split(' ').filter(Boolean);
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
    const rounds = [];
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

async function round(r, { clients, workers, batch, nodeArgs, opt, signal, shutdownTimeout }) {
  const bound = 300;
  const jwtSecret = randomBytes(32).toString('base64url');
  const secrets = { jwtSecret, publishToken: randomBytes(24).toString('base64url') };
  const procs = [];
  const kids = [];
  try {
    const redisPort = await freeRedisPort();
    const redis = await startRedis(redisPort, bound);
    procs.push(redis);
    const env = (id) => ({
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
    const ready = await Promise.all(kids.map((w) => w.next('ready', 120_000)));
    const connected = ready.reduce((n, x) => n + x.connected, 0);
    log(`round ${r}: ${connected}/${clients} clients on A in ${fx((now() - t0) / 1000, 1)} s`);
    if (connected < clients)
      throw new Error(`only ${connected} clients connected: ${JSON.stringify(ready[0].errors)}`);

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
    const aGone = new Promise((resolve) => a.wrapper.once('exit', () => resolve(now())));
    process.kill(a.pid, signal === 'term' ? 'SIGTERM' : 'SIGKILL');
    const deadline = signalAt + 60_000;
    let cpuA = cpuABefore;
    while (now() < deadline) {
      cpuA = procCpuSeconds(a.pid) ?? cpuA; // until A is gone: its CPU over its drain
      const back = kids.reduce((n, w) => n + (w.progress.back ?? 0), 0);
      if (back >= clients) break;
      await sleep(50);
    }
    const stormSeconds = (now() - signalAt) / 1000;
    const cpuB = (procCpuSeconds(b.pid) - cpuBefore) / stormSeconds;
    const machineAfter = machineCpu();
    const tcpAfter = tcpExt();
    const redisAfter = redisCommands(redisPort);
    const probeB = await probeStats(b);
    const aExitMs = (await Promise.race([aGone, sleep(30_000).then(() => null)])) - signalAt;
    await sleep(2000); // traffic after the storm
    stop.stopped = true;
    const pub = await publishing;
    const lastSeq = pub.ackedSeqs.at(-1) ?? 0;
    const results = await Promise.all(
      kids.map((w) => {
        w.post({ type: 'drain', lastSeq, timeoutMs: 15_000 });
        return w.next('result', 40_000);
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
      tcp:
        tcpBefore && tcpAfter
          ? Object.fromEntries(Object.keys(tcpAfter).map((k) => [k, tcpAfter[k] - tcpBefore[k]]))
          : null,
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
  }
}

/** One round's figures from every client's record. */
function figures(r, shutdownTimeout, all, x) {
  const backs = all.filter((c) => c.backAt !== null);
  const sorted = (xs) => xs.sort((p, q) => p - q);
  const backMs = sorted(backs.map((c) => c.backAt - x.signalAt));
  const blind = sorted(backs.map((c) => c.backAt - c.closeAt));
  const gateway = sorted(backs.map((c) => c.backAt - c.closeAt - c.ownWaitMs));
  const ownWait = sorted(backs.map((c) => c.ownWaitMs));
  const attempts = {};
  for (const c of all) count(attempts, String(c.attempts));
  const sum = (k) => all.reduce((n, c) => n + (c[k] ?? 0), 0);
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
      ['open', 'welcome', 'subscribed'].map((k) => {
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

const lossless = (f) =>
  f.back === f.clients &&
  Object.values(f.integrity).every((n) => n === 0) &&
  Object.keys(f.published.errors).length === 0;

function roundLine(f) {
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

function summarize(rounds) {
  const m = (pick) => median(rounds.map(pick));
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

function report(rounds, titled) {
  const s = summarize(rounds);
  const ms = (v) => fx(v, 0);
  process.stdout.write(
    (titled ? `\nA's WEBSOCKET_SHUTDOWN_TIMEOUT ${rounds[0].shutdownTimeout} s:\n` : '') +
      `${table(
        [
          ['round', 5, (f) => f.round],
          ['back', 6, (f) => `${f.back}`],
          ['50 % s', 7, (f) => fx(f.backMs.p50 / 1000, 2)],
          ['99 % s', 7, (f) => fx(f.backMs.p99 / 1000, 2)],
          ['100 % s', 8, (f) => fx(f.backMs.p100 / 1000, 2)],
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
          ['A exit s', 8, (f) => fx(f.aExitMs / 1000, 1)],
          ['machine', 7, (f) => `${fx(100 * f.machineBusy, 0)} %`],
          ['A cores', 7, (f) => fx(f.a.cores, 2)],
          ['Redis cmds', 10, (f) => f.redisCommands ?? '—'],
          ['lsn ovf', 7, (f) => f.tcp?.listenOverflows ?? '—'],
          ['lg ELU', 6, (f) => fx(f.load.elu, 2) + (f.load.elu > 0.9 ? ' S' : '')],
        ],
        rounds,
      )}\n\n` +
      `median: back 50 % ${fx(s.back50Ms / 1000, 2)} s, 99 % ${fx(s.back99Ms / 1000, 2)} s, ` +
      `100 % ${fx(s.back100Ms / 1000, 2)} s; blind p50 ${ms(s.blindP50Ms)} ms, p99 ` +
      `${ms(s.blindP99Ms)} ms (goal ≤ 1500), of which gateway p99 ${ms(s.gatewayP99Ms)} ms; ` +
      `${s.lossless ? 'every client back, nothing lost' : 'NOT LOSSLESS: see the rounds'}\n`,
  );
}
