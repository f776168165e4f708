/**
 * Cluster mode's admin plane (docs/cluster.md): every instance registers itself in Redis with a
 * heartbeat and answers admin requests on a control channel, so any instance can answer
 * RB-003's questions for the whole cluster. An answer names the instances that did not
 * reply in time instead of silently leaving them out.
 *
 * On a Redis Cluster (docs/cluster.md#redis-cluster) the control and reply channels stay plain
 * pub/sub, which the cluster carries to every node; the registry is one key. Ops for an HTTP
 * stream go over a sharded channel tagged with the stream's client_id instead: SPUBLISH counts
 * the receivers on the node serving that slot, where the holder subscribed, whereas PUBLISH
 * would count those on whichever node received it.
 */
import { randomBytes } from 'node:crypto';
import { redisClient, type RedisClient } from './backplane/redis-connect.js';
import { parseRedisUrl } from './backplane/redis-url.js';
import type {
  BroadcastAnswer,
  ClientOp,
  CleanupAnswer,
  FlushAnswer,
  InstanceStatus,
  StatsAnswer,
} from '../protocol/index.js';
import { AdminService, type AdminApi, type Status } from './admin.js';
import type { ConnectionInfo } from './connection.js';
import type { DeliverResult } from './http/sse.js';
import { parseClientMessage } from './inbound.js';
import type { Logger } from './logging.js';
import { mergeBuckets, summarize, type MinuteBucket } from './stats.js';

/** An instance whose heartbeat is older than this is gone (docs/cluster.md: 15 s). */
const REGISTRY_TTL_S = 15;
const HEARTBEAT_MS = 5000;
const DEFAULT_REPLY_TIMEOUT_MS = 2000;
const COMMAND_TIMEOUT_MS = 2000;

type Op = 'status' | 'connections' | 'cleanup' | 'flush' | 'audience' | 'buckets';

interface Request {
  readonly id: string;
  readonly op: Op;
  readonly from: string;
  readonly minutes?: number;
}

interface Reply {
  readonly id: string;
  readonly server: string;
  readonly result: unknown;
}

/** Ops for a stream held by another instance, through Redis. */
interface ForwardedOps {
  readonly id: string;
  readonly from: string;
  readonly user: string;
  readonly ops: readonly unknown[];
}

/** Hands ops to a stream held here, for `userId`. */
export type StreamOps = (userId: string, ops: ClientOp[]) => DeliverResult;

export interface ClusterAnswer<T> {
  readonly replies: Map<string, T>;
  /** Registered instances that did not answer in time. */
  readonly missing: string[];
  /** Set when Redis could not be asked at all: only this instance answered. */
  readonly error?: string;
}

export interface ClusterOptions {
  readonly url: string;
  readonly server: string;
  readonly prefix?: string;
  readonly replyTimeoutMs?: number;
}

export class ClusterAdmin implements AdminApi {
  private readonly prefix: string;
  private readonly command: RedisClient;
  private readonly subscriber: RedisClient;
  /** Ops for HTTP streams use sharded pub/sub (see the top of this file). */
  private readonly sharded: boolean;
  private readonly pending = new Map<
    string,
    { replies: Map<string, unknown>; expected: Set<string>; done: () => void }
  >();
  private heartbeat: NodeJS.Timeout | null = null;
  /** HTTP streams held here, by client_id: ops POSTed to another instance reach them. */
  private readonly streams = new Map<string, StreamOps>();
  /** Ops forwarded to another instance's stream, waiting for its answer. */
  private readonly forwards = new Map<string, (result: DeliverResult) => void>();
  private readonly replyTimeoutMs: number;

