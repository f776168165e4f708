/**
 * Assembles one archon-ws instance: HTTP (Fastify) and WebSocket on one port, the hub on a
 * backplane, metrics, the admin API, the liveness sweep and graceful shutdown
 * (docs/protocol.md#server-shutdown).
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { DestinationStream } from 'pino';
import {
  ArchonError,
  CloseCode,
  parseChannel,
  SYSTEM_CHANNEL,
  type ClientOp,
} from '../protocol/index.js';
import { AdminService, LocalAdminApi, type AdminApi } from './admin.js';
import { Admission } from './admission.js';
import { Authenticator } from './auth.js';
import type { Backplane, PublishInput, PublishResult } from './backplane/backplane.js';
import { MemoryBackplane } from './backplane/memory.js';
import { RedisBackplane } from './backplane/redis.js';
import { ClusterAdmin } from './cluster.js';
import type { Config } from './config.js';
import { systemClock, type Clock } from './clock.js';
import { Connection, type ConnectionContext } from './connection.js';
import { DiagnosticEndpoints } from './diagnostics.js';
import { TokenSet } from './http/bearer.js';
import { createHttpApp } from './http/app.js';
import { AlertListing } from './alerts.js';
import { validateEvents, withTtl } from './publish.js';
import { Hub } from './hub.js';
import { createLogger, LogLimiter, type Logger } from './logging.js';
import { KeyedBuckets } from './token-bucket.js';
import { Metrics } from './metrics.js';
import { SseTransport, WebSocketTransport } from './transport.js';
import type { DeliverResult, StreamRequest } from './http/sse.js';
import { remoteAddress, UpgradeHandler } from './upgrade.js';

export interface GatewayOptions {
  /** Where logs go (default stdout). */
  readonly logDestination?: DestinationStream;
  /** Replaces the backplane chosen from the config. */
  readonly backplane?: Backplane;
  /** Extra routes (the web UI), registered on the same server. */
  readonly register?: (app: FastifyInstance) => void | Promise<void>;
  /** The clock of client sessions and the liveness sweep (the system clock by default). */
  readonly clock?: Clock;
  /** Set when this gateway is one worker of a node (docs/cluster.md#workers-every-core-of-a-node). */
  readonly worker?: WorkerIdentity;
}

export interface WorkerIdentity {
  /** The node's ARCHON_SERVER_ID: `server` on every metric series. */
  readonly node: string;
  /** `w1`, `w2`…: the `worker` label; the gateway's own id is `<node>:<name>`. */
  readonly name: string;
  /** GET /metrics for the whole node (every worker's series, gathered by the primary). */
  readonly scrape: (own: () => Promise<string>) => Promise<string>;
}

/** Users whose replay budget is remembered at once (idle, full budgets are forgotten first). */
const REPLAY_BUDGET_USERS = 100_000;

/**
 * Spread shutdown closes over this long at most, so clients do not reconnect all at once: the
 * instances that take them over sign them in and resume them at a pace they can keep, and a
 * trader's blind time stays short (docs/performance.md, "Reconnect storm": 10,000 clients
 * spread over 5 s were blind 1.1–1.7 s at p99, over 10 s 0.6 s).
 */
const MAX_CLOSE_SPREAD_MS = 10_000;

export class Gateway {
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly hub: Hub;
  readonly backplane: Backplane;
  readonly connections = new Set<Connection>();
  /** The HTTP streaming transport's sessions, by client_id (also in `connections`). */
  private readonly streams = new Map<string, Connection>();
  readonly admin: AdminApi;
  private readonly app: FastifyInstance;
  private readonly auth: Authenticator;
  private readonly upgrades: UpgradeHandler;
  private readonly connectionContext: ConnectionContext;
  /** Who may open a client connection, and who makes room (docs/security.md). */
  readonly admission: Admission<Connection>;
  /** The test and health endpoints' sockets. */
  private readonly diagnostics: DiagnosticEndpoints;
  private draining = false;
  private sweepTimer: NodeJS.Timeout | null = null;
  private starting: Promise<number> | null = null;
  private readonly cluster: ClusterAdmin | null = null;
  private stopping: Promise<void> | null = null;
  private readonly clock: Clock;

