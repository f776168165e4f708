/**
 * Real traffic through real nginx running deploy/nginx/archon-ws.conf as shipped (only the
 * example instances and the listen address are replaced) in front of two `archon-ws serve`
 * processes: RB-003 Step 2's header check, WebSockets and publishing through the proxy, and
 * what the passive health checks do when an instance is killed or drains (DESIGN §8).
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
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';

const ROOT = join(import.meta.dirname, '..', '..');
const NODE = join(ROOT, 'node_modules', '.bin', 'node');
const CLI = join(ROOT, 'bin', 'archon-ws.js');
const BUILT = join(ROOT, 'dist', 'cli', 'main.js');
const SHIPPED_CONF = join(ROOT, 'deploy', 'nginx', 'archon-ws.conf');

const JWT_SECRET = 'nginx-test-secret-0123456789abcdef0123456789';
const PUBLISH_TOKEN = 'pub_nginx_test';
const ADMIN_TOKEN = 'adm_nginx_test';
/** A drain lasts at most this long, which bounds the SIGTERM test's window. */
const SHUTDOWN_TIMEOUT_S = 8;

// ---- processes --------------------------------------------------------------------------

/** Every child this file starts, so nothing outlives it even when a test fails. */
const children = new Set<ChildProcess>();
const tmpDirs = new Set<string>();

function killAll(): void {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    // nginx runs in its own process group (master + workers): kill the whole group.
    if (child.spawnargs[0] === 'nginx' && child.pid !== undefined) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    } else child.kill('SIGKILL');
  }
  children.clear();
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
  tmpDirs.clear();
}
// Last resort if the worker exits without running afterAll.
process.once('exit', killAll);

function exited(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile())
      newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than src/, so the processes run the code under test. */
function ensureBuilt(): void {
  if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= newestMtime(join(ROOT, 'src'))) return;
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until check() is true; fails naming what it waited for. */
async function until(check: () => Promise<boolean>, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

interface Instance {
  readonly id: string;
  readonly port: number;
  readonly child: ChildProcess;
  readonly stderr: () => string;
}

async function startInstance(id: string): Promise<Instance> {
  const port = await freePort();
  const child = spawn(NODE, [CLI, 'serve', '--port', String(port)], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOST: '127.0.0.1',
      ARCHON_SERVER_ID: id,
      ARCHON_JWT_SECRET: JWT_SECRET,
      ARCHON_PUBLISH_TOKENS: PUBLISH_TOKEN,
      ARCHON_ADMIN_TOKENS: ADMIN_TOKEN,
      // A ping every second, so a test sees one without waiting 30 s.
      WEBSOCKET_PING_INTERVAL: '1',
      WEBSOCKET_SHUTDOWN_TIMEOUT: String(SHUTDOWN_TIMEOUT_S),
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`${id} exited: ${stderr}`);
    return (await fetch(`http://127.0.0.1:${port}/api/health`)).status === 200;
  }, `${id} to answer /api/health (stderr: ${stderr})`);
  return { id, port, child, stderr: () => stderr };
}

/**
 * deploy/nginx/archon-ws.conf with the example instances (between the BEGIN/END markers)
 * pointed at the given ports, keeping their parameters, and `listen 80` moved to a test port.
 */
function confFor(upstreamPorts: number[], listenPort: number): string {
  const shipped = readFileSync(SHIPPED_CONF, 'utf8');
  const block = /# BEGIN archon-ws instances\n([\s\S]*?)\s*# END archon-ws instances/.exec(shipped);
  const examples = block?.[1]?.match(/server 127\.0\.0\.1:\d+[^;]*;/g) ?? [];
  expect(examples.length, 'example instances between the markers').toBe(upstreamPorts.length);
  let i = 0;
  const instances = (block?.[1] ?? '').replace(
    /server 127\.0\.0\.1:\d+/g,
    () => `server 127.0.0.1:${upstreamPorts[i++]}`,
  );
  const conf = shipped.replace(block?.[1] ?? '', instances);
  expect(conf.match(/^\s*listen 80;$/gm)?.length, 'one `listen 80;`').toBe(1);
  return conf.replace(/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${listenPort};`);
}

interface Nginx {
  readonly url: string;
  readonly ws: string;
  readonly child: ChildProcess;
  readonly dir: string;
}

async function startNginx(upstreamPorts: number[]): Promise<Nginx> {
  const version = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  if (version.error)
    throw new Error('nginx is not installed: apt-get install nginx (.ci/run installs it)');
  const dir = mkdtempSync(join(tmpdir(), 'archon-nginx-'));
  tmpDirs.add(dir);
  // Workers run as `nobody` when the master is root: they must reach the temp paths.
  chmodSync(dir, 0o755);
  const port = await freePort();
  writeFileSync(join(dir, 'archon-ws.conf'), confFor(upstreamPorts, port));
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'worker_processes 1;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 1024; }',
      'http {',
      `  access_log ${join(dir, 'access.log')};`,
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
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${stderr}`);
    return (await fetch(`${url}/api/health`)).status === 200;
  }, `nginx to proxy /api/health (stderr: ${stderr})`);
  return { url, ws: `ws://127.0.0.1:${port}`, child, dir };
}

