/**
 * Helpers shared by the benchmark orchestrators (run.js, abuse.js): the command line, the run
 * under a hard time bound (`runMain`: children killed on exit, error, signals and at the bound),
 * free ports, server children under `timeout(1)` (they stop by themselves even if the benchmark
 * is killed), small HTTP GET / POST, the machine-quiet wait, the dist/ build checks and the
 * reporting helpers (median, fixed digits, tables, the environment, the results file).
 */
import { Buffer } from 'node:buffer';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { killWorkers, machineCpu, sleep } from './loadgen.js';

export const BENCH = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.dirname(BENCH);
export const GATEWAY = path.join(ROOT, 'bin', 'archon-ws.js');

const logStderr = (s) => process.stderr.write(`${s}\n`);

// ---------------------------------------------------------------------------------------------
/**
 * The command line of a benchmark script (the one at `scriptUrl`: its import.meta.url):
 * `options` (node:util parseArgs) plus -h/--help, which prints the script's header comment
 * and exits. An unknown option or a bad form exits with status 2 and a one-line error.
 * → {argv, fail}: fail(msg) prints `name: msg` and exits with status 2.
 */
export function parseOptions(scriptUrl, name, options) {
  const fail = (msg) => {
    logStderr(`${name}: ${msg}`);
    process.exit(2);
  };
  let argv;
  try {
    ({ values: argv } = parseArgs({
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } },
    }));
  } catch (err) {
    // e.g. a value that starts with -- needs the = form: --node-args=--max-semi-space-size=16
    fail(`${err.message} (--help lists the options)`);
  }
  if (argv.help) {
    process.stdout.write(readFileSync(fileURLToPath(scriptUrl), 'utf8').split('*/')[0]);
    process.exit(0);
  }
  return { argv, fail };
}

/**
 * The command line of an orchestrator: its own `options` plus those run.js, abuse.js and
 * storm.js share — the published load (--rate msg/s, --size bytes), the timeline (--warmup,
 * --seconds), --rounds, the wait for a quiet machine (--quiet-wait seconds, --quiet-below a
 * fraction of all cores), --timeout, --no-save — and -h/--help (parseOptions). `defaults`: the
 * script's --rate and --quiet-wait defaults and its largest --size. → {argv, check, opt}: opt
 * has the shared options' values, checked; check(ok, msg) exits with status 2 and
 * `name: msg` unless ok.
 */
export function parseCli(scriptUrl, name, options, { rate, quietWait, maxSize }) {
  const { argv, fail } = parseOptions(scriptUrl, name, {
    ...options,
    rate: { type: 'string', default: rate },
    size: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    'quiet-wait': { type: 'string', default: quietWait },
    'quiet-below': { type: 'string', default: '0.25' },
    timeout: { type: 'string' },
    'no-save': { type: 'boolean', default: false },
  });
  const check = (ok, msg) => {
    if (!ok) fail(msg);
  };
  const opt = {
    rate: Number(argv.rate),
    size: Number(argv.size),
    seconds: Number(argv.seconds),
    warmup: Number(argv.warmup),
    rounds: Number(argv.rounds),
    quietWait: Number(argv['quiet-wait']),
    quietBelow: Number(argv['quiet-below']),
  };
  check(opt.rate > 0 && opt.rate <= 1000, '--rate: 1..1000 msg/s');
  check(
    Number.isInteger(opt.size) && opt.size >= 40 && opt.size <= maxSize,
    `--size: 40..${maxSize} bytes`,
  );
  check(opt.seconds >= 1 && opt.seconds <= 300, '--seconds: 1..300');
  check(opt.warmup >= 0 && opt.warmup <= 60, '--warmup: 0..60');
  check(Number.isInteger(opt.rounds) && opt.rounds >= 1 && opt.rounds <= 10, '--rounds: 1..10');
  check(opt.quietWait >= 0 && opt.quietWait <= 600, '--quiet-wait: 0..600 seconds');
  check(opt.quietBelow > 0 && opt.quietBelow <= 1, '--quiet-below: a fraction of all cores, 0..1');
  return { argv, check, opt };
}

/** Kills every child still alive: the workers (loadgen.js) and the servers started here. */
function killAll(signal = 'SIGKILL') {
  killWorkers();
  killChildren(signal);
}

/**
 * Runs `main` (the script's body): the children are killed on exit, on SIGINT, SIGTERM and
 * SIGHUP (exit 130) and after `hardBound` seconds (exit 124); exits 0 when main resolves, 1
 * (with the error) when it throws.
 */
