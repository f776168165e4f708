/**
 * Real processes for integration tests: `archon-ws serve` instances (the built CLI, as
 * deployed) and a real nginx running deploy/nginx/archon-ws.conf as shipped (only the
 * example instances and the listen address are replaced). The same approach as
 * test/integration/nginx.test.ts, shared. Every child is tracked: killAll() (also run when
 * the worker exits) leaves nothing behind.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from './eventually.js';
import { ADMIN_TOKEN, JWT_SECRET, PUBLISH_TOKEN } from './gateway.js';
import { freePort } from './redis.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const NODE = join(ROOT, 'node_modules', '.bin', 'node');
export const CLI = join(ROOT, 'bin', 'archon-ws.js');
const BUILT = join(ROOT, 'dist', 'cli', 'main.js');
const WEB_BUILT = join(ROOT, 'dist', 'web', 'index.html');
const SHIPPED_CONF = join(ROOT, 'deploy', 'nginx', 'archon-ws.conf');

/** Every child started here, so nothing outlives the test file even when a test fails. */
const children = new Set<ChildProcess>();
const tmpDirs = new Set<string>();

function killChild(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  // nginx runs in its own process group (master + workers): kill the whole group.
  if (child.spawnargs[0] === 'nginx' && child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  } else child.kill('SIGKILL');
}

/** SIGKILLs every child still running and removes the temporary directories. */
export function killAll(): void {
  for (const child of children) killChild(child);
  children.clear();
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
  tmpDirs.clear();
}
// Last resort if the worker exits without running afterAll.
process.once('exit', killAll);

export function exited(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile())
      newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/ (server and web pages) when it is missing or older than src/ or web/, so the
 * processes and the browser run the code under test.
 */
export function ensureBuilt(): void {
  const outputs = [BUILT, WEB_BUILT];
  const newestSource = Math.max(newestMtime(join(ROOT, 'src')), newestMtime(join(ROOT, 'web')));
  if (outputs.every((f) => existsSync(f) && statSync(f).mtimeMs >= newestSource)) return;
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' });
}

export interface Instance {
  readonly id: string;
  readonly port: number;
  readonly http: string;
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  /** The instance's JSON log lines (stdout), the last megabyte. */
  logs(): string;
}

export interface InstanceOptions {
  /** Listen on this port (a replacement after a restart); a free one by default. */
  readonly port?: number;
  /** Added to (and overriding) the defaults below. */
  readonly env?: Record<string, string>;
  /** More `serve` arguments, e.g. ['--demo']. */
  readonly args?: readonly string[];
}

/**
 * Starts `archon-ws serve` with only PATH inherited, the tokens of test/support/gateway.ts,
 * LOG_LEVEL=warn and a short shutdown timeout; resolves once /api/health answers 200.
 */
