/**
 * The operator's view and actions (RB-003 Steps 1, 3, 5 and section 5), computed from this
 * instance's connections and metrics. Field names are fixed: the runbook's jq filters read
 * them.
 */
import {
  type Transport,
  CloseCode,
  type BroadcastAnswer,
  type CleanupAnswer,
  type FlushAnswer,
  type InstanceStatus,
  type StatsAnswer,
  type StatusAnswer,
} from '../protocol/index.js';
import type { Backplane } from './backplane/backplane.js';
import type { Config } from './config.js';
import type { Connection, ConnectionInfo } from './connection.js';
import type { Hub } from './hub.js';
import type { Metrics } from './metrics.js';
import type { Logger } from './logging.js';
import { summarize, type MinuteBucket } from './stats.js';

/** The status answer as one instance (or the cluster plane) builds it. */
export type Status = Omit<StatusAnswer, 'missing_instances' | 'cluster_error'>;

export class AdminService {
  private readonly startedAt = Date.now();

  constructor(
    private readonly config: Config,
    private readonly connections: ReadonlySet<Connection>,
    private readonly hub: Hub,
    private readonly backplane: Backplane,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly isDraining: () => boolean,
  ) {}

  queueDepth(): number {
    let n = 0;
    for (const conn of this.connections) n += conn.queue.depth;
    return n;
  }

  private unauthenticated(): number {
    let n = 0;
    for (const conn of this.connections) if (conn.state === 'authenticating') n++;
    return n;
  }

  instanceStatus(): InstanceStatus {
    const mem = process.memoryUsage();
    const draining = this.isDraining();
    const backplaneHealthy = this.backplane.healthy();
    return {
      server: this.config.serverId,
      active_connections: this.connections.size,
      peak_connections: this.metrics.peakConnectionsToday(this.connections.size),
      errors_last_hour: this.metrics.series.last(60).reduce((n, b) => n + b.errors, 0),
      queue_depth: this.queueDepth(),
      broadcast_latency_p99_ms: this.metrics.broadcastP99Ms(),
      event_loop_lag_p99_ms: this.metrics.eventLoopLagP99Ms(),
      max_connections: this.config.maxConnections,
      sse_connections: this.countTransport('sse'),
      unauthenticated_connections: this.unauthenticated(),
      max_unauthenticated: this.config.maxUnauthenticated,
      max_connections_per_user: this.config.maxConnectionsPerUser,
      max_connections_per_ip: this.config.maxConnectionsPerIp,
      memory: {
        rss_bytes: mem.rss,
        heap_used_bytes: mem.heapUsed,
        heap_total_bytes: mem.heapTotal,
        external_bytes: mem.external,
      },
      started_at: new Date(this.startedAt).toISOString(),
      uptime_seconds: Math.round((Date.now() - this.startedAt) / 1000),
      draining,
      backplane: { kind: this.backplane.kind, healthy: backplaneHealthy },
      healthy: !draining && backplaneHealthy,
    };
  }

  /** Sums instances into the cluster-wide view (one instance in embedded mode). */
  static combine(instances: InstanceStatus[], mode: Status['mode']): Status {
    // `?? 0`: during a rolling upgrade an older instance's answer lacks the newer fields.
    const sum = (f: (i: InstanceStatus) => number | undefined) =>
      instances.reduce((n, i) => n + (f(i) ?? 0), 0);
    const max = (f: (i: InstanceStatus) => number | undefined) =>
      Math.max(0, ...instances.map((i) => f(i) ?? 0));
    return {
      mode,
      active_connections: sum((i) => i.active_connections),
      peak_connections: sum((i) => i.peak_connections),
      errors_last_hour: sum((i) => i.errors_last_hour),
      queue_depth: sum((i) => i.queue_depth),
      broadcast_latency_p99_ms: max((i) => i.broadcast_latency_p99_ms),
      event_loop_lag_p99_ms: max((i) => i.event_loop_lag_p99_ms),
      max_connections: sum((i) => i.max_connections),
      sse_connections: sum((i) => i.sse_connections),
      unauthenticated_connections: sum((i) => i.unauthenticated_connections),
      max_unauthenticated: sum((i) => i.max_unauthenticated),
      // Limits per instance, not summed: the largest any instance applies.
      max_connections_per_user: max((i) => i.max_connections_per_user),
      max_connections_per_ip: max((i) => i.max_connections_per_ip),
      memory: {
        rss_bytes: sum((i) => i.memory.rss_bytes),
        heap_used_bytes: sum((i) => i.memory.heap_used_bytes),
        heap_total_bytes: sum((i) => i.memory.heap_total_bytes),
        external_bytes: sum((i) => i.memory.external_bytes),
      },
      instances,
    };
  }

