/**
 * Load generator of the benchmark (module and CLI).
 *
 * N WebSocket clients (split over forked worker processes) do the archon.v1 handshake
 * (hello → welcome, subscribe → subscribed) on one channel; then a publisher in this process
 * POSTs to /api/v1/publish at R msg/s with a data object of ~S bytes of JSON carrying `t0`
 * (wall clock: performance.timeOrigin + performance.now()) and a publish counter `n`.
 * Every client records each event: latency = now − t0, and per-client `seq` bookkeeping
 * (lost = acknowledged publishes never received, duplicates, out of order).
 *
 * Timeline: connect → publishing starts → warm-up (excluded) → measured window → cool-down
 * (still publishing, so the window ends in steady state) → publishing stops → drain (wait until
 * every client has every acknowledged event, bounded) → results.
 *
 * CLI (against a running server):
 *   node_modules/.bin/node bench/loadgen.js --url ws://127.0.0.1:8000/api/v1/ws \
 *     --clients 200 --seconds 5 [--jwt-secret S | --token JWT] [--publish-token T] [--pid P]
 *     [--publish-url http://127.0.0.1:8001/api/v1/publish]
 * `--pid` measures that process's CPU over the window (/proc/<pid>/stat). `--publish-url`
 * publishes to another server than the clients' (default: the clients' server).
 */
import { Buffer } from 'node:buffer';
import { fork, execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import { URL, fileURLToPath } from 'node:url';
import { TextEncoder, parseArgs } from 'node:util';
import WebSocket from 'ws';

const SELF = fileURLToPath(import.meta.url);
const SUBPROTOCOL = 'archon.v1';

/** Worker processes alive in this process (killed by killWorkers on abrupt exit). */
const liveWorkers = new Set();
export function killWorkers() {
  for (const w of liveWorkers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
}

/** High-resolution wall clock in ms, comparable across processes on this machine. */
export const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Latency histogram: 10 µs buckets below 100 ms, 1 ms buckets from 100 ms to 60 s.
const FINE_BUCKETS = 10_000; // 0..100 ms by 10 µs
const HIST_SIZE = FINE_BUCKETS + 59_900 + 1; // + 100 ms..60 s by 1 ms, + overflow
function histIndex(ms) {
  if (ms < 100) return ms <= 0 ? 0 : Math.floor(ms * 100);
  const i = FINE_BUCKETS + Math.floor(ms - 100);
  return i < HIST_SIZE - 1 ? i : HIST_SIZE - 1;
}
function histValue(i) {
  return i < FINE_BUCKETS ? (i + 0.5) / 100 : 100 + (i - FINE_BUCKETS) + 0.5;
}
/** Percentiles (ms) of a merged histogram. */
export function percentiles(hist, qs) {
  let total = 0;
  for (let i = 0; i < hist.length; i++) total += hist[i];
  const out = {};
  for (const q of qs) {
    if (total === 0) {
      out[q] = null;
      continue;
    }
    const rank = Math.max(1, Math.ceil(q * total));
    let cum = 0;
    for (let i = 0; i < hist.length; i++) {
      cum += hist[i];
      if (cum >= rank) {
        out[q] = histValue(i);
        break;
      }
    }
  }
  return { total, ...out };
}

// ---------------------------------------------------------------------------------------------
// /proc sampling (Linux).
let clkTck = 0;
export function clockTicks() {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}
/** {user, sys} CPU seconds of a process (all its threads) from /proc; null if it is gone. */
export function procCpuTimes(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)" start at field 3 (state); utime is field 14, stime field 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / clockTicks(), sys: Number(f[12]) / clockTicks() };
  } catch {
    return null;
  }
}
/** utime+stime of a process (all its threads), in seconds; null if it is gone. */
export function procCpuSeconds(pid) {
  const t = procCpuTimes(pid);
  return t ? t.user + t.sys : null;
}
/** Resident memory of a process in MB; null if it is gone. */
export function procRssMb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}
/** Whole-machine CPU jiffies {busy, softirq, steal, total} from /proc/stat. */
export function machineCpu() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    // user nice system idle iowait irq softirq steal
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = v[3] + v[4]; // idle + iowait
    return { busy: total - idle, softirq: v[5] + v[6], steal: v[7], total };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Worker process: owns a share of the clients.
