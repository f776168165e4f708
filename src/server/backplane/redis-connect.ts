/**
 * How the Redis backplane and the admin plane connect (docs/cluster.md): to one primary with
 * ioredis's Redis client, or to a Redis Cluster with its Cluster client, from what
 * ARCHON_REDIS_URL names (redis-url.ts). Both kinds of client answer the same commands; a
 * Cluster client sends each to the primary serving its key's slot.
 */
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { ioredis } from './ioredis.js';
import type { RedisNodeAddress, RedisTarget } from './redis-url.js';

/** A client of either kind. */
export type RedisClient = Redis | Cluster;

/** The options of a connection to one node that come from the URL: TLS and credentials. */
export function nodeOptions(target: RedisTarget & { kind: 'cluster' }): RedisOptions {
  return {
    ...(target.tls && { tls: {} }),
    ...(target.username !== undefined && { username: target.username }),
    ...(target.password !== undefined && { password: target.password }),
  };
}

export interface ClientOptions {
  readonly name: string;
  /** Options of each connection (to the primary, or to each node of a cluster). */
  readonly redis: RedisOptions;
  /** How often a Cluster client re-reads which node serves which slot (ms). */
  readonly slotsRefreshMs?: number;
  readonly shardedSubscribers?: boolean;
}

/**
 * A client for the target. For a cluster, commands are never retried on another node after
 * their connection closed (they may have run) and CLUSTERDOWN fails at once (the caller answers
 * 503 and the publisher retries with its id); MOVED and ASK are followed (the command did not
 * run). The client starts unconnected (lazyConnect) so the caller chooses when to fail.
 */
export function redisClient(target: RedisTarget, options: ClientOptions): RedisClient {
  const { Redis, Cluster } = ioredis();
  const redis: RedisOptions = { ...options.redis, connectionName: options.name, lazyConnect: true };
  if (target.kind === 'single') return new Redis(target.url, redis);
  const { enableOfflineQueue, retryStrategy, ...perNode } = redis;
  const cluster: ClusterOptions = {
    lazyConnect: true,
    enableOfflineQueue: enableOfflineQueue ?? true,
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 0,
    slotsRefreshInterval: options.slotsRefreshMs ?? 5000,
    shardedSubscribers: options.shardedSubscribers ?? false,
    redisOptions: { ...perNode, ...nodeOptions(target) },
    ...(typeof retryStrategy === 'function' && {
      clusterRetryStrategy: (times: number) => retryStrategy(times),
    }),
  };
  return new Cluster(target.seeds.map(seed), cluster);
}

function seed(address: RedisNodeAddress): { host: string; port: number } {
  return { host: address.host, port: address.port };
}

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

/** Where a command that must see every key runs (SCAN): each primary of a cluster. */
export function primaries(client: RedisClient): RedisClient[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/** A node key of a Cluster client's slot table ("host:port", IPv6 hosts unbracketed). */
export function parseNodeKey(key: string): RedisNodeAddress {
  const colon = key.lastIndexOf(':');
  return { host: key.slice(0, colon), port: Number(key.slice(colon + 1)) };
}
