/**
 * Answers of the admin HTTP API (docs/http-api.md#admin-api), defined once as schemas: the
 * gateway's tests validate what it sends through them exactly (ADMIN_ANSWERS), the console
 * (served by the same gateway) reads through them, the `archon-ws` command reads through
 * ADMIN_READERS (the same schemas with the fields an older gateway does not send made
 * optional), and the types are inferred from them.
 */
import { z } from 'zod';
import { TRANSPORTS } from './sse.js';

/** Cluster mode: registered instances that did not answer in time. */
const missing = z.array(z.string()).optional();

/** GET /api/v1/admin/websocket/stats */
export const StatsAnswerSchema = z.object({
  minutes: z.number(),
  errors_per_minute: z.number(),
  messages_per_minute: z.number(),
  connects_per_minute: z.number(),
  disconnects_per_minute: z.number(),
  errors_by_type: z.record(z.string(), z.number()),
  disconnects_by_code: z.record(z.string(), z.number()),
  series: z.array(
    z.object({
      minute: z.string(),
      connections: z.number(),
      messages: z.number(),
      errors: z.number(),
    }),
  ),
  missing_instances: missing,
});
export type StatsAnswer = z.infer<typeof StatsAnswerSchema>;

/** `memory` of a status answer (process.memoryUsage()). */
export const MemoryInfoSchema = z.object({
  rss_bytes: z.number(),
  heap_used_bytes: z.number(),
  heap_total_bytes: z.number(),
  external_bytes: z.number(),
});
export type MemoryInfo = z.infer<typeof MemoryInfoSchema>;

/** One instance in GET /api/v1/admin/websocket/status (`instances[]`). */
export const InstanceStatusSchema = z.object({
  server: z.string(),
  active_connections: z.number(),
  peak_connections: z.number(),
  errors_last_hour: z.number(),
  queue_depth: z.number(),
  broadcast_latency_p99_ms: z.number(),
  event_loop_lag_p99_ms: z.number(),
  max_connections: z.number(),
  /** Of active_connections, those on the HTTP streaming fallback (docs/protocol.md#http-streaming-fallback):
   * above 0, some clients cannot get a WebSocket through (RB-003 Step 4). */
  sse_connections: z.number(),
  /** Connections open that have not completed hello, and their cap (docs/security.md). */
  unauthenticated_connections: z.number(),
  max_unauthenticated: z.number(),
  /** Per-instance connection limits per user (`sub`) and per client address. */
  max_connections_per_user: z.number(),
  max_connections_per_ip: z.number(),
  memory: MemoryInfoSchema,
  started_at: z.string(),
  uptime_seconds: z.number(),
  draining: z.boolean(),
  backplane: z.object({ kind: z.string(), healthy: z.boolean() }),
  healthy: z.boolean(),
});
export type InstanceStatus = z.infer<typeof InstanceStatusSchema>;

/** GET /api/v1/admin/websocket/status: the instances summed (cluster-wide in cluster mode). */
export const StatusAnswerSchema = InstanceStatusSchema.omit({
  server: true,
  started_at: true,
  uptime_seconds: true,
  draining: true,
  backplane: true,
  healthy: true,
}).extend({
  mode: z.enum(['embedded', 'cluster']),
  instances: z.array(InstanceStatusSchema),
  missing_instances: missing,
  /** Cluster mode: Redis could not be asked, so the answer is this instance's alone. */
  cluster_error: z.string().optional(),
});
export type StatusAnswer = z.infer<typeof StatusAnswerSchema>;

/** One element of GET /api/v1/admin/websocket/connections. */
export const ConnectionEntrySchema = z.object({
  client_id: z.string(),
  server: z.string(),
  user_id: z.string().nullable(),
  remote_addr: z.string(),
  client_version: z.string().nullable(),
  connected_at: z.string(),
  last_seen_at: z.string(),
  queue_depth: z.number(),
  channels: z.array(z.string()),
  messages_sent: z.number(),
  state: z.string(),
  /** What the connection runs over: `websocket`, or `sse` for the HTTP streaming fallback. */
  transport: z.enum(TRANSPORTS),
});
export type ConnectionEntry = z.infer<typeof ConnectionEntrySchema>;
export const ConnectionsAnswerSchema = z.array(ConnectionEntrySchema);

/** POST /api/v1/admin/websocket/cleanup */
export const CleanupAnswerSchema = z.object({
  removed: z.number(),
  /** Connections closed, per instance. */
  servers: z.record(z.string(), z.number()),
  missing,
});
export type CleanupAnswer = z.infer<typeof CleanupAnswerSchema>;

