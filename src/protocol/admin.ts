/** Answers of the admin HTTP API that both the gateway and the `archon-ws` command read. */

/** GET /api/v1/admin/websocket/stats */
export interface StatsAnswer {
  minutes: number;
  errors_per_minute: number;
  messages_per_minute: number;
  connects_per_minute: number;
  disconnects_per_minute: number;
  errors_by_type: Record<string, number>;
  disconnects_by_code: Record<string, number>;
  series: { minute: string; connections: number; messages: number; errors: number }[];
}

/** `memory` of a status answer (process.memoryUsage()). */
export interface MemoryInfo {
  rss_bytes: number;
  heap_used_bytes: number;
  heap_total_bytes: number;
  external_bytes: number;
}

/** One instance in GET /api/v1/admin/websocket/status (`instances[]`). */
export interface InstanceStatus {
  server: string;
  active_connections: number;
  peak_connections: number;
  errors_last_hour: number;
  queue_depth: number;
  broadcast_latency_p99_ms: number;
  event_loop_lag_p99_ms: number;
  max_connections: number;
  /** Connections open that have not completed hello, and their cap (docs/security.md). */
  unauthenticated_connections: number;
  max_unauthenticated: number;
  /** Per-instance connection limits per user (`sub`) and per client address. */
  max_connections_per_user: number;
  max_connections_per_ip: number;
  memory: MemoryInfo;
  started_at: string;
  uptime_seconds: number;
  draining: boolean;
  backplane: { kind: string; healthy: boolean };
  healthy: boolean;
}

/** GET /api/v1/admin/websocket/status: the instances summed (cluster-wide in cluster mode). */
export interface StatusAnswer extends Omit<
  InstanceStatus,
  'server' | 'started_at' | 'uptime_seconds' | 'draining' | 'backplane' | 'healthy'
> {
  mode: 'embedded' | 'cluster';
  instances: InstanceStatus[];
  /** Cluster mode: instances in the registry that did not answer in time. */
  missing_instances?: string[];
  cluster_error?: string;
}

/** One element of GET /api/v1/admin/websocket/connections. */
export interface ConnectionEntry {
  client_id: string;
  server: string;
  user_id: string | null;
  remote_addr: string;
  client_version: string | null;
  connected_at: string;
  last_seen_at: string;
  queue_depth: number;
  channels: string[];
  messages_sent: number;
  state: string;
}

/** Cluster mode: an action answer names the registered instances that did not answer in time. */
interface ClusterAction {
  missing?: string[];
}

/** POST /api/v1/admin/websocket/cleanup */
export interface CleanupAnswer extends ClusterAction {
  removed: number;
  /** Connections closed, per instance. */
  servers: Record<string, number>;
}

/** POST /api/v1/admin/websocket/queue/flush */
export interface FlushAnswer extends ClusterAction {
  flushed_messages: number;
  clients: number;
  /** Messages dropped, per instance. */
  servers: Record<string, number>;
}

/** POST /api/v1/admin/broadcast */
export interface BroadcastAnswer extends ClusterAction {
  /** Connections the notice reaches. */
  delivered: number;
  /** Instances that took part. */
  servers: number;
}