/** Stops nginx (fast shutdown of master and workers) and waits for it. */
async function stopNginx(nginx: Nginx): Promise<void> {
  if (nginx.child.exitCode !== null || nginx.child.signalCode !== null) return;
  nginx.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    try {
      if (nginx.child.pid !== undefined) process.kill(-nginx.child.pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }, 5000);
  await exited(nginx.child);
  clearTimeout(timer);
}

interface Cluster {
  readonly instances: [Instance, Instance];
  readonly nginx: Nginx;
}

async function startCluster(): Promise<Cluster> {
  const instances = await Promise.all([startInstance('api-1'), startInstance('api-2')]);
  const nginx = await startNginx(instances.map((i) => i.port));
  return { instances, nginx };
}

async function stopCluster(cluster: Cluster | undefined): Promise<void> {
  if (!cluster) return;
  await stopNginx(cluster.nginx);
  for (const { child } of cluster.instances) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited(child);
    children.delete(child);
  }
  children.delete(cluster.nginx.child);
  rmSync(cluster.nginx.dir, { recursive: true, force: true });
  tmpDirs.delete(cluster.nginx.dir);
}

// ---- clients ----------------------------------------------------------------------------

type Message = Record<string, unknown> & { type?: string };

/** A protocol client: every message kept in order, pings answered. */
class Client {
  readonly ws: WebSocket;
  readonly messages: Message[] = [];
  readonly closed: Promise<{ code: number }>;
  /** Off for a client that must look stuck. */
  answerPings = true;
  private readonly waiters = new Set<() => void>();