  constructor(
    readonly config: Config,
    private readonly options: GatewayOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.log = createLogger(
      { level: config.logLevel, server: config.serverId },
      options.logDestination,
    );
    const limits = {
      streamSize: config.historySize,
      streamTtlMs: config.historyTtlMs,
      alertSize: config.alertHistorySize,
      alertTtlMs: config.alertHistoryTtlMs,
    };
    // ARCHON_REDIS_URL turns on cluster mode: N instances on one Redis act as one.
    this.backplane =
      options.backplane ??
      (config.redisUrl === undefined
        ? new MemoryBackplane(limits)
        : new RedisBackplane({ url: config.redisUrl, limits, log: this.log }));
    const alerts = new AlertListing(this.backplane);
    const worker = options.worker;
    this.metrics = new Metrics(
      worker ? { server: worker.node, worker: worker.name } : config.serverId,
      {
        active: () => this.connections.size,
        sse: () => this.streams.size,
        unauthenticated: () => this.admission.unauthenticatedCount,
        queueDepth: () => service.queueDepth(),
        backplaneUp: () => this.backplane.healthy(),
        alerts: () => alerts.summary(),
      },
    );
    this.hub = new Hub(this.backplane, this.connections, this.metrics, this.log);
    const noisyLog = new LogLimiter(this.log);
    this.auth = new Authenticator(config);
    this.admission = new Admission(config);
    this.diagnostics = new DiagnosticEndpoints(
      config.serverId,
      // The welcome of a test connection tells these in seconds, as the client's welcome does.
      { pingInterval: config.pingIntervalMs / 1000, pingTimeout: config.pingTimeoutMs / 1000 },
      () => this.draining,
    );
    this.connectionContext = {
      admission: this.admission,
      // Per user, kept across reconnects: a fresh connection does not bring a fresh budget.
      replayBudgets: new KeyedBuckets(
        config.replayBytesPerMinute,
        config.replayBytesPerMinute / 60,
        REPLAY_BUDGET_USERS,
      ),
      config,
      auth: this.auth,
      hub: this.hub,
      metrics: this.metrics,
      log: this.log,
      noisyLog,
      onClosed: (conn, code) => {
        this.connections.delete(conn);
        if (this.streams.delete(conn.id)) this.cluster?.detachStream(conn.id);
        this.metrics.disconnected(code);
      },
      clock: this.clock,
    };
    const service = new AdminService(
      config,
      this.connections,
      this.hub,
      this.backplane,
      this.metrics,
      this.log,
      () => this.draining,
    );
    const publishSystem = async (message: string) => {
      await this.publish([{ channel: SYSTEM_CHANNEL, key: null, data: { message } }]);
    };
    if (config.redisUrl !== undefined) {
      this.cluster = new ClusterAdmin(
        { url: config.redisUrl, server: config.serverId },
        service,
        publishSystem,
        this.log,
      );
      this.admin = this.cluster;
    } else {
      this.admin = new LocalAdminApi(service, config.serverId, publishSystem);
    }
    this.upgrades = new UpgradeHandler(
      config,
      {
        draining: () => this.draining,
        admit: ({ endpoint, addr, lifetimeMs }, pending) =>
          endpoint === 'client'
            ? this.admission.admit(addr, pending)
            : this.diagnostics.admit(endpoint, pending, lifetimeMs),
        accept: (ws, socket, { endpoint, addr, lifetimeMs }) => {
          if (endpoint !== 'client') {
            this.diagnostics.accept(endpoint, ws, lifetimeMs);
            return;
          }
          const conn = new Connection(
            new WebSocketTransport(ws, socket),
            addr,
            this.connectionContext,
          );
          this.admission.opened(conn);
          this.connections.add(conn);
          this.metrics.connected(this.connections.size, 'websocket');
        },
      },
      this.metrics,
      this.log,
      noisyLog,
    );
    this.app = createHttpApp(
      this.log,
      {
        server: config.serverId,
        draining: () => this.draining,
        auth: this.auth,
        adminTokens: new TokenSet(config.adminTokens),
        publishTokens: new TokenSet(config.publishTokens),
        publish: (events) => this.publish(events),
        backplane: this.backplane,
        metrics: this.metrics,
        scrape: worker
          ? () => worker.scrape(() => this.metrics.registry.metrics())
          : () => this.metrics.registry.metrics(),
        admin: this.admin,
        alerts,
        clientAddress: (req) => remoteAddress(req, this.upgrades.trustedProxies),
      },
      {
        auth: this.auth,
        metrics: this.metrics,
        maxSubscriptions: config.maxSubscriptions,
        draining: () => this.draining,
        originAllowed: (origin) => this.upgrades.originAllowed(origin),
        clientAddress: (req) => remoteAddress(req, this.upgrades.trustedProxies),
        admit: (addr, userId) =>
          this.admission.userFull(userId) ? 'per_user' : this.admission.admit(addr),
        open: (stream) => this.openStream(stream),
        deliver: (clientId, userId, ops) => {
          const local = this.streams.get(clientId);
          if (local) return Promise.resolve(deliverOps(local, userId, ops));
          return this.cluster?.forward(clientId, userId, ops) ?? Promise.resolve('unknown');
        },
      },
    );
  }