  private countTransport(transport: Transport): number {
    let n = 0;
    for (const c of this.connections) if (c.transport === transport) n++;
    return n;
  }

  connectionList(): ConnectionInfo[] {
    return [...this.connections].map((c) => c.info(this.config.serverId));
  }

  /** RB-003 Fix A: closes dead or stuck connections with 4010. */
  cleanup(): number {
    const now = Date.now();
    let removed = 0;
    for (const conn of [...this.connections]) {
      if (conn.state === 'closing' || conn.state === 'closed') continue;
      const reason = conn.deadReason(now);
      if (reason === null) continue;
      this.log.info(
        { client_id: conn.id, user_id: conn.userId, reason },
        'Cleanup closed connection',
      );
      conn.close(CloseCode.operatorCleanup, `operator cleanup: ${reason}`);
      removed++;
    }
    return removed;
  }

  /** RB-003 Fix B: empties client queues; each affected client is told to resync. */
  flushQueues(): { flushed_messages: number; clients: number } {
    let flushed = 0;
    let clients = 0;
    for (const conn of this.connections) {
      const n = conn.flushQueue();
      if (n > 0) {
        flushed += n;
        clients++;
      }
    }
    if (flushed > 0)
      this.log.warn({ flushed_messages: flushed, clients }, 'Operator flushed client queues');
    return { flushed_messages: flushed, clients };
  }

  broadcastAudience(): number {
    return this.hub.broadcastAudience();
  }

  stats(minutes: number): StatsAnswer {
    return summarize(this.metrics.series.last(minutes), minutes);
  }

  /** This instance's raw minute buckets, for a cluster-wide stats answer. */
  buckets(minutes: number): MinuteBucket[] {
    return this.metrics.series.last(minutes);
  }
}

/** What the admin routes call; cluster mode answers for every instance. */
export interface AdminApi {
  status(): Promise<Status>;
  connections(): Promise<ConnectionInfo[]>;
  cleanup(): Promise<CleanupAnswer>;
  flush(): Promise<FlushAnswer>;
  /** Publishes the notice; `delivered` counts connections that will receive it. */
  broadcast(message: string): Promise<BroadcastAnswer>;
  stats(minutes: number): Promise<StatsAnswer>;
}

/** Embedded mode: the admin API is this instance. */
export class LocalAdminApi implements AdminApi {
  constructor(
    private readonly service: AdminService,
    private readonly server: string,
    private readonly publishSystem: (message: string) => Promise<void>,
  ) {}

  status(): Promise<Status> {
    return Promise.resolve(AdminService.combine([this.service.instanceStatus()], 'embedded'));
  }

  connections(): Promise<ConnectionInfo[]> {
    return Promise.resolve(this.service.connectionList());
  }

  cleanup(): Promise<CleanupAnswer> {
    const removed = this.service.cleanup();
    return Promise.resolve({ removed, servers: { [this.server]: removed } });
  }

  flush(): Promise<FlushAnswer> {
    const result = this.service.flushQueues();
    return Promise.resolve({ ...result, servers: { [this.server]: result.flushed_messages } });
  }

  async broadcast(message: string): Promise<BroadcastAnswer> {
    const delivered = this.service.broadcastAudience();
    await this.publishSystem(message);
    return { delivered, servers: 1 };
  }

  stats(minutes: number): Promise<StatsAnswer> {
    return Promise.resolve(this.service.stats(minutes));
  }
}