export function runMain(name, hardBound, main) {
  process.on('exit', () => killAll());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      logStderr(`${name}: ${sig}, stopping children`);
      killAll();
      process.exit(130);
    });
  }
  const boundTimer = setTimeout(() => {
    logStderr(`${name}: hard time bound of ${hardBound} s reached, stopping`);
    killAll();
    process.exit(124);
  }, hardBound * 1000);
  main()
    .then(() => {
      clearTimeout(boundTimer);
      killAll();
      process.exit(0);
    })
    .catch((err) => {
      logStderr(`${name}: ${err?.stack ?? err}`);
      killAll();
      process.exit(1);
    });
}

// ---------------------------------------------------------------------------------------------
// Child servers: started through `timeout` so that they stop by themselves even if this
// process is killed; the measured pid is the node process under `timeout`.
const live = new Set(); // { wrapper, pid }

/** Kills every server child still alive (and its `timeout` wrapper). */
function killChildren(signal = 'SIGKILL') {
  for (const s of live) {
    for (const pid of [s.pid, s.wrapper.pid]) {
      try {
        if (pid) process.kill(pid, signal);
      } catch {
        /* already gone */
      }
    }
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function childPid(parent) {
  try {
    const txt = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim();
    if (txt) return Number(txt.split(/\s+/)[0]);
  } catch {
    /* fall through */
  }
  return null;
}

/** An HTTP request → {status, body}; status null when it failed. */
function httpRequest(url, options, body) {
  return new Promise((resolve) => {
    const req = http.request(url, options, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', () => resolve({ status: null, body: '' }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: null, body: '' }));
    req.end(body);
  });
}

/** GET → {status, body}; status null when the request failed. */
export function httpGet(url, timeoutMs = 1000, headers = {}) {
  return httpRequest(url, { timeout: timeoutMs, headers });
}

/** POST of `body` as JSON → {status, body}; status null when the request failed. */
export function httpPost(url, body, headers = {}, timeoutMs = 10_000) {
  const text = JSON.stringify(body);
  return httpRequest(
    url,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
        ...headers,
      },
      timeout: timeoutMs,
    },
    text,
  );
}

/**
 * Starts `cmd args…` under `timeout(1)` (it stops by itself after `bound` s, even if this
 * process is killed) and waits until `ready(s)` resolves true (at most 30 s). The measured pid
 * (s.pid) is the process under `timeout`.
 */
export async function startProcess({ label, cmd, args, env, cwd = ROOT, bound, ready }) {
  const wrapper = spawn('timeout', ['-k', '5', String(bound), cmd, ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s = { target: label, wrapper, pid: null, logTail: '', logLines: 0, exited: null };
  live.add(s);
  const keep = (chunk) => {
    const text = chunk.toString('utf8');
    s.logLines += text.split('\n').length - 1;
    s.logTail = (s.logTail + text).slice(-8000);
  };
  wrapper.stdout.on('data', keep);
  wrapper.stderr.on('data', keep);
  wrapper.on('exit', (code, signal) => {
    s.exited = { code, signal };
    live.delete(s);
  });

  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (s.exited) {
      throw new Error(
        `${label} exited during start (code ${s.exited.code}, signal ${s.exited.signal}):\n${s.logTail}`,
      );
    }
    s.pid ??= childPid(wrapper.pid);
    if (s.pid && (await ready(s))) return s;
    await sleep(100);
  }
  await stopServer(s);
  throw new Error(`${label} not ready after 30 s:\n${s.logTail}`);
}

/** The environment of a server child: this one's, minus every gateway setting. */
export function baseEnv() {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(ARCHON_|WEBSOCKET_|LOG_LEVEL$|PORT$|HOST$)/.test(k),
    ),
  );
}

/**
 * Starts a server on `port`: `archon` (one gateway instance), `bare` (a `ws.send` loop),
 * `floor` (the same server writing one frame per event to every socket) or `socketio`
 * (Socket.IO 4, one room per channel). `extraEnv` adds gateway settings (cluster mode:
 * ARCHON_REDIS_URL, ARCHON_SERVER_ID), `gatewayArgs` flags of `serve` (`--demo`); the
 * server is ready when GET /api/health answers 200,
 * and in cluster mode also `"status":"ok"` (its Redis backplane is up). Each carries
 * bench/probe.js: `probeStats(s)` reads its event-loop lag and memory.
 */