  /** An admitted HTTP stream (docs/protocol.md#http-streaming-fallback): its session starts
   * signed in, counted and limited like a WebSocket's. */
  private openStream({
    res,
    principal,
    addr,
    client,
    deltas,
    resume,
    subscribe,
  }: StreamRequest): void {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      // nginx: do not buffer this response (deploy/nginx/archon-ws.conf turns it off too).
      'X-Accel-Buffering': 'no',
    });
    // Events go out as they are written; a peer that vanished is found by keep-alive probes.
    res.socket?.setNoDelay(true);
    res.socket?.setKeepAlive(true, this.config.pingIntervalMs);
    // The transport reads the session's subscriptions only when it writes, after both exist.
    const transport = new SseTransport(
      res,
      (channel: string): boolean => session.subscriptions.has(channel),
      resume,
    );
    const session: Connection = new Connection(transport, addr, this.connectionContext);
    this.admission.opened(session);
    this.connections.add(session);
    this.streams.set(session.id, session);
    this.metrics.connected(this.connections.size, 'sse');
    this.cluster?.attachStream(session.id, (userId, ops) => deliverOps(session, userId, ops));
    session.useDeltas(deltas);
    session.openStream(principal, client, subscribe);
  }

  /** Starts listening; resolves with the bound port. */
  start(): Promise<number> {
    this.starting ??= this.listen();
    return this.starting;
  }

  private async listen(): Promise<number> {
    await this.auth.ready();
    await this.backplane.start(this.hub);
    await this.backplane.subscribe(SYSTEM_CHANNEL);
    await this.cluster?.start();
    if (this.options.register) await this.options.register(this.app);
    this.app.server.on('upgrade', this.upgrades.handle);
    // A burst of new connections (a reconnect storm, a flood) waits in the kernel's accept
    // queue rather than in SYN retries; Linux caps it at net.core.somaxconn.
    await this.app.listen({ port: this.config.port, host: this.config.host, backlog: 4096 });
    const sweepMs = Math.max(
      50,
      Math.min(
        1000,
        Math.min(
          this.config.pingTimeoutMs,
          this.config.pingIntervalMs,
          this.config.broadcastTimeoutMs,
        ) / 4,
      ),
    );
    this.sweepTimer = setInterval(() => this.sweep(), sweepMs);
    this.sweepTimer.unref();
    const port = this.port;
    this.log.info(
      {
        port,
        mode: this.backplane.kind === 'memory' ? 'embedded' : 'cluster',
        auth: this.auth.configured,
      },
      'archon-ws listening',
    );
    return port;
  }

  get port(): number {
    return (this.app.server.address() as AddressInfo).port;
  }

  /**
   * Every publish path (HTTP, broadcast, demo feed) comes here: validated whole before
   * anything is stored, then stored whole or not at all. Fan-out happens after, never awaited.
   */
  async publish(events: PublishInput[]): Promise<PublishResult[]> {
    const defaults = {
      state: this.config.stateEventTtlMs,
      stream: this.config.streamEventTtlMs,
      alert: this.config.alertEventTtlMs,
    };
    const valid = validateEvents(events).map((e) =>
      withTtl(e, parseChannel(e.channel)?.class ?? 'stream', defaults),
    );
    let results: PublishResult[];
    try {
      results = await this.backplane.publish(valid);
    } catch (err) {
      this.metrics.backplaneErrors.inc();
      this.log.error({ err }, 'Backplane publish failed');
      throw new ArchonError('backplane_unavailable');
    }
    for (const r of results) {
      if (r.duplicate) continue;
      this.metrics.published.inc({ class: parseChannel(r.channel)?.class ?? 'stream' });
    }
    return results;
  }

  private sweep(): void {
    const now = this.clock.now();
    for (const conn of this.connections) conn.check(now);
    this.metrics.tick();
  }

  /**
   * Graceful shutdown: health turns 503, new upgrades are refused, clients are closed with
   * 1012 (queues written first) spread over a few seconds, then the server and backplane
   * stop. Resolves within WEBSOCKET_SHUTDOWN_TIMEOUT whatever the clients do.
   */
  shutdown(): Promise<void> {
    this.stopping ??= this.drainAndStop();
    return this.stopping;
  }

  private async drainAndStop(): Promise<void> {
    const deadline = Date.now() + this.config.shutdownTimeoutMs;
    // A SIGTERM during start: let start finish, so there is one server to close.
    await this.starting?.catch(() => 0);
    this.draining = true;
    // An accepted publish reaches the hub a turn after its answer and its subscribers over
    // the next turns (docs/performance.md, "Publish never waits on fan-out"): let that turn
    // run and finish the fan-out, so every event a publisher was told is stored is written
    // or queued for its subscribers before they are closed.
    await new Promise((resolve) => setImmediate(resolve));
    this.hub.finishFanOuts();
    this.log.info({ connections: this.connections.size }, 'Shutting down: draining connections');
    const conns = [...this.connections];
    // About 2 ms per client (500 a second), at most 10 s and a third of the shutdown timeout:
    // thousands of clients do not all reconnect in the same instant, and a handful are not
    // kept waiting.
    const spread = Math.min(
      MAX_CLOSE_SPREAD_MS,
      this.config.shutdownTimeoutMs / 3,
      conns.length * 2,
    );
    const batches = Math.max(1, Math.min(conns.length, Math.ceil(spread / 50)));
    const perBatch = Math.ceil(conns.length / batches);
    for (let i = 0; i < conns.length; i += perBatch) {
      for (const conn of conns.slice(i, i + perBatch))
        conn.close(CloseCode.restarting, 'server restarting', true);
      if (i + perBatch < conns.length) await sleep(spread / batches);
    }
    while (this.connections.size > 0 && Date.now() < deadline - 500) await sleep(20);
    for (const conn of this.connections) conn.terminate();
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    // Test connections hold the HTTP server open (close waits for upgraded sockets).
    this.diagnostics.closeAll();
    this.upgrades.close();
    // Every step after the drain is bounded by what is left of the shutdown timeout.
    const bounded = (step: Promise<unknown>, what: string) =>
      Promise.race([
        step.catch((err: unknown) => this.log.warn({ err }, `${what} failed`)),
        sleep(Math.max(0, deadline - Date.now())),
      ]);
    // Requests under way get a moment to finish; then sockets still open are cut: an HTTP
    // client's spare keep-alive connection that never carried a request (fetch opens them
    // beside a long stream) would otherwise hold the close until the shutdown deadline.
    const cut = setTimeout(() => this.app.server.closeAllConnections(), 500);
    await bounded(this.app.close(), 'HTTP server close');
    clearTimeout(cut);
    if (this.cluster) await bounded(this.cluster.stop(), 'Cluster stop');
    await bounded(this.hub.alertDeliveries.flush(), 'Alert deliveries count');
    await bounded(this.backplane.stop(), 'Backplane stop');
    this.metrics.close();
    this.log.info('Shutdown complete');
  }
}

/** POSTed ops for a stream held here: refused for another user, unknown once it closes. */
function deliverOps(conn: Connection, userId: string, ops: ClientOp[]): DeliverResult {
  if (conn.state !== 'open') return 'unknown';
  if (conn.userId !== userId) return 'forbidden';
  conn.receiveOps(ops);
  return 'accepted';
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