  constructor(
    private readonly options: ClusterOptions,
    private readonly service: AdminService,
    private readonly publishSystem: (message: string) => Promise<void>,
    private readonly log: Logger,
  ) {
    this.prefix = options.prefix ?? 'archon:';
    this.replyTimeoutMs = options.replyTimeoutMs ?? DEFAULT_REPLY_TIMEOUT_MS;
    const target = parseRedisUrl(options.url);
    // The config refuses such a URL before this is built; here it is a programming error.
    if ('problem' in target) throw new Error(`Redis admin plane: ${target.problem}`);
    this.sharded = target.kind === 'cluster';
    // A stalled Redis must not hang an operator's admin call: commands time out.
    this.command = redisClient(target, {
      name: `${this.prefix}admin`,
      redis: {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: COMMAND_TIMEOUT_MS,
      },
    });
    this.subscriber = redisClient(target, {
      name: `${this.prefix}admin-sub`,
      redis: { maxRetriesPerRequest: 1 },
      shardedSubscribers: this.sharded,
    });
    // ioredis reports connection errors here; the backplane logs the outage itself.
    this.command.on('error', () => {});
    this.subscriber.on('error', () => {});
    this.command.on('ready', () => void this.register());
  }

  private get controlChannel(): string {
    return `${this.prefix}control`;
  }

  private replyChannel(server: string): string {
    return `${this.prefix}reply:${server}`;
  }