export async function startServer(
  target,
  port,
  secrets,
  { label = target, extraEnv = {}, bound, nodeArgs = [], gatewayArgs = [] } = {},
) {
  const env = baseEnv();
  Object.assign(env, {
    PORT: String(port),
    HOST: '127.0.0.1',
    BENCH_MAX_SECONDS: String(bound),
    BENCH_PARENT_PID: String(process.pid),
  });
  // Every server carries the measurement probe (bench/probe.js) on a port of its own.
  const probePort = await freePort();
  env.BENCH_PROBE_PORT = String(probePort);
  // nodeArgs: V8/Node flags for the server (e.g. --max-semi-space-size=16), every target alike.
  const probe = [...nodeArgs, '--import', pathToFileURL(path.join(BENCH, 'probe.js')).href];
  let args;
  if (target === 'bare' || target === 'floor') {
    args = [...probe, path.join(BENCH, 'bare-server.js')];
    env.BENCH_SEND = target === 'floor' ? 'frame-once' : 'ws-send';
  } else if (target === 'socketio') {
    args = [...probe, path.join(BENCH, 'socketio-server.js')];
  } else {
    args = [...probe, GATEWAY, 'serve', '--port', String(port), ...gatewayArgs];
    Object.assign(env, {
      ARCHON_JWT_SECRET: secrets.jwtSecret,
      ARCHON_PUBLISH_TOKENS: secrets.publishToken,
      LOG_LEVEL: 'warn',
      WEBSOCKET_MAX_CONNECTIONS: '20000',
      ...extraEnv,
    });
  }
  const cluster = Boolean(extraEnv.ARCHON_REDIS_URL);
  const s = await startProcess({
    label,
    cmd: process.execPath,
    args,
    env,
    bound,
    ready: async () => {
      const r = await httpGet(`http://127.0.0.1:${port}/api/health`);
      if (r.status !== 200) return false;
      if (!cluster) return true;
      try {
        return JSON.parse(r.body).status === 'ok';
      } catch {
        return false;
      }
    },
  });
  s.port = port;
  s.probeUrl = `http://127.0.0.1:${probePort}/stats`;
  return s;
}

/** The probe's figures of a server (bench/probe.js); `reset` starts a new lag window. */
export async function probeStats(s, { reset = false } = {}) {
  const r = await httpGet(`${s.probeUrl}${reset ? '?reset=1' : ''}`, 5000);
  if (r.status !== 200) throw new Error(`${s.target}: probe answered ${r.status ?? 'nothing'}`);
  return JSON.parse(r.body);
}

export async function stopServer(s) {
  if (s.exited) return;
  const gone = new Promise((r) => s.wrapper.once('exit', r));
  try {
    process.kill(s.pid ?? s.wrapper.pid, 'SIGTERM');
  } catch {
    /* gone */
  }
  const t = setTimeout(() => {
    for (const pid of [s.pid, s.wrapper.pid]) {
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }, 3000);
  await Promise.race([gone, sleep(10_000)]);
  clearTimeout(t);
}

/**
 * Machine-wide TCP counters (/proc/net/netstat TcpExt) that explain stalled connects: a full
 * listen queue drops SYNs, and the client retries after 1 s, 3 s, 7 s…
 */
export function tcpExt() {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('TcpExt:'));
    const keys = lines[0].split(/\s+/);
    const values = lines[1].split(/\s+/).map(Number);
    const get = (k) => values[keys.indexOf(k)] ?? null;
    return {
      listenOverflows: get('ListenOverflows'),
      listenDrops: get('ListenDrops'),
      synRetrans: get('TCPSynRetrans'),
    };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// A private Redis for the cluster runs (run.js's cluster target, storm.js): never the machine's
// own, which listens on RESERVED_REDIS_PORT and is never started on, connected to or touched.
export const RESERVED_REDIS_PORT = 6379;

/** The version of the redis-server on the PATH, or null when there is none. */
export function redisServerVersion() {
  try {
    const out = execFileSync('redis-server', ['--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5000,
    });
    return /v=(\S+)/.exec(out)?.[1] ?? out.trim();
  } catch {
    return null;
  }
}

/** True when a Redis server answers PING on 127.0.0.1:port. */
function redisPing(port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let text = '';
    const done = (ok) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      text += d.toString('latin1');
      if (text.includes('\r\n')) done(text.startsWith('+PONG'));
    });
    sock.on('error', () => done(false));
  });
}