  constructor(url: string, protocols: string[] = ['archon.v1']) {
    this.ws = new WebSocket(url, protocols);
    this.ws.on('error', () => {});
    this.closed = new Promise((resolve) => this.ws.once('close', (code) => resolve({ code })));
    this.ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString('utf8')) as Message;
      this.messages.push(message);
      if (message.type === 'ping' && this.answerPings) this.send({ op: 'pong' });
      for (const wake of this.waiters) wake();
    });
    clients.add(this);
  }

  opened(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`HTTP ${res.statusCode}`)),
      );
      this.ws.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  /** The first message so far, or to come, matching pred. */
  next(pred: (m: Message) => boolean, what: string, ms = 5000): Promise<Message> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.messages.find(pred);
        if (!found) return false;
        cleanup();
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${what} within ${ms} ms; got ${JSON.stringify(this.messages)}`));
      }, ms);
      const wake = () => void check();
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(wake);
      };
      if (!check()) this.waiters.add(wake);
    });
  }
}

const clients = new Set<Client>();

function closeClients(): void {
  for (const c of clients) c.ws.terminate();
  clients.clear();
}

function userToken(sub = 'trader-1'): Promise<string> {
  return new SignJWT({ accounts: ['ACC1'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(JWT_SECRET));
}

/** Opens /api/v1/ws at base, says hello and resolves with the client and its welcome. */
async function connectUser(base: string): Promise<{ client: Client; server: string }> {
  const client = new Client(`${base}/api/v1/ws`);
  await client.opened();
  client.send({ op: 'hello', token: await userToken(), client: 'nginx-test/1.0' });
  const welcome = await client.next((m) => m.type === 'welcome', 'welcome');
  return { client, server: String(welcome.server) };
}

/** A raw HTTP request (no client-side header rewriting) with every header as received. */
function rawRequest(
  url: string,
  method: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: [string, string][]; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const pairs: [string, string][] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2)
          pairs.push([res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '']);
        resolve({ status: res.statusCode ?? 0, headers: pairs, body });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function headerValues(headers: [string, string][], name: string): string[] {
  return headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
}

function publishTo(base: string, body: unknown): Promise<Response> {
  return fetch(`${base}/api/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${PUBLISH_TOKEN}` },
    body: JSON.stringify(body),
  });
}

async function healthThrough(nginx: Nginx): Promise<{ status: number; server: unknown }> {
  const res = await fetch(`${nginx.url}/api/health`);
  const body = (await res.json()) as { server?: unknown };
  return { status: res.status, server: body.server };
}

// ---- tests ------------------------------------------------------------------------------

beforeAll(() => {
  ensureBuilt();
}, 180_000);

afterAll(() => {
  closeClients();
  killAll();
});

describe('archon-ws behind nginx (deploy/nginx/archon-ws.conf)', () => {
  let cluster: Cluster | undefined;

  beforeAll(async () => {
    cluster = await startCluster();
  }, 30_000);

  afterAll(async () => {
    closeClients();
    await stopCluster(cluster);
  }, 30_000);

  const nginx = (): Nginx => {
    if (!cluster) throw new Error('the cluster did not start');
    return cluster.nginx;
  };

  it('answers RB-003 Step 2 `curl -I …/api/v1/ws/health` with Upgrade: websocket and Connection: Upgrade', async () => {
    for (const method of ['HEAD', 'GET']) {
      const res = await rawRequest(`${nginx().url}/api/v1/ws/health`, method);
      expect(res.status, method).toBe(200);
      expect(headerValues(res.headers, 'upgrade'), method).toContain('websocket');
      expect(headerValues(res.headers, 'connection'), method).toContain('Upgrade');
      if (method === 'GET') {
        const body = JSON.parse(res.body) as { status?: string; server?: string };
        expect(body.status).toBe('ok');
        expect(body.server).toMatch(/^api-[12]$/);
      }
    }
  });

  it('completes a real handshake on /api/v1/ws/health through nginx: one health message, then close', async () => {
    const client = new Client(`${nginx().ws}/api/v1/ws/health`, []);
    await client.opened();
    const health = await client.next((m) => m.type === 'health', 'health message');
    expect(health.status).toBe('ok');
    expect(health.server).toMatch(/^api-[12]$/);
    expect((await client.closed).code).toBe(1000);
  });

  it('keeps its connections to the instances usable after plain requests on /api/v1/ws/health', async () => {
    // The instance answers this path with `Connection: Upgrade`; had nginx asked it to
    // close, it would pool a connection the instance no longer reads requests from, and
    // the next request on it (any API call) would get a 400.
    await rawRequest(`${nginx().url}/api/v1/ws/health`, 'HEAD');
    await rawRequest(`${nginx().url}/api/v1/ws/health`, 'GET');
    await rawRequest(`${nginx().url}/api/v1/ws/health`, 'GET', { connection: 'close' });
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) statuses.push((await fetch(`${nginx().url}/api/health`)).status);
    expect(statuses).toEqual(Array<number>(20).fill(200));
  });

  it('connects a dashboard through nginx: welcome names api-1 or api-2, then the server pings', async () => {
    const { client, server } = await connectUser(nginx().ws);
    expect(server).toMatch(/^api-[12]$/);
    expect(client.ws.protocol).toBe('archon.v1');
    await client.next((m) => m.type === 'ping', 'ping', 3000);
  });

  it('spreads dashboards over both instances', async () => {
    const connected = await Promise.all([1, 2, 3, 4].map(() => connectUser(nginx().ws)));
    expect(new Set(connected.map((c) => c.server))).toEqual(new Set(['api-1', 'api-2']));
  });

  it('delivers an event published to the client’s instance through nginx', async () => {
    const { client, server } = await connectUser(nginx().ws);
    client.send({ op: 'subscribe', id: 1, channel: 'signals' });
    await client.next((m) => m.type === 'subscribed' && m.id === 1, 'subscribed');
    // Until cluster mode, instances do not share events: publish on the client's own
    // instance, directly on its port.
    const instance = cluster?.instances.find((i) => i.id === server);
    const res = await publishTo(`http://127.0.0.1:${instance?.port}`, {
      channel: 'signals',
      data: { symbol: 'EURUSD', action: 'buy', via: 'nginx-test' },
    });
    expect(res.status).toBe(200);
    const event = await client.next((m) => m.type === 'event', 'event');
    expect(event).toMatchObject({
      channel: 'signals',
      data: { symbol: 'EURUSD', action: 'buy', via: 'nginx-test' },
    });
  });

  it('proxies POST /api/v1/publish with its bearer token and body', async () => {
    const res = await publishTo(nginx().url, { channel: 'signals', data: { n: 1 } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: { channel: string; seq: number }[] };
    expect(body.results).toHaveLength(1);
    expect(body.results[0]?.channel).toBe('signals');
  });

  it('keeps /metrics off the public entry point', async () => {
    expect((await fetch(`${nginx().url}/metrics`)).status).toBe(404);
  });
});