function workerMain() {
  let cfg = null;
  const clients = [];
  let hist = null;
  let receipts = null; // unique receipts per ms since cfg.base
  let winA = Infinity;
  let winB = -Infinity;
  let negative = 0;
  let latencySum = 0;
  let latencyMax = 0;
  let parseErrors = 0;
  let closedDuringRun = 0;
  let pongs = 0;
  const serverErrors = {};
  const connectErrors = {};
  let mark = null;
  let windowStats = null;

  const send = (m) => process.send?.(m);
  const count = (obj, key) => (obj[key] = (obj[key] ?? 0) + 1);

  function onEvent(c, msg, t) {
    const idx = msg.seq - c.seq0 - 1;
    if (!(idx >= 0 && idx < 10_000_000)) {
      c.unexpected++;
      return;
    }
    if (idx >= c.bits.length) {
      const bigger = new Uint8Array(Math.max(idx + 1, c.bits.length * 2));
      bigger.set(c.bits);
      c.bits = bigger;
    }
    if (c.bits[idx]) {
      c.dup++;
      return;
    }
    c.bits[idx] = 1;
    c.unique++;
    if (msg.seq < c.maxSeq) c.ooo++;
    else c.maxSeq = msg.seq;
    const b = Math.floor(t - cfg.base);
    if (b >= 0 && b < receipts.length) receipts[b]++;
    if (t >= winA && t < winB) {
      const t0 = msg.data?.t0;
      if (typeof t0 === 'number') {
        const lat = t - t0;
        if (lat < 0) negative++;
        hist[histIndex(lat)]++;
        latencySum += lat;
        if (lat > latencyMax) latencyMax = lat;
      }
    }
  }

  function connectOne(id) {
    return new Promise((resolve) => {
      const c = {
        id,
        state: 0,
        seq0: 0,
        maxSeq: 0,
        unique: 0,
        dup: 0,
        ooo: 0,
        unexpected: 0,
        bits: new Uint8Array(cfg.expectedEvents + 16),
        ws: null,
      };
      let settled = false;
      const done = (ok, why) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!ok) {
          count(connectErrors, why);
          c.ws.terminate();
        }
        resolve(ok ? c : null);
      };
      const timer = setTimeout(() => done(false, 'handshake timeout'), cfg.connectTimeoutMs);
      const ws = new WebSocket(cfg.url, SUBPROTOCOL, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: cfg.connectTimeoutMs,
      });
      c.ws = ws;
      ws.on('open', () => {
        ws.send(JSON.stringify({ op: 'hello', token: cfg.token, client: 'bench/1' }));
      });
      ws.on('message', (raw) => {
        const t = now();
        let msg;
        try {
          // Frames are ASCII JSON: latin1 decoding is cheaper than UTF-8 and gives the same text.
          msg = JSON.parse(raw.toString('latin1'));
        } catch {
          parseErrors++;
          return;
        }
        const type = msg.type;
        if (type === 'event') {
          if (c.state === 2) onEvent(c, msg, t);
        } else if (type === 'ping') {
          pongs++;
          ws.send('{"op":"pong"}');
        } else if (type === 'welcome' && c.state === 0) {
          c.state = 1;
          ws.send(JSON.stringify({ op: 'subscribe', id: 1, channel: cfg.channel }));
        } else if (type === 'subscribed' && c.state === 1) {
          c.state = 2;
          c.seq0 = msg.seq;
          c.maxSeq = msg.seq;
          done(true);
        } else if (type === 'error') {
          count(serverErrors, String(msg.code));
          if (c.state < 2) done(false, `server error ${msg.code}`);
        }
      });
      ws.on('error', (err) => done(false, err.code || err.message));
      ws.on('close', (code) => {
        if (!settled) done(false, `closed ${code} during handshake`);
        else if (c.state === 2 && !c.closing) {
          closedDuringRun++;
          c.state = 3;
        }
      });
    });
  }

  async function connectAll() {
    const t0 = now();
    let next = 0;
    let failed = 0;
    let lastProgress = 0;
    const lane = async () => {
      // Fail fast when nothing connects (server broken): stop after the first failed lanes.
      while (next < cfg.count && !(clients.length === 0 && failed >= Math.min(cfg.batch, 20))) {
        const id = cfg.idBase + next++;
        const c = await connectOne(id);
        if (c) clients.push(c);
        else failed++;
        if (now() - lastProgress > 1000) {
          lastProgress = now();
          send({ type: 'progress', connected: clients.length, failed });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(cfg.batch, cfg.count) }, lane));
    send({
      type: 'ready',
      connected: clients.length,
      failed,
      errors: connectErrors,
      seconds: (now() - t0) / 1000,
    });
  }

  async function drain(acked, timeoutMs) {
    const t0 = now();
    // A client is done when it holds as many events as were acknowledged after its subscribe.
    const expectedFor = (c) => {
      let n = 0;
      for (const s of acked) if (s > c.seq0) n++;
      return n;
    };
    const expected = clients.map(expectedFor);
    for (;;) {
      let pending = 0;
      for (let i = 0; i < clients.length; i++) {
        const c = clients[i];
        if (c.state === 2 && c.unique < expected[i]) pending++;
      }
      if (pending === 0 || now() - t0 > timeoutMs) break;
      await sleep(50);
    }
    const drainSeconds = (now() - t0) / 1000;
    let lost = 0;
    let dup = 0;
    let ooo = 0;
    let unexpected = 0;
    let unique = 0;
    let expectedTotal = 0;
    let clientsWithLoss = 0;
    for (const c of clients) {
      let missing = 0;
      let got = 0;
      for (const s of acked) {
        if (s <= c.seq0) continue;
        expectedTotal++;
        const idx = s - c.seq0 - 1;
        if (idx < c.bits.length && c.bits[idx]) got++;
        else missing++;
      }
      lost += missing;
      if (missing > 0) clientsWithLoss++;
      dup += c.dup;
      ooo += c.ooo;
      unique += c.unique;
      unexpected += c.unexpected + (c.unique - got);
    }
    return {
      expected: expectedTotal,
      unique,
      lost,
      dup,
      ooo,
      unexpected,
      clientsWithLoss,
      closedDuringRun,
      drainSeconds,
    };
  }

  process.on('message', (m) => {
    if (m.type === 'config') {
      cfg = m;
      hist = new Uint32Array(HIST_SIZE);
      receipts = new Uint32Array(Math.ceil(cfg.maxMs));
      setTimeout(() => process.exit(3), cfg.lifetimeMs).unref();
      connectAll().catch((err) => {
        send({ type: 'fatal', error: String(err?.stack ?? err) });
        process.exit(1);
      });
    } else if (m.type === 'start') {
      cfg.base = m.base;
      winA = m.winA;
      winB = m.winB;
    } else if (m.type === 'mark-start') {
      mark = { elu: performance.eventLoopUtilization(), cpu: process.cpuUsage(), t: now() };
    } else if (m.type === 'mark-end') {
      const secs = (now() - mark.t) / 1000;
      const cpu = process.cpuUsage(mark.cpu);
      windowStats = {
        elu: performance.eventLoopUtilization(mark.elu).utilization,
        cpuCores: (cpu.user + cpu.system) / 1e6 / secs,
        sysShare: cpu.system / Math.max(1, cpu.user + cpu.system),
      };
    } else if (m.type === 'drain') {
      drain(m.acked, m.timeoutMs)
        .then((integrity) => {
          send({
            type: 'result',
            integrity,
            hist,
            receipts,
            latencySum,
            latencyMax,
            negative,
            parseErrors,
            pongs,
            serverErrors,
            window: windowStats,
          });
        })
        .catch((err) => send({ type: 'fatal', error: String(err?.stack ?? err) }));
    } else if (m.type === 'exit') {
      for (const c of clients) {
        c.closing = true;
        c.ws.terminate();
      }
      setTimeout(() => process.exit(0), 50);
    }
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------------------------------------
// Coordinator: forks the workers, publishes, measures the window, gathers results.

/**
 * Runs one load against a server; resolves with the figures (see README).
 * @param {object} o
 * @param {string} o.url           ws:// URL of the client endpoint
 * @param {string} [o.publishUrl]  default: same origin + /api/v1/publish
 * @param {string} [o.token]       JWT sent in hello ('' for the bare server)
 * @param {string} [o.publishToken]
 * @param {number} [o.serverPid]   process whose CPU is measured over the window
 * @param {Record<string, number>} [o.extraPids]  more processes (name → pid) whose CPU is
 *   measured over the same window, e.g. the publishing instance and Redis of a cluster run;
 *   reported in `extra` and not counted as `other`
 */
export async function runLoad(o) {
  const opt = {
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

  const workers = [];
  const exited = [];
  const stop = { stopped: false }; // ends the publisher early when the run fails
  const kill = () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  };
  try {
    // -- fork and connect
    const per = Math.floor(opt.clients / nWorkers);
    const readyAll = [];
    for (let i = 0; i < nWorkers; i++) {
      const w = fork(SELF, ['--worker'], {
        serialization: 'advanced',
        execPath: process.execPath,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      workers.push(w);
      liveWorkers.add(w);
      w.on('exit', () => liveWorkers.delete(w));
      const count = i === nWorkers - 1 ? opt.clients - per * (nWorkers - 1) : per;
      w.progress = { connected: 0, failed: 0 };
      w.inbox = [];
      w.waiters = [];
      w.on('message', (m) => {
        if (m.type === 'progress') w.progress = m;
        else if (m.type === 'fatal') opt.log(`loadgen worker ${w.pid}: ${m.error}`);
        const waiter = w.waiters.findIndex((x) => x.type === m.type);
        if (waiter >= 0) w.waiters.splice(waiter, 1)[0].resolve(m);
        else w.inbox.push(m);
      });
      exited.push(
        new Promise((_, reject) =>
          w.on('exit', (code, sig) =>
            reject(new Error(`loadgen worker ${w.pid} exited (code ${code}, signal ${sig})`)),
          ),
        ),
      );
      w.send({
        type: 'config',
        url: opt.url,
        token: opt.token,
        channel: opt.channel,
        count,
        idBase: i * per,
        batch: Math.max(1, Math.floor(opt.batch / nWorkers)),
        connectTimeoutMs: opt.connectTimeout * 1000,
        expectedEvents,
        maxMs,
        // A worker exits by itself after this long, whatever happens to this process.
        lifetimeMs: connectDeadline + maxMs + 60_000,
        base: 0,
      });
      readyAll.push(waitFor(w, 'ready'));
    }
    const died = Promise.race(exited);
    died.catch(() => {});
    const t0 = now();
    const progress = setInterval(() => {
      const c = workers.reduce((a, w) => a + w.progress.connected, 0);
      const f = workers.reduce((a, w) => a + w.progress.failed, 0);
      opt.log(`  connecting… ${c}/${opt.clients} (${f} failed)`);
    }, 5000);
    let deadlineTimer;
    const deadline = new Promise((_, reject) => {
      deadlineTimer = setTimeout(
        () => reject(new Error(`clients not connected after ${connectDeadline / 1000} s`)),
        connectDeadline,
      );
    });
    let ready;
    try {
      ready = await Promise.race([Promise.all(readyAll), died, deadline]);
    } finally {
      clearInterval(progress);
      clearTimeout(deadlineTimer);
    }
    const connect = {
      requested: opt.clients,
      connected: ready.reduce((a, r) => a + r.connected, 0),
      failed: ready.reduce((a, r) => a + r.failed, 0),
      seconds: (now() - t0) / 1000,
      errors: mergeCounts(ready.map((r) => r.errors)),
    };
    opt.log(
      `  ${connect.connected}/${opt.clients} clients subscribed in ${connect.seconds.toFixed(1)} s` +
        (connect.failed ? ` — ${connect.failed} FAILED ${JSON.stringify(connect.errors)}` : ''),
    );
    if (connect.connected === 0) throw new Error('no client could connect');

    // -- plan the timeline
    const tStart = now() + 200;
    const A = tStart + opt.warmup * 1000;
    const B = A + opt.seconds * 1000;
    const stopAt = B + opt.cooldown * 1000;
    for (const w of workers) w.send({ type: 'start', base: tStart, winA: A, winB: B });

    // -- publisher
    const pub = publisher(publishUrl, opt, tStart, stopAt, A, B, stop);
    // -- window marks
    const sample = () => ({
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
    for (const w of workers) w.send({ type: 'mark-start' });
    opt.log(`  warm-up done, measuring ${opt.seconds} s…`);
    await Promise.race([sleepUntil(B), died]);
    const sB = sample();
    for (const w of workers) w.send({ type: 'mark-end' });
    const published = await Promise.race([pub, died]);

    // -- drain and gather
    const results = await Promise.race([
      Promise.all(
        workers.map((w) => {
          w.send({ type: 'drain', acked: published.ackedSeqs, timeoutMs: opt.drain * 1000 });
          return waitFor(w, 'result');
        }),
      ),
      died,
    ]);
    for (const w of workers) w.send({ type: 'exit' });

    return summarize({ opt, connect, published, results, sA, sB, tStart, A, B, workers });
  } finally {
    stop.stopped = true;
    setTimeout(kill, 500).unref();
    await Promise.race([
      Promise.allSettled(exited.map((p) => p.catch(() => {}))),
      sleep(1000).then(kill),
    ]);
  }
}

function waitFor(w, type) {
  const i = w.inbox.findIndex((m) => m.type === type);
  if (i >= 0) return Promise.resolve(w.inbox.splice(i, 1)[0]);
  return new Promise((resolve) => w.waiters.push({ type, resolve }));
}

function sleepUntil(t) {
  return sleep(Math.max(0, t - now()));
}

function mergeCounts(list) {
  const out = {};
  for (const o of list) for (const [k, v] of Object.entries(o ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** Builds the `data` of publish n: {t0, n, pad} with ~size bytes of JSON. */
function makePadder(size) {
  const sample = JSON.stringify({ t0: 1_700_000_000_000.123, n: 1000, pad: '' }).length;
  const pad = 'x'.repeat(Math.max(0, size - sample));
  return (n) => ({ t0: now(), n, pad });
}

/** Publishes at opt.rate from tStart until stopAt; resolves once every POST has ended. */
async function publisher(url, opt, tStart, stopAt, A, B, stop) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const data = makePadder(opt.size);
  const headers = { 'content-type': 'application/json' };
  if (opt.publishToken) headers.authorization = `Bearer ${opt.publishToken}`;
  const interval = 1000 / opt.rate;
  const ackedSeqs = [];
  const httpMs = [];
  const errors = {};
  let inFlight = 0;
  let maxInFlight = 0;
  let sent = 0;
  let inWindow = 0;
  let late = 0;
  const pending = [];

  const post = (n) =>
    new Promise((resolve) => {
      const d = data(n);
      const body = JSON.stringify({ channel: opt.channel, data: d });
      if (d.t0 >= A && d.t0 < B) inWindow++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let settled = false;
      const ok = () => {
        if (settled) return;
        settled = true;
        inFlight--;
        resolve();
      };
      const fail = (why) => {
        if (settled) return;
        errors[why] = (errors[why] ?? 0) + 1;
        ok();
      };
      const req = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks = [];
          res.on('data', (c) => chunks.push(c));
          res.on('end', () => {
            httpMs.push(now() - d.t0);
            if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
            try {
              const seq = JSON.parse(Buffer.concat(chunks).toString('utf8')).results?.[0]?.seq;
              if (typeof seq !== 'number') return fail('no seq in answer');
              ackedSeqs.push(seq);
            } catch {
              return fail('bad JSON answer');
            }
            ok();
          });
          res.on('error', (e) => fail(e.code || e.message));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('publish timeout')));
      req.on('error', (e) => fail(e.code || e.message));
      req.end(body);
    });

  for (let n = 0; ; n++) {
    const due = tStart + n * interval;
    if (due >= stopAt) break;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    else if (wait < -interval) late++;
    if (stop.stopped) break;
    sent++;
    pending.push(post(n));
  }
  await Promise.all(pending);
  agent.destroy();
  httpMs.sort((a, b) => a - b);
  const q = (p) =>
    httpMs.length ? httpMs[Math.min(httpMs.length - 1, Math.floor(p * httpMs.length))] : null;
  ackedSeqs.sort((a, b) => a - b);
  return {
    sent,
    acked: ackedSeqs.length,
    ackedSeqs,
    inWindow,
    late,
    errors,
    maxInFlight,
    httpP50: q(0.5),
    httpP99: q(0.99),
    httpMax: httpMs.length ? httpMs[httpMs.length - 1] : null,
  };
}

function summarize({ opt, connect, published, results, sA, sB, tStart, A, B, workers }) {
  const hist = new Uint32Array(HIST_SIZE);
  const receipts = new Uint32Array(results[0].receipts.length);
  for (const r of results) {
    for (let i = 0; i < hist.length; i++) hist[i] += r.hist[i];
    for (let i = 0; i < receipts.length; i++) receipts[i] += r.receipts[i];
  }
  // Deliveries received while the CPU was being measured: [sA.t, sB.t) on the 1 ms buckets.
  let delivered = 0;
  for (let i = Math.max(0, Math.round(sA.t - tStart)); i < Math.round(sB.t - tStart); i++) {
    delivered += receipts[i] ?? 0;
  }
  const windowSeconds = (sB.t - sA.t) / 1000;
  const timeline = [];
  for (let s = 0; s * 1000 < receipts.length; s++) {
    let sum = 0;
    for (let i = s * 1000; i < Math.min(receipts.length, (s + 1) * 1000); i++) sum += receipts[i];
    timeline.push(sum);
  }
  while (timeline.length && timeline[timeline.length - 1] === 0) timeline.pop();

  const p = percentiles(hist, [0.5, 0.9, 0.99, 0.999]);
  const latencySum = results.reduce((a, r) => a + r.latencySum, 0);
  const integrity = {};
  for (const key of Object.keys(results[0].integrity)) {
    integrity[key] =
      key === 'drainSeconds'
        ? Math.max(...results.map((r) => r.integrity[key]))
        : results.reduce((a, r) => a + r.integrity[key], 0);
  }
  integrity.parseErrors = results.reduce((a, r) => a + r.parseErrors, 0);
  integrity.publishFailed = published.sent - published.acked;
  integrity.complete =
    integrity.lost === 0 &&
    integrity.dup === 0 &&
    integrity.closedDuringRun === 0 &&
    integrity.publishFailed === 0 &&
    connect.failed === 0;

  const machineBusy =
    sA.machine && sB.machine
      ? (sB.machine.busy - sA.machine.busy) / Math.max(1, sB.machine.total - sA.machine.total)
      : null;
  const cores = os.cpus().length;
  const coordinatorCores =
    (sB.self.user - sA.self.user + sB.self.system - sA.self.system) / 1e6 / windowSeconds;
  const wk = workers.map((w, i) => ({
    pid: w.pid,
    cpuCores:
      sA.workers[i] !== null && sB.workers[i] !== null
        ? (sB.workers[i] - sA.workers[i]) / windowSeconds
        : null,
    elu: results[i].window?.elu ?? null,
    sysShare: results[i].window?.sysShare ?? null,
  }));
  const notes = [];
  const maxElu = Math.max(...wk.map((w) => w.elu ?? 0));
  const maxCores = Math.max(...wk.map((w) => w.cpuCores ?? 0));
  const saturated = maxElu > 0.9 || maxCores > 0.9;
  if (saturated) {
    notes.push(
      `load generator saturated (worker event loop ${(maxElu * 100).toFixed(0)} % busy, ` +
        `${maxCores.toFixed(2)} cores): latency and possibly delivery rate are bounded by the clients`,
    );
  }
  let server = null;
  if (opt.serverPid && sA.server && sB.server) {
    const user = sB.server.user - sA.server.user;
    const sys = sB.server.sys - sA.server.sys;
    const cpuSeconds = user + sys;
    server = {
      pid: opt.serverPid,
      cpuSeconds,
      cpuCores: cpuSeconds / windowSeconds,
      cpuUsPerDelivery: delivered > 0 ? (cpuSeconds * 1e6) / delivered : null,
      sysShare: cpuSeconds > 0 ? sys / cpuSeconds : null,
      rssMb: procRssMb(opt.serverPid),
    };
  }
  // The other measured processes (cluster run: the publishing instance and Redis), over the
  // same window and per delivery counted in it, like the server.
  const extra = {};
  for (const [name, pid] of Object.entries(opt.extraPids ?? {})) {
    const a = sA.extra?.[name];
    const b = sB.extra?.[name];
    if (!a || !b) {
      extra[name] = { pid, cpuSeconds: null, cpuCores: null, cpuUsPerDelivery: null };
      continue;
    }
    const cpuSeconds = b.user - a.user + (b.sys - a.sys);
    extra[name] = {
      pid,
      cpuSeconds,
      cpuCores: cpuSeconds / windowSeconds,
      cpuUsPerDelivery: delivered > 0 ? (cpuSeconds * 1e6) / delivered : null,
      sysShare: cpuSeconds > 0 ? (b.sys - a.sys) / cpuSeconds : null,
      rssMb: procRssMb(pid),
    };
  }
  const extraCores = Object.values(extra).reduce((acc, e) => acc + (e.cpuCores ?? 0), 0);
  // Interrupt time (mostly the loopback network stack: it is not charged to any process) and
  // CPU used by anything but the server and the load generator (other tenants, kernel threads):
  // shows how noisy the measurement was.
  const share = (key) =>
    sA.machine && sB.machine
      ? ((sB.machine[key] - sA.machine[key]) / Math.max(1, sB.machine.total - sA.machine.total)) *
        cores
      : null;
  const irqCores = share('softirq');
  const stealCores = share('steal');
  const otherCores =
    machineBusy === null
      ? null
      : machineBusy * cores -
        irqCores -
        stealCores -
        (server?.cpuCores ?? 0) -
        extraCores -
        wk.reduce((a, w) => a + (w.cpuCores ?? 0), 0) -
        coordinatorCores;
  if (machineBusy !== null && machineBusy > 0.9) {
    notes.push(
      `machine CPU ${(machineBusy * 100).toFixed(0)} % busy during the window ` +
        `(other processes ${otherCores.toFixed(2)} cores, interrupts ${irqCores.toFixed(2)}): ` +
        'server and clients competed for cores',
    );
  }
  const offered = connect.connected * opt.rate;
  const keptUp = delivered / windowSeconds >= 0.95 * offered;
  const contended =
    (otherCores !== null && otherCores > 0.25) || (machineBusy !== null && machineBusy > 0.95);
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
      count: p.total,
      p50: p[0.5],
      p90: p[0.9],
      p99: p[0.99],
      p999: p[0.999],
      max: Math.max(...results.map((r) => r.latencyMax)),
      mean: p.total ? latencySum / p.total : null,
      negative: results.reduce((a, r) => a + r.negative, 0),
    },
    integrity,
    server,
    extra,
    loadgen: {
      workers: wk,
      coordinatorCpuCores: coordinatorCores,
      machineBusy,
      contended,
      keptUp,
      machineCores: cores,
      irqCores,
      stealCores,
      otherCores,
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
async function cliMain() {
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
      'usage: loadgen.js --url ws://127.0.0.1:PORT/api/v1/ws [--clients N] [--rate R] [--size S]\n' +
        '       [--seconds T] [--warmup W] [--workers K]\n' +
        '       [--token JWT | --jwt-secret S]\n' +
        '       [--publish-token T] [--publish-url http://HOST:PORT/api/v1/publish]\n' +
        '       [--pid SERVER_PID] [--json]\n',
    );
    process.exit(2);
  }
  const num = (k) => Number(values[k]);
  const opts = {
    url: values.url,
    clients: num('clients'),
    rate: num('rate'),
    size: num('size'),
    warmup: num('warmup'),
    seconds: num('seconds'),
    workers: num('workers'),
    batch: num('batch'),
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

/** HS256 JWT {sub, accounts: []} valid 1 h, for the gateway's hello. */
export async function signToken(secret, sub = 'bench-0') {
  const { SignJWT } = await import('jose');
  return new SignJWT({ accounts: [] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('1h')
    .sign(new TextEncoder().encode(secret));
}

export function formatResult(r) {
  const f = (x, d = 2) => (x === null || x === undefined ? '—' : Number(x).toFixed(d));
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
  for (const [name, e] of Object.entries(r.extra ?? {})) {
    lines.push(
      `${name} pid ${e.pid}: ${f(e.cpuCores)} cores, ${f(e.cpuUsPerDelivery, 3)} µs CPU per delivery`,
    );
  }
  for (const n of r.loadgen.notes) lines.push(`NOTE: ${n}`);
  return lines.join('\n');
}

if (process.argv[1] === SELF) {
  if (process.argv.includes('--worker')) workerMain();
  else
    cliMain().catch((err) => {
      process.stderr.write(`loadgen: ${err?.stack ?? err}\n`);
      process.exit(1);
    });
}