  async start(): Promise<void> {
    await Promise.all([this.command.connect(), this.subscriber.connect()]);
    this.subscriber.on('message', (channel: string, text: string) => this.onMessage(channel, text));
    this.subscriber.on('smessage', (channel: string, text: string) =>
      this.onMessage(channel, text),
    );
    await this.subscriber.subscribe(this.controlChannel, this.replyChannel(this.options.server));
    await this.register();
    this.heartbeat = setInterval(() => void this.register(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    await this.command.zrem(this.registryKey, this.options.server).catch(() => 0);
    this.command.disconnect();
    this.subscriber.disconnect();
  }

  // --- AdminApi ---------------------------------------------------------------------------

  async status(): Promise<Status & { missing_instances: string[]; cluster_error?: string }> {
    const answer = await this.ask<InstanceStatus>('status');
    const instances = [...answer.replies.values()];
    for (const server of answer.missing) instances.push(unreachable(server));
    instances.sort((a, b) => a.server.localeCompare(b.server));
    return {
      ...AdminService.combine(instances, 'cluster'),
      missing_instances: answer.missing,
      ...(answer.error !== undefined && { cluster_error: answer.error }),
    };
  }

  async connections(): Promise<ConnectionInfo[]> {
    const answer = await this.ask<ConnectionInfo[]>('connections');
    return [...answer.replies.values()].flat();
  }

  async cleanup(): Promise<CleanupAnswer> {
    const answer = await this.ask<number>('cleanup');
    return {
      removed: sum(answer.replies.values()),
      servers: Object.fromEntries(answer.replies),
      missing: answer.missing,
    };
  }

  async flush(): Promise<FlushAnswer> {
    const answer = await this.ask<{ flushed_messages: number; clients: number }>('flush');
    const results = [...answer.replies.values()];
    return {
      flushed_messages: sum(results.map((r) => r.flushed_messages)),
      clients: sum(results.map((r) => r.clients)),
      servers: Object.fromEntries([...answer.replies].map(([s, r]) => [s, r.flushed_messages])),
      missing: answer.missing,
    };
  }

  async broadcast(message: string): Promise<BroadcastAnswer> {
    const answer = await this.ask<number>('audience');
    await this.publishSystem(message);
    return {
      delivered: sum(answer.replies.values()),
      servers: answer.replies.size,
      missing: answer.missing,
    };
  }

  async stats(minutes: number): Promise<StatsAnswer> {
    const answer = await this.ask<MinuteBucket[]>('buckets', minutes);
    const merged = mergeBuckets([...answer.replies.values()]).slice(-minutes);
    return { ...summarize(merged, minutes), missing_instances: answer.missing };
  }

  // --- HTTP streams (docs/protocol.md#http-streaming-fallback) ------------------------------

  private streamChannel(clientId: string): string {
    return this.sharded ? `${this.prefix}sse:{${clientId}}` : `${this.prefix}sse:${clientId}`;
  }

  /** The client_id of a stream channel (streamChannel() read backwards). */
  private streamOf(channel: string): string {
    const id = channel.slice(`${this.prefix}sse:`.length);
    return this.sharded ? id.slice(1, -1) : id;
  }

  /** A stream opened here: ops POSTed to any instance for it are forwarded to `deliver`. */
  attachStream(clientId: string, deliver: StreamOps): void {
    this.streams.set(clientId, deliver);
    const channel = this.streamChannel(clientId);
    const subscribed = this.sharded
      ? this.subscriber.ssubscribe(channel)
      : this.subscriber.subscribe(channel);
    subscribed.catch((err: unknown) => {
      // Redis is down: ops POSTed here still reach it; others answer 404 until it reconnects.
      this.log.warn({ err, client_id: clientId }, 'Stream not reachable through the cluster');
    });
  }

  detachStream(clientId: string): void {
    if (!this.streams.delete(clientId)) return;
    const channel = this.streamChannel(clientId);
    const unsubscribed = this.sharded
      ? this.subscriber.sunsubscribe(channel)
      : this.subscriber.unsubscribe(channel);
    unsubscribed.catch(() => {});
  }

  /** Hands ops to the instance holding a stream: `unknown` when none does (Redis counts the
   * receivers of the publish), `unavailable` when it does not answer in time. */
  async forward(
    clientId: string,
    userId: string,
    ops: readonly ClientOp[],
  ): Promise<DeliverResult> {
    const id = randomBytes(8).toString('hex');
    const request: ForwardedOps = { id, from: this.options.server, user: userId, ops };
    const answered = new Promise<DeliverResult>((resolve) => {
      const timer = setTimeout(() => {
        this.forwards.delete(id);
        resolve('unavailable');
      }, this.replyTimeoutMs);
      this.forwards.set(id, (result) => {
        clearTimeout(timer);
        this.forwards.delete(id);
        resolve(result);
      });
    });
    let receivers: number;
    try {
      const channel = this.streamChannel(clientId);
      const text = JSON.stringify(request);
      receivers = this.sharded
        ? Number(await this.command.spublish(channel, text))
        : await this.command.publish(channel, text);
    } catch {
      this.forwards.get(id)?.('unavailable');
      return answered;
    }
    if (receivers === 0) this.forwards.get(id)?.('unknown');
    return answered;
  }

  private onStreamOps(channel: string, text: string): void {
    const request = JSON.parse(text) as ForwardedOps;
    const deliver = this.streams.get(this.streamOf(channel));
    // Checked again here: what arrives through Redis is parsed as if a client sent it.
    const ops: ClientOp[] = [];
    for (const op of Array.isArray(request.ops) ? request.ops : []) {
      const parsed = parseClientMessage(JSON.stringify(op));
      if (parsed.ok) ops.push(parsed.op);
    }
    const result: DeliverResult = deliver ? deliver(String(request.user), ops) : 'unknown';
    const reply: Reply = { id: request.id, server: this.options.server, result };
    this.command
      .publish(this.replyChannel(String(request.from)), JSON.stringify(reply))
      .catch((err: unknown) => this.log.warn({ err }, 'Stream ops answer failed'));
  }

  // --- control channel --------------------------------------------------------------------

  /** Asks every registered instance; resolves when all replied or the timeout passed. If
   * Redis itself is unreachable, this instance answers alone and says so. */
  async ask<T>(op: Op, minutes?: number): Promise<ClusterAnswer<T>> {
    let expected: Set<string>;
    try {
      expected = new Set(await this.members());
    } catch {
      const local = new Map<string, T>([[this.options.server, this.local(op, minutes) as T]]);
      return {
        replies: local,
        missing: [],
        error: 'Redis unreachable: this instance answered alone',
      };
    }
    expected.add(this.options.server);
    const id = randomBytes(8).toString('hex');
    const replies = new Map<string, unknown>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.replyTimeoutMs);
      this.pending.set(id, {
        replies,
        expected,
        done: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      const request: Request = {
        id,
        op,
        from: this.options.server,
        ...(minutes !== undefined && { minutes }),
      };
      this.command.publish(this.controlChannel, JSON.stringify(request)).catch(() => {
        // Publishing failed: answer for this instance only.
        replies.set(this.options.server, this.local(op, minutes));
        resolve();
      });
    });
    this.pending.delete(id);
    return {
      replies: replies as Map<string, T>,
      missing: [...expected].filter((s) => !replies.has(s)).sort(),
    };
  }

  private async members(): Promise<string[]> {
    const fresh = Date.now() - REGISTRY_TTL_S * 1000;
    return this.command.zrangebyscore(this.registryKey, fresh, '+inf');
  }

  /** The registry: a sorted set of server ids scored by their last heartbeat (ms). A sorted
   * set, not one key per instance, so listing never scans the keyspace. */
  private get registryKey(): string {
    return `${this.prefix}instances`;
  }

  private async register(): Promise<void> {
    try {
      const now = Date.now();
      await this.command
        .multi()
        .zadd(this.registryKey, now, this.options.server)
        .zremrangebyscore(this.registryKey, '-inf', now - REGISTRY_TTL_S * 1000)
        .exec();
    } catch {
      // Redis is down: the backplane reports it; the heartbeat resumes on reconnect.
    }
  }

  private local(op: Op, minutes?: number): unknown {
    switch (op) {
      case 'status':
        return this.service.instanceStatus();
      case 'connections':
        return this.service.connectionList();
      case 'cleanup':
        return this.service.cleanup();
      case 'flush':
        return this.service.flushQueues();
      case 'audience':
        return this.service.broadcastAudience();
      case 'buckets':
        return this.service.buckets(minutes ?? 60);
    }
  }

  private onMessage(channel: string, text: string): void {
    try {
      if (channel.startsWith(`${this.prefix}sse:`)) {
        this.onStreamOps(channel, text);
        return;
      }
      if (channel === this.controlChannel) {
        const request = JSON.parse(text) as Request;
        const reply: Reply = {
          id: request.id,
          server: this.options.server,
          result: this.local(request.op, request.minutes),
        };
        this.command
          .publish(this.replyChannel(request.from), JSON.stringify(reply))
          .catch((err: unknown) => {
            this.log.warn({ err, op: request.op }, 'Cluster reply failed');
          });
        return;
      }
      const reply = JSON.parse(text) as Reply;
      const forwarded = this.forwards.get(reply.id);
      if (forwarded) {
        forwarded(reply.result as DeliverResult);
        return;
      }
      const pending = this.pending.get(reply.id);
      if (!pending) return; // arrived after the timeout
      pending.replies.set(reply.server, reply.result);
      if ([...pending.expected].every((s) => pending.replies.has(s))) pending.done();
    } catch (err) {
      this.log.warn({ err, channel }, 'Bad cluster control message');
    }
  }
}

function sum(values: Iterable<number>): number {
  let n = 0;
  for (const v of values) n += v;
  return n;
}

/** A registered instance that did not answer: shown, never silently dropped. */
function unreachable(server: string): InstanceStatus {
  return {
    server,
    active_connections: 0,
    peak_connections: 0,
    errors_last_hour: 0,
    queue_depth: 0,
    broadcast_latency_p99_ms: 0,
    event_loop_lag_p99_ms: 0,
    max_connections: 0,
    sse_connections: 0,
    unauthenticated_connections: 0,
    max_unauthenticated: 0,
    max_connections_per_user: 0,
    max_connections_per_ip: 0,
    memory: { rss_bytes: 0, heap_used_bytes: 0, heap_total_bytes: 0, external_bytes: 0 },
    started_at: '',
    uptime_seconds: 0,
    draining: false,
    backplane: { kind: 'redis', healthy: false },
    healthy: false,
  };
}
