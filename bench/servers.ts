/**
 * The processes a benchmark measures: server children under `timeout(1)` (they stop by
 * themselves even if the benchmark is killed), the gateway and the reference servers started
 * on a port with bench/probe.ts, the private Redis of a cluster run (test/support/redis.ts),
 * small HTTP GET / POST, and the checks of the gateway's dist/ build. bench/README.md, "What
 * one server run does".
 */
import { Buffer } from 'node:buffer';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort, startRedis, type TestRedis } from '../test/support/redis.ts';
import { compiled } from './compiled.ts';
import { sleep } from './measure.ts';
import type { ProbeStats } from './probe.ts';

export const BENCH = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.dirname(BENCH);
export const GATEWAY = path.join(ROOT, 'bin', 'archon-ws.js');
export { freePort };

/** A child under `timeout(1)`; `pid` is the process under it, the one measured. */
export interface Child {
  readonly target: string;
  readonly wrapper: ChildProcess;
  readonly pid: number;
  /** The last 8 KB of its stdout and stderr, and how many lines it wrote. */
  readonly logTail: string;
  readonly logLines: number;
  /** How it exited, once it has. */
  readonly exited: { code: number | null; signal: NodeJS.Signals | null } | null;
}

interface LiveChild {
  target: string;
  wrapper: ChildProcess;
  pid: number | null;
  logTail: string;
  logLines: number;
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
}

/** Every child started here and still alive. */
const live = new Set<LiveChild>();

function signal(pid: number | null | undefined, sig: NodeJS.Signals): void {
  try {
    if (pid) process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

/** Kills every child still alive (and its `timeout` wrapper). */
export function killServers(): void {
  for (const s of live) for (const pid of [s.pid, s.wrapper.pid]) signal(pid, 'SIGKILL');
}

function childPid(parent: number | undefined): number | null {
  try {
    const txt = readFileSync(`/proc/${parent}/task/${parent}/children`, 'utf8').trim();
    if (txt) return Number(txt.split(/\s+/)[0]);
  } catch {
    /* fall through */
  }
  return null;
}

/**
 * Starts `cmd args…` under `timeout(1)` (it stops by itself after `bound` s, even if this
 * process is killed) and waits until `ready()` resolves true (at most 30 s).
 */
export async function startProcess(o: {
  label: string;
  cmd: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  bound: number;
  ready: () => Promise<boolean>;
}): Promise<Child> {
  const wrapper = spawn('timeout', ['-k', '5', String(o.bound), o.cmd, ...o.args], {
    cwd: ROOT,
    env: o.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const s: LiveChild = {
    target: o.label,
    wrapper,
    pid: null,
    logTail: '',
    logLines: 0,
    exited: null,
  };
  live.add(s);
  const keep = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    s.logLines += text.split('\n').length - 1;
    s.logTail = (s.logTail + text).slice(-8000);
  };
  wrapper.stdout.on('data', keep);
  wrapper.stderr.on('data', keep);
  wrapper.on('exit', (code, sig) => {
    s.exited = { code, signal: sig };
    live.delete(s);
  });

  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (s.exited) {
      throw new Error(
        `${o.label} exited during start (code ${s.exited.code}, signal ${s.exited.signal}):\n${s.logTail}`,
      );
    }
    s.pid ??= childPid(wrapper.pid);
    if (s.pid && (await o.ready())) return s as Child;
    await sleep(100);
  }
  await stopServer(s as Child);
  throw new Error(`${o.label} not ready after 30 s:\n${s.logTail}`);
}

/** The environment of a server child: this one's, minus every gateway setting. */
export function baseEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(ARCHON_|WEBSOCKET_|LOG_LEVEL$|PORT$|HOST$)/.test(k),
    ),
  );
}

export type Target = 'floor' | 'bare' | 'socketio' | 'archon';

export interface Secrets {
  readonly jwtSecret: string;
  readonly publishToken: string;
}

/** A measured server: a child on `port` whose probe answers at `probeUrl`. */
export interface Server extends Child {
  readonly port: number;
  readonly probeUrl: string;
}

/**
 * Starts a server on `port`: `archon` (one gateway instance), `bare` (a `ws.send` loop),
 * `floor` (the same server writing one frame per event to every socket) or `socketio`
 * (Socket.IO 4, one room per channel). `extraEnv` adds gateway settings (cluster mode:
 * ARCHON_REDIS_URL, ARCHON_SERVER_ID), `gatewayArgs` flags of `serve` (`--demo`); the
 * server is ready when GET /api/health answers 200, and in cluster mode also
 * `"status":"ok"` (its Redis backplane is up). Each carries bench/probe.ts: `probeStats(s)`
 * reads its event-loop lag and memory.
 */