describe('deploy/nginx/archon-ws.conf timeouts', () => {
  // A real idle test would take longer than the timeout; the value is what matters.
  it('keeps quiet WebSockets open for at least an hour (RB-003 section 6)', () => {
    const conf = readFileSync(SHIPPED_CONF, 'utf8');
    const block = /location \/api\/v1\/ws \{([\s\S]*?)\n {4}\}/.exec(conf)?.[1] ?? '';
    for (const directive of ['proxy_read_timeout', 'proxy_send_timeout']) {
      const value = new RegExp(`^\\s*${directive} (\\d+)s?;`, 'm').exec(block)?.[1];
      expect(Number(value), directive).toBeGreaterThanOrEqual(3600);
    }
    expect(block).toMatch(/^\s*proxy_next_upstream error timeout http_502 http_503;/m);
  });
});

describe('archon-ws behind nginx when an instance goes away', () => {
  let cluster: Cluster | undefined;

  afterEach(async () => {
    closeClients();
    await stopCluster(cluster);
    cluster = undefined;
  }, 30_000);

  it('sends every new WebSocket to the survivor after kill -9 of one instance, and /api/health stays 200', async () => {
    cluster = await startCluster();
    const [victim, survivor] = cluster.instances;
    const { nginx } = cluster;
    // A dashboard on the victim, to see its connection go.
    let onVictim: Client | undefined;
    for (let i = 0; i < 4 && !onVictim; i++) {
      const c = await connectUser(nginx.ws);
      if (c.server === victim.id) onVictim = c.client;
    }
    expect(onVictim, `a connection on ${victim.id}`).toBeDefined();

    victim.child.kill('SIGKILL');
    await exited(victim.child);
    expect((await onVictim?.closed)?.code).toBe(1006);

    for (let i = 0; i < 6; i++) {
      const { server } = await connectUser(nginx.ws);
      expect(server, `connection ${i}`).toBe(survivor.id);
    }
    for (let i = 0; i < 4; i++)
      expect(await healthThrough(nginx)).toEqual({ status: 200, server: survivor.id });
  }, 30_000);

  it('sends new upgrades to the other instance while one drains after SIGTERM', async () => {
    cluster = await startCluster();
    const [draining, other] = cluster.instances;
    const { nginx } = cluster;

    // A dashboard of the draining instance, connected through nginx: it must be closed with
    // 1012 (nginx relays the close frame) and its reconnect must land on the other one.
    let viaNginx: Client | undefined;
    for (let i = 0; i < 4 && !viaNginx; i++) {
      const c = await connectUser(nginx.ws);
      if (c.server === draining.id) viaNginx = c.client;
    }
    expect(viaNginx, `a connection on ${draining.id}`).toBeDefined();
    // A client that never completes the closing handshake keeps the instance draining (and
    // listening) until its shutdown deadline: the window in which nginx must route around it.
    const stuck = await connectUser(`ws://127.0.0.1:${draining.port}`);
    stuck.client.answerPings = false;
    stuck.client.ws.pause();

    const drained = exited(draining.child);
    draining.child.kill('SIGTERM');
    expect((await viaNginx?.closed)?.code).toBe(1012);
    await until(
      async () => (await fetch(`http://127.0.0.1:${draining.port}/api/health`)).status === 503,
      `${draining.id} to report draining`,
    );

    const reconnected = await connectUser(nginx.ws);
    expect(reconnected.server).toBe(other.id);
    for (let i = 0; i < 5; i++) {
      const { server } = await connectUser(nginx.ws);
      expect(server, `connection ${i}`).toBe(other.id);
    }
    expect(await healthThrough(nginx)).toEqual({ status: 200, server: other.id });

    // All of that happened while the instance was still draining, not after it had gone.
    const direct = await fetch(`http://127.0.0.1:${draining.port}/api/health`);
    expect(direct.status).toBe(503);
    expect(await direct.json()).toMatchObject({ status: 'draining', server: draining.id });
    expect(await drained).toEqual({ code: 0, signal: null });
  }, 30_000);
});