/** POST /api/v1/admin/websocket/queue/flush */
export const FlushAnswerSchema = z.object({
  flushed_messages: z.number(),
  clients: z.number(),
  /** Messages dropped, per instance. */
  servers: z.record(z.string(), z.number()),
  missing,
});
export type FlushAnswer = z.infer<typeof FlushAnswerSchema>;

/** POST /api/v1/admin/broadcast */
export const BroadcastAnswerSchema = z.object({
  /** Connections the notice reaches. */
  delivered: z.number(),
  /** Instances that took part. */
  servers: z.number(),
  missing,
});
export type BroadcastAnswer = z.infer<typeof BroadcastAnswerSchema>;

/** `state` of GET /api/v1/admin/alerts: which alerts to list. */
export const ALERT_STATES = ['unacked', 'acked', 'all'] as const;
export type AlertState = (typeof ALERT_STATES)[number];

/** One risk alert still held (GET /api/v1/admin/alerts). */
export const AlertEntrySchema = z.object({
  channel: z.string(),
  account: z.string(),
  epoch: z.string(),
  seq: z.number(),
  key: z.string().nullable(),
  /** When it was published (ms since the Unix epoch), and how long ago. */
  ts: z.number(),
  age_seconds: z.number(),
  /** What the publisher sent. */
  data: z.unknown(),
  expires_at: z.number().nullable(),
  state: z.enum(['unacked', 'acked']),
  acked_by: z.string().nullable(),
  acked_at: z.number().nullable(),
  /** Deliveries to each user's connections (live, replayed or listed as unacknowledged). */
  deliveries: z.record(z.string(), z.number()),
  delivered: z.number(),
});
export type AlertEntry = z.infer<typeof AlertEntrySchema>;

/** GET /api/v1/admin/alerts */
export const AlertsAnswerSchema = z.object({
  state: z.enum(ALERT_STATES),
  /** Every alert held and not acknowledged, whatever `state` lists. */
  unacked: z.number(),
  /** Age of the oldest of them; null when none waits. */
  oldest_unacked_seconds: z.number().nullable(),
  /** Oldest first. */
  alerts: z.array(AlertEntrySchema),
});
export type AlertsAnswer = z.infer<typeof AlertsAnswerSchema>;

/** Each admin endpoint (path under /api/v1/admin, query aside) and the schema of its answer. */
export const ADMIN_ANSWERS = {
  '/websocket/status': StatusAnswerSchema,
  '/websocket/connections': ConnectionsAnswerSchema,
  '/websocket/stats': StatsAnswerSchema,
  '/websocket/cleanup': CleanupAnswerSchema,
  '/websocket/queue/flush': FlushAnswerSchema,
  '/broadcast': BroadcastAnswerSchema,
  '/alerts': AlertsAnswerSchema,
} as const;
export type AdminEndpoint = keyof typeof ADMIN_ANSWERS;

/**
 * Fields added to the status answer after the first release (the admission limits of
 * docs/security.md). A reader that may talk to an older gateway takes them as optional.
 */
const STATUS_ADDED = {
  unauthenticated_connections: true,
  max_unauthenticated: true,
  max_connections_per_user: true,
  max_connections_per_ip: true,
  sse_connections: true,
} as const;

/** Read as an empty list when absent (an embedded gateway does not send it). */
const missingRead = z.array(z.string()).default([]);

/** The status answer as a gateway of any release gives it. */
export const StatusReader = StatusAnswerSchema.partial(STATUS_ADDED).extend({
  instances: z.array(InstanceStatusSchema.partial(STATUS_ADDED)),
  missing_instances: missingRead,
});
export type StatusRead = z.infer<typeof StatusReader>;
export type InstanceStatusRead = StatusRead['instances'][number];

/** Each admin endpoint and the schema a client that may meet an older gateway reads it by. */
export const ADMIN_READERS = {
  '/websocket/status': StatusReader,
  // A gateway before the HTTP streaming fallback has only WebSocket connections.
  '/websocket/connections': z.array(
    ConnectionEntrySchema.extend({
      transport: ConnectionEntrySchema.shape.transport.default('websocket'),
    }),
  ),
  '/websocket/stats': StatsAnswerSchema.extend({ missing_instances: missingRead }),
  '/websocket/cleanup': CleanupAnswerSchema.extend({ missing: missingRead }),
  '/websocket/queue/flush': FlushAnswerSchema.extend({ missing: missingRead }),
  '/broadcast': BroadcastAnswerSchema.extend({ missing: missingRead }),
  '/alerts': AlertsAnswerSchema,
} as const satisfies Record<AdminEndpoint, z.ZodType>;
