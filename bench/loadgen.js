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
 * The module also serves bench/abuse.js and bench/abuse-workers.js: worker processes
 * (forkWorker, workerEntry, subscriberWorker: the clients above), the publisher, the latency
 * histogram and the /proc CPU sampling.
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
import { dialect } from './dialect.js';

const SELF = fileURLToPath(import.meta.url);

/** Worker processes alive in this process (killed by killWorkers on abrupt exit). */
const liveWorkers = new Set();
export function killWorkers() {
  for (const w of liveWorkers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
}

/** High-resolution wall clock in ms, comparable across processes on this machine. */
export const now = () => performance.timeOrigin + performance.now();
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** Adds one to obj[key]. */
export const count = (obj, key) => (obj[key] = (obj[key] ?? 0) + 1);

// ---------------------------------------------------------------------------------------------
// Latency histogram: 10 µs buckets below 100 ms, 1 ms buckets from 100 ms to 60 s.
const FINE_BUCKETS = 10_000; // 0..100 ms by 10 µs
export const HIST_SIZE = FINE_BUCKETS + 59_900 + 1; // + 100 ms..60 s by 1 ms, + overflow
/** The bucket of a latency in ms (record with `hist[histIndex(ms)]++`). */
export function histIndex(ms) {
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
/** The sum of the workers' histograms `r[key]`. */
export function mergeHist(results, key) {
  const hist = new Uint32Array(HIST_SIZE);
  for (const r of results) for (let i = 0; i < HIST_SIZE; i++) hist[i] += r[key][i];
  return hist;
}
/** Latency figures (ms) of a merged histogram, with the workers' latencyMax and latencySum. */
export function latencyFigures(hist, results) {
  const p = percentiles(hist, [0.5, 0.9, 0.99, 0.999]);
  return {
    count: p.total,
    p50: p[0.5],
    p90: p[0.9],
    p99: p[0.99],
    p999: p[0.999],
    max: Math.max(...results.map((r) => r.latencyMax)),
    mean: p.total ? results.reduce((a, r) => a + r.latencySum, 0) / p.total : null,
  };
}
/** The value at quantile q of a sorted array; null when it is empty. */
export function quantile(sorted, q) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] : null;
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
/**
 * The machine over the window between samples sA and sB ({machine: machineCpu(), self:
 * process.cpuUsage()}): busy fraction; interrupt (softirq), steal and this process's CPU in
 * cores; `otherCores`, CPU used by anything but those, this process and the `measuredCores`
 * (other tenants, kernel threads; approximate: the kernel counts the machine and the processes
 * differently); `contended` when other > 0.25 core or the machine > 95 % busy.
 */
export function machineWindow(sA, sB, windowSeconds, measuredCores) {
  const cores = os.cpus().length;
  const share = (key) =>
    sA.machine && sB.machine
      ? (sB.machine[key] - sA.machine[key]) / Math.max(1, sB.machine.total - sA.machine.total)
      : null;
  const busy = share('busy');
  const irqCores = busy === null ? null : share('softirq') * cores;
  const stealCores = busy === null ? null : share('steal') * cores;
  const selfCores =
    (sB.self.user - sA.self.user + sB.self.system - sA.self.system) / 1e6 / windowSeconds;
  const otherCores =
    busy === null ? null : busy * cores - irqCores - stealCores - measuredCores - selfCores;
  const contended = (otherCores !== null && otherCores > 0.25) || (busy !== null && busy > 0.95);
  return { busy, cores, irqCores, stealCores, selfCores, otherCores, contended };
}

// ---------------------------------------------------------------------------------------------
// Worker processes: forked by a coordinator (runLoad here, bench/abuse.js), configured by their
// first message, talking over IPC.

/**
 * Forks `script --worker <role>` and sends it `cfg` (its first message). The worker's messages
 * are awaited with `w.next(type, timeoutMs?)`, which rejects when the worker exits first or
 * after timeoutMs (if given); `w.died` rejects when it exits; `w.progress` is its last
 * `progress` message; its `fatal` messages are logged; `w.post(m)` sends unless it is gone.
 */
export function forkWorker(script, role, cfg, log) {
  const w = fork(script, ['--worker', role], {
    serialization: 'advanced',
    execPath: process.execPath,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  liveWorkers.add(w);
  const inbox = [];
  const waiters = [];
  w.progress = { connected: 0, failed: 0 };
  w.died = new Promise((_, reject) =>
    w.on('exit', (code, sig) => {
      liveWorkers.delete(w);
      reject(new Error(`${role} worker ${w.pid} exited (code ${code}, signal ${sig})`));
    }),
  );
  w.died.catch(() => {});
  w.on('message', (m) => {
    if (m.type === 'progress') {
      w.progress = m;
      return;
    }
    if (m.type === 'fatal') log(`${role} worker ${w.pid}: ${m.error}`);
    const i = waiters.findIndex((x) => x.type === m.type);
    if (i >= 0) waiters.splice(i, 1)[0].resolve(m);
    else inbox.push(m);
  });
  w.next = (type, timeoutMs) => {
    const i = inbox.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
    const waits = [new Promise((resolve) => waiters.push({ type, resolve })), w.died];
    let timer;
    if (timeoutMs) {
      waits.push(
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${role} worker: no ${type} after ${timeoutMs / 1000} s`)),
            timeoutMs,
          );
        }),
      );
    }
    return Promise.race(waits).finally(() => clearTimeout(timer));
  };
  w.post = (m) => {
    if (w.connected) w.send(m);
  };
  w.send(cfg);
  return w;
}

/** Asks the workers to exit and kills those still alive 1 s later. */
export async function endWorkers(list) {
  for (const w of list) w.post({ type: 'exit' });
  await Promise.race([Promise.allSettled(list.map((w) => w.died)), sleep(1000)]);
  for (const w of list) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
}

/** The share of `total` clients of each of n workers: {count, idBase, batch}. */
export function shares(total, n, batch) {
  const per = Math.floor(total / n);
  return Array.from({ length: n }, (_, i) => ({
    count: i === n - 1 ? total - per * (n - 1) : per,
    idBase: i * per,
    batch: Math.max(1, Math.floor(batch / n)),
  }));
}

/**
 * Waits until every subscriber worker has reported `ready` (at most timeoutMs; progress logged
 * every 5 s) → {requested, connected, failed, seconds since t0, errors}; logs the outcome and
 * throws when no client connected. `who`: what the clients are called in the log.
 */
export async function awaitSubscribed(workers, { requested, t0, timeoutMs, log, who = 'client' }) {
  const progress = setInterval(() => {
    const c = workers.reduce((a, w) => a + w.progress.connected, 0);
    const f = workers.reduce((a, w) => a + w.progress.failed, 0);
    log(`  connecting… ${c}/${requested} (${f} failed)`);
  }, 5000);
  let ready;
  try {
    ready = await Promise.all(workers.map((w) => w.next('ready', timeoutMs)));
  } finally {
    clearInterval(progress);
  }
  const connect = {
    requested,
    connected: ready.reduce((a, r) => a + r.connected, 0),
    failed: ready.reduce((a, r) => a + r.failed, 0),
    seconds: (now() - t0) / 1000,
    errors: mergeCounts(ready.map((r) => r.errors)),
  };
  log(
    `  ${connect.connected}/${requested} ${who}s subscribed in ${connect.seconds.toFixed(1)} s` +
      (connect.failed ? ` — ${connect.failed} FAILED ${JSON.stringify(connect.errors)}` : ''),
  );
  if (connect.connected === 0) throw new Error(`no ${who} could connect`);
  return connect;
}

/**
 * Plans the run from now: publishing starts at tStart, the warm-up ends at A, the measured
 * window is [A, B), publishing stops at stopAt after the cool-down; tells the subscriber workers
 * (`start`).
 */
export function startTimeline(workers, { warmup, seconds, cooldown }) {
  const tStart = now() + 200;
  const A = tStart + warmup * 1000;
  const B = A + seconds * 1000;
  const stopAt = B + cooldown * 1000;
  for (const w of workers) w.post({ type: 'start', base: tStart, winA: A, winB: B });
  return { tStart, A, B, stopAt };
}

/** Drains the subscriber workers against the acknowledged seqs → their `result` messages. */
export function drainWorkers(workers, acked, drainSeconds) {
  return Promise.all(
    workers.map((w) => {
      w.post({ type: 'drain', acked, timeoutMs: drainSeconds * 1000 });
      return w.next('result', (drainSeconds + 20) * 1000);
    }),
  );
}

// -- in the worker

const toParent = (m) => process.send?.(m);

/**
 * Entry of a worker process: waits for its config (the parent's first message), then runs
 * main(cfg); a rejection is reported as `fatal` and ends the process. The process exits by
 * itself after cfg.lifetimeMs and when the parent is gone.
 */
export function workerEntry(main) {
  process.on('disconnect', () => process.exit(0));
  process.once('message', (cfg) => {
    setTimeout(() => process.exit(3), cfg.lifetimeMs).unref();
    Promise.resolve()
      .then(() => main(cfg))
      .catch((err) => {
        toParent({ type: 'fatal', error: String(err?.stack ?? err) });
        process.exit(1);
      });
  });
}

/** CPU (cores, system share) and event-loop utilization of this process over the window. */
export function windowMarks() {
  let mark = null;
  const marks = {
    stats: null,
    start() {
      mark = { elu: performance.eventLoopUtilization(), cpu: process.cpuUsage(), t: now() };
    },
    end() {
      if (!mark) return;
      const secs = (now() - mark.t) / 1000;
      const cpu = process.cpuUsage(mark.cpu);
      marks.stats = {
        elu: performance.eventLoopUtilization(mark.elu).utilization,
        cpuCores: (cpu.user + cpu.system) / 1e6 / secs,
        sysShare: cpu.system / Math.max(1, cpu.user + cpu.system),
      };
    },
  };
  return marks;
}

/** Seq bookkeeping of an event on client c; true when c receives it for the first time. */
function firstReceipt(c, seq) {
  const idx = seq - c.seq0 - 1;
  if (!(idx >= 0 && idx < 10_000_000)) {
    c.unexpected++;
    return false;
  }
  if (idx >= c.bits.length) {
    const bigger = new Uint8Array(Math.max(idx + 1, c.bits.length * 2));
    bigger.set(c.bits);
    c.bits = bigger;
  }
  if (c.bits[idx]) {
    c.dup++;
    return false;
  }
  c.bits[idx] = 1;
  c.unique++;
  if (seq < c.maxSeq) c.ooo++;
  else c.maxSeq = seq;
  return true;
}

/**
 * The subscribers of one worker process (this file's workers, and the legitimate clients of
 * bench/abuse-workers.js). cfg: {url, channel, client (hello's client name), count, idBase,
 * batch, connectTimeoutMs, expectedEvents, ips?} (ips: source addresses, client id → ips[id %
 * ips.length], target?: 'socketio' speaks through Socket.IO, bench/dialect.js). Each client:
 * WebSocket `archon.v1` → hello → welcome → subscribe → subscribed,
 * answers server pings, keeps seq bookkeeping. Hooks: on.event(c, msg, t) for each event a
 * subscribed client receives for the first time (t: receive time), on.pong?(c, t), and for the
 * parent's messages on.start(m) (`start`: {base, winA, winB}), on.drain?() (`drain` begins) and
 * on.result() (fields added to the `result`). Returns {clients, connectAll(tokenFor)}:
 * connectAll connects the clients (`tokenFor(i)`: the JWT of the i-th) and reports `ready`.
 */
export function subscriberWorker(cfg, on) {
  const speak = dialect(cfg.target);
  const clients = [];
  const marks = windowMarks();
  let parseErrors = 0;
  let pongs = 0; // server pings answered
  let closedDuringRun = 0;
  const closeCodes = {}; // of the connections the server closed during the run
  const serverErrors = {};
  const connectErrors = {};

  function connectOne(i, token) {
    const id = cfg.idBase + i;
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
        closing: false,
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
      const ws = new WebSocket(cfg.url, speak.protocols, {
        perMessageDeflate: false,
        skipUTF8Validation: true,
        handshakeTimeout: cfg.connectTimeoutMs,
        localAddress: cfg.ips?.[id % cfg.ips.length],
      });
      c.ws = ws;
      const hello = () => speak.send(ws, { op: 'hello', token, client: cfg.client });
      ws.on('open', () => speak.opened(ws, hello));
      ws.on('message', (raw) => {
        const t = now();
        let msg;
        try {
          // Frames are ASCII JSON: latin1 decoding is cheaper than UTF-8 and gives the same text.
          msg = speak.read(ws, raw.toString('latin1'), hello);
        } catch {
          parseErrors++;
          return;
        }
        if (msg === null) return;
        const type = msg.type;
        if (type === 'event') {
          if (c.state === 2 && firstReceipt(c, msg.seq)) on.event(c, msg, t);
        } else if (type === 'ping') {
          pongs++;
          speak.send(ws, { op: 'pong' });
        } else if (type === 'pong') {
          on.pong?.(c, t);
        } else if (type === 'welcome' && c.state === 0) {
          c.state = 1;
          speak.send(ws, { op: 'subscribe', id: 1, channel: cfg.channel });
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
      ws.on('error', (err) => {
        const m = /Unexpected server response: (\d+)/.exec(err.message);
        done(false, m ? `HTTP ${m[1]}` : err.code || err.message);
      });
      ws.on('close', (code) => {
        if (!settled) done(false, `closed ${code} during handshake`);
        else if (c.state === 2 && !c.closing) {
          closedDuringRun++;
          count(closeCodes, String(code));
          c.state = 3;
        }
      });
    });
  }

  async function connectAll(tokenFor) {
    let next = 0;
    let failed = 0;
    let lastProgress = 0;
    const lane = async () => {
      // Fail fast when nothing connects (server broken): stop after the first failed lanes.
      while (next < cfg.count && !(clients.length === 0 && failed >= Math.min(cfg.batch, 20))) {
        const i = next++;
        const c = await connectOne(i, tokenFor(i));
        if (c) clients.push(c);
        else failed++;
        if (now() - lastProgress > 1000) {
          lastProgress = now();
          toParent({ type: 'progress', connected: clients.length, failed });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(cfg.batch, cfg.count) }, lane));
    toParent({ type: 'ready', connected: clients.length, failed, errors: connectErrors });
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
    const out = {
      expected: 0,
      unique: 0,
      lost: 0,
      dup: 0,
      ooo: 0,
      unexpected: 0,
      clientsWithLoss: 0,
      closedDuringRun,
      drainSeconds: (now() - t0) / 1000,
    };
    for (const c of clients) {
      let missing = 0;
      let got = 0;
      for (const s of acked) {
        if (s <= c.seq0) continue;
        out.expected++;
        const idx = s - c.seq0 - 1;
        if (idx < c.bits.length && c.bits[idx]) got++;
        else missing++;
      }
      out.lost += missing;
      if (missing > 0) out.clientsWithLoss++;
      out.dup += c.dup;
      out.ooo += c.ooo;
      out.unique += c.unique;
      out.unexpected += c.unexpected + (c.unique - got);
    }
    return out;
  }

  process.on('message', (m) => {
    if (m.type === 'start') on.start(m);
    else if (m.type === 'mark-start') marks.start();
    else if (m.type === 'mark-end') marks.end();
    else if (m.type === 'drain') {
      on.drain?.();
      drain(m.acked, m.timeoutMs)
        .then((integrity) =>
          toParent({
            type: 'result',
            integrity,
            parseErrors,
            pongs,
            closeCodes,
            serverErrors,
            window: marks.stats,
            ...on.result(),
          }),
        )
        .catch((err) => toParent({ type: 'fatal', error: String(err?.stack ?? err) }));
    } else if (m.type === 'exit') {
      for (const c of clients) {
        c.closing = true;
        c.ws.terminate();
      }
      setTimeout(() => process.exit(0), 50);
    }
  });
  return { clients, connectAll };
}

/** This file's worker: latency publish → receipt (now − data.t0) and receipts per ms. */
function workerMain(cfg) {
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
      event(c, msg, t) {
        const b = Math.floor(t - base);
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
      },
      result: () => ({ hist, receipts, latencySum, latencyMax, negative }),
    },
  );
  return pool.connectAll(() => cfg.token);
}

// ---------------------------------------------------------------------------------------------
// Coordinator: forks the workers, publishes, measures the window, gathers results.

/**
 * Runs one load against a server; resolves with the figures (see README).
 * @param {object} o
 * @param {string} o.url           ws:// URL of the client endpoint
 * @param {string} [o.target]      'socketio': the clients speak through Socket.IO (dialect.js)
 * @param {string} [o.publishUrl]  default: same origin + /api/v1/publish
 * @param {string} [o.token]       JWT sent in hello ('' for the bare server)
 * @param {string} [o.publishToken]
 * @param {number} [o.serverPid]   process whose CPU is measured over the window
 * @param {{start: () => Promise<unknown>, end: () => Promise<object>}} [o.probe]  called at
 *   the start and the end of the window; what end() gives is the result's `probe`
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
        connectTimeoutMs: opt.connectTimeout * 1000,
        expectedEvents,
        maxMs,
        // A worker exits by itself after this long, whatever happens to this process.
        lifetimeMs: connectDeadline + maxMs + 60_000,
      },
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
    for (const w of workers) w.post({ type: 'mark-start' });
    const probing = opt.probe?.start().catch((err) => ({ error: String(err?.message ?? err) }));
    opt.log(`  warm-up done, measuring ${opt.seconds} s…`);
    await Promise.race([sleepUntil(B), died]);
    const sB = sample();
    for (const w of workers) w.post({ type: 'mark-end' });
    await probing;
    const probe = await opt.probe?.end().catch((err) => ({ error: String(err?.message ?? err) }));
    const published = await Promise.race([pub, died]);

    // -- drain and gather
    const results = await drainWorkers(workers, published.ackedSeqs, opt.drain);
    const r = summarize({ opt, connect, published, results, sA, sB, tStart, A, B, workers });
    r.probe = probe ?? null;
    return r;
  } finally {
    stop.stopped = true;
    await endWorkers(workers);
  }
}

export function sleepUntil(t) {
  return sleep(Math.max(0, t - now()));
}

export function mergeCounts(list) {
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

/**
 * Publishes at opt.rate ({rate, size, channel, publishToken}) from tStart until stopAt, each
 * POST scheduled on absolute times (up to 8 in flight); resolves once every POST has ended with
 * {sent, acked, ackedSeqs, inWindow, late, errors, maxInFlight, httpP50, httpP99, httpMax}.
 * `stop.stopped` ends it early.
 */
export async function publisher(url, opt, tStart, stopAt, A, B, stop) {
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
  ackedSeqs.sort((a, b) => a - b);
  return {
    sent,
    acked: ackedSeqs.length,
    ackedSeqs,
    inWindow,
    late,
    errors,
    maxInFlight,
    httpP50: quantile(httpMs, 0.5),
    httpP99: quantile(httpMs, 0.99),
    httpMax: httpMs.at(-1) ?? null,
  };
}

/** The workers' integrity figures summed (drainSeconds: the longest drain). */
export function mergeIntegrity(results) {
  const integrity = {};
  for (const key of Object.keys(results[0].integrity)) {
    integrity[key] =
      key === 'drainSeconds'
        ? Math.max(...results.map((r) => r.integrity[key]))
        : results.reduce((a, r) => a + r.integrity[key], 0);
  }
  return integrity;
}

/** CPU of a process over the window (two procCpuTimes samples), also per delivery. */
function cpuFigures(pid, a, b, windowSeconds, delivered) {
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

function summarize({ opt, connect, published, results, sA, sB, tStart, A, B, workers }) {
  const hist = mergeHist(results, 'hist');
  const receipts = new Uint32Array(results[0].receipts.length);
  for (const r of results) for (let i = 0; i < receipts.length; i++) receipts[i] += r.receipts[i];
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

  const integrity = mergeIntegrity(results);
  integrity.parseErrors = results.reduce((a, r) => a + r.parseErrors, 0);
  integrity.publishFailed = published.sent - published.acked;
  integrity.complete =
    integrity.lost === 0 &&
    integrity.dup === 0 &&
    integrity.closedDuringRun === 0 &&
    integrity.publishFailed === 0 &&
    connect.failed === 0;

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
  const server =
    opt.serverPid && sA.server && sB.server
      ? cpuFigures(opt.serverPid, sA.server, sB.server, windowSeconds, delivered)
      : null;
  // The other measured processes (cluster run: the publishing instance and Redis), over the
  // same window and per delivery counted in it, like the server.
  const extra = {};
  for (const [name, pid] of Object.entries(opt.extraPids ?? {})) {
    const a = sA.extra?.[name];
    const b = sB.extra?.[name];
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
    [server, ...Object.values(extra), ...wk].reduce((acc, x) => acc + (x?.cpuCores ?? 0), 0),
  );
  if (machine.busy !== null && machine.busy > 0.9) {
    notes.push(
      `machine CPU ${(machine.busy * 100).toFixed(0)} % busy during the window ` +
        `(other processes ${machine.otherCores.toFixed(2)} cores, interrupts ${machine.irqCores.toFixed(2)}): ` +
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

/** HS256 JWT {sub, accounts} valid 1 h, for the gateway's hello. */
export async function signToken(secret, sub = 'bench-0', accounts = [], lifetime = '1h') {
  const { SignJWT } = await import('jose');
  return new SignJWT({ accounts })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(lifetime)
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
  if (process.argv.includes('--worker')) workerEntry(workerMain);
  else
    cliMain().catch((err) => {
      process.stderr.write(`loadgen: ${err?.stack ?? err}\n`);
      process.exit(1);
    });
}