export async function startInstance(id: string, options: InstanceOptions = {}): Promise<Instance> {
  const port = options.port ?? (await freePort());
  const child = spawn(NODE, [CLI, 'serve', '--port', String(port), ...(options.args ?? [])], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      ARCHON_SERVER_ID: id,
      ARCHON_JWT_SECRET: JWT_SECRET,
      ARCHON_PUBLISH_TOKENS: PUBLISH_TOKEN,
      ARCHON_ADMIN_TOKENS: ADMIN_TOKEN,
      WEBSOCKET_SHUTDOWN_TIMEOUT: '5',
      LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  let stdout = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // The JSON log (stdout): kept, bounded, to explain a failure.
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout = (stdout + chunk).slice(-1_000_000);
  });
  const http = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${id} exited: ${stderr}`);
      return (await fetch(`${http}/api/health`)).status === 200;
    },
    `${id} to answer /api/health on ${port}`,
    { timeoutMs: 15_000 },
  );
  return {
    id,
    port,
    http,
    child,
    exited: exited(child),
    stderr: () => stderr,
    logs: () => stdout,
  };
}

/** SIGKILL (a crash) and wait for the exit. */
export async function crash(instance: Instance): Promise<void> {
  killChild(instance.child);
  await instance.exited;
  children.delete(instance.child);
}

/**
 * deploy/nginx/archon-ws.conf with the example instances (between the BEGIN/END markers)
 * pointed at the given ports, keeping their parameters, and `listen 80` moved to a test port.
 */
export function nginxConfFor(upstreamPorts: number[], listenPort: number): string {
  const shipped = readFileSync(SHIPPED_CONF, 'utf8');
  const block = /# BEGIN archon-ws instances\n([\s\S]*?)\s*# END archon-ws instances/.exec(shipped);
  const examples = block?.[1]?.match(/server 127\.0\.0\.1:\d+[^;]*;/g) ?? [];
  if (block?.[1] === undefined || examples.length !== upstreamPorts.length)
    throw new Error(`expected ${upstreamPorts.length} example instances in ${SHIPPED_CONF}`);
  let i = 0;
  const instances = block[1].replace(
    /server 127\.0\.0\.1:\d+/g,
    () => `server 127.0.0.1:${upstreamPorts[i++]}`,
  );
  const conf = shipped.replace(block[1], instances);
  if (conf.match(/^\s*listen 80;$/gm)?.length !== 1)
    throw new Error(`expected one \`listen 80;\` in ${SHIPPED_CONF}`);
  return conf.replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${listenPort};`);
}

export interface Nginx {
  readonly url: string;
  readonly ws: string;
  readonly child: ChildProcess;
  readonly dir: string;
  stderr(): string;
  /** The error log (warn and above). */
  errorLog(): string;
}

/**
 * Runs nginx in the foreground with its own prefix directory and a free port in front of
 * the given instance ports. `workerConnections` must cover two connections per proxied
 * WebSocket.
 */
export async function startNginx(
  upstreamPorts: number[],
  options: {
    workerConnections?: number;
    waitHealthy?: boolean;
    /** Changes the generated archon-ws.conf (a misconfiguration under test). */
    edit?: (conf: string) => string;
  } = {},
): Promise<Nginx> {
  const version = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  if (version.error)
    throw new Error('nginx is not installed: apt-get install nginx (.ci/run installs it)');
  const workerConnections = options.workerConnections ?? 1024;
  const dir = mkdtempSync(join(tmpdir(), 'archon-nginx-'));
  tmpDirs.add(dir);
  // Workers run as `nobody` when the master is root: they must reach the temp paths.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const conf = nginxConfFor(upstreamPorts, port);
  writeFileSync(join(dir, 'archon-ws.conf'), options.edit ? options.edit(conf) : conf);
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'worker_processes 1;',
      `worker_rlimit_nofile ${workerConnections * 2 + 100};`,
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      `events { worker_connections ${workerConnections}; }`,
      'http {',
      `  access_log off;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map(
        (kind) => `  ${kind}_temp_path ${join(dir, `${kind}_temp`)};`,
      ),
      `  include ${join(dir, 'archon-ws.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const child = spawn(
    'nginx',
    ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  children.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
      if (options.waitHealthy === false) return (await fetch(`${url}/metrics`)).status === 404;
      return (await fetch(`${url}/api/health`)).status === 200;
    },
    `nginx to answer on ${port} (stderr: ${stderr})`,
    { timeoutMs: 15_000 },
  );
  return {
    url,
    ws: `ws://127.0.0.1:${port}`,
    child,
    dir,
    stderr: () => stderr,
    errorLog: () => {
      try {
        return readFileSync(join(dir, 'error.log'), 'utf8');
      } catch {
        return '';
      }
    },
  };
}

/** Stops nginx (fast shutdown of master and workers), waits for it, removes its directory. */
export async function stopNginx(nginx: Nginx | undefined): Promise<void> {
  if (!nginx) return;
  if (nginx.child.exitCode === null && nginx.child.signalCode === null) {
    nginx.child.kill('SIGTERM');
    const timer = setTimeout(() => killChild(nginx.child), 5000);
    await exited(nginx.child);
    clearTimeout(timer);
  }
  children.delete(nginx.child);
  rmSync(nginx.dir, { recursive: true, force: true });
  tmpDirs.delete(nginx.dir);
}

/** Kills an instance if still running (SIGKILL) and forgets it. */
export async function stopInstance(instance: Instance | undefined): Promise<void> {
  if (!instance) return;
  await crash(instance);
}
