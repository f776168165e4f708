/**
 * Real traffic through real nginx running deploy/nginx/archon-ws.conf as shipped (only the
 * example instances and the listen address are replaced) in front of two `archon-ws serve`
 * processes: RB-003 Step 2's header check, WebSockets and publishing through the proxy, and
 * what the passive health checks do when an instance is killed or drains
 * (docs/protocol.md#server-shutdown, docs/cluster.md).
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { eventually } from '../support/eventually.js';
import { TestStream } from '../support/sse.js';
import { JWT_SECRET, PUBLISH_TOKEN } from '../support/gateway.js';
import {
  ensureBuilt,
  exited,
  killAll,
  ROOT,
  startInstance,
  startNginx,
  stopInstance,
  stopNginx,
  type Instance,
  type Nginx,
} from '../support/processes.js';

const SHIPPED_CONF = join(ROOT, 'deploy', 'nginx', 'archon-ws.conf');

interface Cluster {
  readonly instances: [Instance, Instance];
  readonly nginx: Nginx;
}

async function startCluster(): Promise<Cluster> {
  // A ping every second, so a test sees one without waiting 30 s; a drain lasts at most 8 s,
  // which bounds the SIGTERM test's window.
  const env = { WEBSOCKET_PING_INTERVAL: '1', WEBSOCKET_SHUTDOWN_TIMEOUT: '8' };
  const instances = await Promise.all([
    startInstance('api-1', { env }),
    startInstance('api-2', { env }),
  ]);
  const nginx = await startNginx(instances.map((i) => i.port));
  return { instances, nginx };
}

async function stopCluster(cluster: Cluster | undefined): Promise<void> {
  if (!cluster) return;
  await stopNginx(cluster.nginx);
  for (const instance of cluster.instances) await stopInstance(instance);
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

  it('streams server-sent events through nginx as they are written, with no upgrade at all', async () => {
    const stream = await TestStream.welcomed(nginx().url, {
      token: await userToken(),
      query: { channels: 'signals' },
    });
    try {
      const server = stream.messages[0]?.server as string;
      expect(server).toMatch(/^api-[12]$/);
      await stream.type('subscribed');
      const instance = cluster?.instances.find((i) => i.id === server);
      // One small event: buffered by nginx it would wait for more to fill a buffer.
      await publishTo(`http://127.0.0.1:${instance?.port}`, { channel: 'signals', data: { n: 1 } });
      expect(await stream.type('event')).toMatchObject({ channel: 'signals', data: { n: 1 } });
    } finally {
      stream.close();
    }
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
    await eventually(
      async () => (await fetch(`http://127.0.0.1:${draining.port}/api/health`)).status === 503,
      `${draining.id} to report draining`,
      { timeoutMs: 15_000 },
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