export async function startServer(
  target: Target,
  port: number,
  secrets: Secrets,
  o: {
    label?: string;
    extraEnv?: Record<string, string>;
    bound: number;
    nodeArgs?: readonly string[];
    gatewayArgs?: readonly string[];
  },
): Promise<Server> {
  const extraEnv = o.extraEnv ?? {};
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(),
    PORT: String(port),
    HOST: '127.0.0.1',
    BENCH_MAX_SECONDS: String(o.bound),
    BENCH_PARENT_PID: String(process.pid),
  };
  // Every server carries the measurement probe (bench/probe.ts) on a port of its own; it and
  // the reference servers run as plain JavaScript (bench/compiled.ts).
  const probePort = await freePort();
  env.BENCH_PROBE_PORT = String(probePort);
  // nodeArgs: V8/Node flags for the server (e.g. --max-semi-space-size=16), every target alike.
  const probe = [...(o.nodeArgs ?? []), '--import', pathToFileURL(await compiled('probe')).href];
  let args: string[];
  if (target === 'bare' || target === 'floor') {
    args = [...probe, await compiled('bare-server')];
    env.BENCH_SEND = target === 'floor' ? 'frame-once' : 'ws-send';
    if (extraEnv.BENCH_DEFLATE) env.BENCH_DEFLATE = extraEnv.BENCH_DEFLATE;
  } else if (target === 'socketio') {
    args = [...probe, await compiled('socketio-server')];
  } else {
    args = [...probe, GATEWAY, 'serve', '--port', String(port), ...(o.gatewayArgs ?? [])];
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
    label: o.label ?? target,
    cmd: process.execPath,
    args,
    env,
    bound: o.bound,
    ready: async () => {
      const r = await httpGet(`http://127.0.0.1:${port}/api/health`);
      if (r.status !== 200) return false;
      if (!cluster) return true;
      try {
        return (JSON.parse(r.body) as { status?: unknown }).status === 'ok';
      } catch {
        return false;
      }
    },
  });
  return Object.assign(s, { port, probeUrl: `http://127.0.0.1:${probePort}/stats` });
}

/** The probe's figures of a server (bench/probe.ts); `reset` starts a new lag window. */
export async function probeStats(s: Server, { reset = false } = {}): Promise<ProbeStats> {
  const r = await httpGet(`${s.probeUrl}${reset ? '?reset=1' : ''}`, 5000);
  if (r.status !== 200) throw new Error(`${s.target}: probe answered ${r.status ?? 'nothing'}`);
  return JSON.parse(r.body) as ProbeStats;
}

/** SIGTERM, then SIGKILL after 3 s; resolves once it has exited (at most 10 s). */
export async function stopServer(s: Child): Promise<void> {
  if (s.exited) return;
  const gone = new Promise((resolve) => s.wrapper.once('exit', resolve));
  signal(s.pid || s.wrapper.pid, 'SIGTERM');
  const t = setTimeout(() => {
    for (const pid of [s.pid, s.wrapper.pid]) signal(pid, 'SIGKILL');
  }, 3000);
  await Promise.race([gone, sleep(10_000)]);
  clearTimeout(t);
}

// ---------------------------------------------------------------------------------------------
/** The version of the redis-server on the PATH, or null when there is none. */
export function redisServerVersion(): string | null {
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

/**
 * A private Redis for a cluster run (run.ts's cluster target, storm.ts): its own free port
 * (never the machine's own 6379), no persistence, no eviction (what the gateway expects of
 * its backplane), stopped by itself after `bound` s.
 */
export function startBenchRedis(bound: number): Promise<TestRedis> {
  return startRedis({
    args: ['--maxmemory-policy', 'noeviction', '--loglevel', 'warning'],
    maxSeconds: bound,
  });
}

// ---------------------------------------------------------------------------------------------
export interface HttpAnswer {
  /** null when the request failed. */
  status: number | null;
  body: string;
}

function httpRequest(
  url: string,
  options: http.RequestOptions,
  body?: string,
): Promise<HttpAnswer> {
  return new Promise((resolve) => {
    const req = http.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? null, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', () => resolve({ status: null, body: '' }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: null, body: '' }));
    req.end(body);
  });
}

export function httpGet(
  url: string,
  timeoutMs = 1000,
  headers: Record<string, string> = {},
): Promise<HttpAnswer> {
  return httpRequest(url, { timeout: timeoutMs, headers });
}

/** POST of `body` as JSON. */
export function httpPost(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<HttpAnswer> {
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

// ---------------------------------------------------------------------------------------------
// The gateway runs from dist/ (bin/archon-ws.js imports ../dist/cli/main.js).

/** Why dist/ may not match src/ (older than a source file, or missing); null when fine. */
export function staleDist(): string | null {
  const main = path.join(ROOT, 'dist', 'cli', 'main.js');
  if (!existsSync(main)) return 'dist/cli/main.js does not exist: run `npm run build` first';
  const built = statSync(main).mtimeMs;
  let newest = 0;
  let newestFile = '';
  const walk = (dir: string): void => {
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
export function distBuilt(): string | null {
  try {
    return statSync(path.join(ROOT, 'dist', 'cli', 'main.js')).mtime.toISOString();
  } catch {
    return null;
  }
}