/**
 * Starts a private redis-server on 127.0.0.1:port: no persistence, no files (its working
 * directory is the system's temporary directory), ready when it answers PING.
 */
export async function startRedis(port, bound) {
  if (port === RESERVED_REDIS_PORT) throw new Error(`refusing to start Redis on port ${port}`);
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--maxmemory-policy',
    'noeviction',
    '--loglevel',
    'warning',
  ];
  const s = await startProcess({
    label: 'redis',
    cmd: 'redis-server',
    args,
    env: baseEnv(),
    cwd: os.tmpdir(),
    bound,
    ready: () => redisPing(port),
  });
  s.port = port;
  return s;
}

/** A free port that is not the machine's own Redis port. */
export async function freeRedisPort() {
  for (;;) {
    const port = await freePort();
    if (port !== RESERVED_REDIS_PORT) return port;
  }
}

// ---------------------------------------------------------------------------------------------
/**
 * Waits (at most opt.quietWait s) until the machine is quieter than opt.quietBelow of all cores
 * over 1 s, so that other tenants' bursts (builds, tests) disturb the runs less → {waitedSeconds,
 * busyBefore}; null at once when opt.quietWait is 0.
 */
export async function waitQuiet({ quietWait: maxWait, quietBelow: below }, log = logStderr) {
  if (!(maxWait > 0)) return null;
  const t0 = Date.now();
  for (;;) {
    const a = machineCpu();
    await sleep(1000);
    const b = machineCpu();
    const busy = a && b ? (b.busy - a.busy) / Math.max(1, b.total - a.total) : null;
    const waited = (Date.now() - t0) / 1000;
    if (busy === null || busy < below || waited >= maxWait) {
      if (waited > 1.5 || (busy !== null && busy >= below)) {
        log(
          `  machine ${(busy * 100).toFixed(0)} % busy after waiting ${waited.toFixed(0)} s for quiet`,
        );
      }
      return { waitedSeconds: waited, busyBefore: busy };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The gateway runs from dist/ (bin/archon-ws.js imports ../dist/cli/main.js).

/** Why dist/ may not match src/ (older than a source file, or missing); null when fine. */
export function staleDist() {
  const main = path.join(ROOT, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) return 'dist/cli/main.js does not exist: run `npm run build` first';
  const built = statSync(main).mtimeMs;
  let newest = 0;
  let newestFile = '';
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const m = statSync(p).mtimeMs;
        if (m > newest) [newest, newestFile] = [m, p];
      }
    }
  };
  try {
    walk(path.join(ROOT, 'src'));
  } catch {
    return null;
  }
  return newest > built
    ? `dist/ is older than ${path.relative(ROOT, newestFile)}: the gateway under test may not ` +
        'match the source (run `npm run build`)'
    : null;
}

/** When dist/ was built (ISO time), or null. */
export function distBuilt() {
  try {
    return statSync(path.join(ROOT, 'dist', 'cli', 'main.js')).mtime.toISOString();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Reporting
export const fx = (x, d = 2) =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toFixed(d);

/** A table of right-aligned cells: one line of heads, then one per row; columns [head, width, (row) => cell]. */
export function table(columns, rows) {
  const line = (cells) => cells.map((c, i) => String(c).padStart(columns[i][1])).join(' ');
  return [
    line(columns.map((c) => c[0])),
    ...rows.map((r) => line(columns.map((c) => c[2](r)))),
  ].join('\n');
}

/** How many different dist/ builds the runs of `rounds` ([{runs: {…: {distBuilt}}}]) used. */
export function buildsUsed(rounds) {
  return new Set(
    rounds.flatMap((r) => Object.values(r.runs).map((x) => x.distBuilt)).filter(Boolean),
  ).size;
}

/** The machine, Node, the commit and the dist/ build, for the results file; `extra` added. */
export function environment(extra = {}) {
  let commit = null;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    /* no commit yet */
  }
  return {
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    loadavg: os.loadavg(),
    memGb: os.totalmem() / 2 ** 30,
    commit,
    // When the gateway under test (dist/) was built: the source may have moved on since.
    distBuilt: distBuilt(),
    ...extra,
  };
}

/** Writes `result` to bench/results/<prefix><started>.json and prints the file's path. */
export function saveResults(prefix, started, result) {
  const dir = path.join(BENCH, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${prefix}${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`results: ${path.relative(ROOT, file)}\n`);
}

/** Median of the finite numbers of xs; null when there is none. */
export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
