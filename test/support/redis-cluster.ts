/**
 * A throwaway Redis Cluster for one test file (docs/cluster.md, "Redis Cluster"): six
 * redis-server processes on free ports (never 6379), three primaries and a replica of each,
 * joined by `redis-cli --cluster create`. No persistence, and every server runs under
 * timeout(1) so nothing outlives a killed test run. A small `cluster-node-timeout` makes a
 * killed primary's replica take over within a few seconds.
 */
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { eventually } from './eventually.js';
import { startRedis, type TestRedis } from './redis.js';

export interface ClusterNodeInfo {
  readonly id: string;
  readonly port: number;
  readonly role: 'primary' | 'replica';
  /** The node id of its primary (replicas only). */
  readonly primaryId: string | null;
  /** Slot ranges it serves (primaries only), as [first, last]. */
  readonly slots: readonly (readonly [number, number])[];
  /** The cluster marked it failed. */
  readonly failed: boolean;
}

export interface TestRedisCluster {
  /** `redis+cluster://127.0.0.1:<p1>,…/`: every node as a seed. */
  readonly url: string;
  /** Ports of the servers still running. */
  ports(): number[];
  /** What CLUSTER NODES says, asked of a running node. */
  nodes(): Promise<ClusterNodeInfo[]>;
  /** The primaries serving slots now (failed ones left out). */
  primaries(): Promise<ClusterNodeInfo[]>;
  /** FLUSHALL on every primary: each test starts from an empty cluster. */
  flush(): Promise<void>;
  /**
   * Kills the primary on `port` (SIGKILL: a crash) and waits until one of its replicas serves
   * its slots and every node left says `cluster_state:ok`. Resolves with the new primary.
   */
  killPrimary(port: number): Promise<ClusterNodeInfo>;
  /** What a server wrote (its last 8 KB). */
  log(port: number): string;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** Every server exits by itself after this many seconds (default 600). */
  readonly maxSeconds?: number;
  /** `cluster-node-timeout` in ms (default 1000): how soon a dead primary is failed over. */
  readonly nodeTimeoutMs?: number;
}

const PRIMARIES = 3;
const FORM_TIMEOUT_MS = 30_000;
const FAILOVER_TIMEOUT_MS = 30_000;

export async function startRedisCluster(
  options: RedisClusterOptions = {},
): Promise<TestRedisCluster> {
  const maxSeconds = options.maxSeconds ?? 600;
  const args = [
    '--cluster-enabled',
    'yes',
    // Relative to the server's own empty --dir (test/support/redis.ts).
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-node-timeout',
    String(options.nodeTimeoutMs ?? 1000),
    // A replica takes over only once it has synced; the default waits 5 s before the first
    // full sync, long enough for a test to kill the primary of a replica that has no data.
    '--repl-diskless-sync-delay',
    '0',
  ];
  const servers: TestRedis[] = [];
  try {
    for (let i = 0; i < PRIMARIES * 2; i++) servers.push(await startRedis({ args, maxSeconds }));
    await createCluster(servers.map((s) => s.port));
  } catch (err) {
    await Promise.all(servers.map((s) => s.stop()));
    throw err;
  }
  const alive = new Set(servers);
  const byPort = (port: number): TestRedis | undefined => servers.find((s) => s.port === port);
  const running = (): TestRedis[] => servers.filter((s) => alive.has(s));

  const nodes = async (): Promise<ClusterNodeInfo[]> => {
    const first = running()[0];
    if (!first) throw new Error('no Redis Cluster node is running');
    return parseNodes(await ask(first.port, ['CLUSTER', 'NODES']));
  };
  const primaries = async (): Promise<ClusterNodeInfo[]> =>
    (await nodes()).filter((n) => n.role === 'primary' && !n.failed && n.slots.length > 0);

  await waitHealthy(running().map((s) => s.port));
  return {
    url: `redis+cluster://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}/`,
    ports: () => running().map((s) => s.port),
    nodes,
    primaries,
    async flush() {
      for (const p of await primaries()) await ask(p.port, ['FLUSHALL']);
    },
    async killPrimary(port) {
      const server = byPort(port);
      const before = (await primaries()).find((p) => p.port === port);
      if (!server || !before) throw new Error(`no running primary on port ${port}`);
      alive.delete(server);
      await server.stop();
      let promoted: ClusterNodeInfo | undefined;
      await eventually(
        async () => {
          const now = await nodes();
          promoted = now.find(
            (n) =>
              n.role === 'primary' &&
              !n.failed &&
              n.slots.length > 0 &&
              n.port !== port &&
              JSON.stringify(n.slots) === JSON.stringify(before.slots),
          );
          return promoted !== undefined;
        },
        `a replica of the primary on port ${port} to take over its slots`,
        { timeoutMs: FAILOVER_TIMEOUT_MS, everyMs: 100 },
      );
      await waitHealthy(running().map((s) => s.port));
      if (!promoted) throw new Error('no promoted replica');
      return promoted;
    },
    log: (port) => byPort(port)?.log() ?? '',
    async stop() {
      await Promise.all(servers.map((s) => s.stop()));
      alive.clear();
    },
  };
}

/** `redis-cli --cluster create` with one replica per primary, under a timeout of its own. */
async function createCluster(ports: readonly number[]): Promise<void> {
  const proc = spawn(
    'timeout',
    [
      '-s',
      'KILL',
      String(FORM_TIMEOUT_MS / 1000),
      'redis-cli',
      '--cluster',
      'create',
      ...ports.map((p) => `127.0.0.1:${p}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  proc.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  proc.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}): ${output}`);
}

/**
 * Until every node says cluster_state:ok and agrees that all 16384 slots are served, and every
 * replica is in sync with its primary (one that is not could not take over).
 */
async function waitHealthy(ports: readonly number[]): Promise<void> {
  await eventually(
    async () => {
      for (const port of ports) {
        const info = await ask(port, ['CLUSTER', 'INFO']);
        if (!/cluster_state:ok/.test(info) || !/cluster_slots_ok:16384/.test(info)) return false;
        const replication = await ask(port, ['INFO', 'replication']);
        if (/role:slave/.test(replication) && !/master_link_status:up/.test(replication))
          return false;
      }
      return true;
    },
    `cluster_state:ok on ports ${ports.join(', ')}`,
    { timeoutMs: FORM_TIMEOUT_MS, everyMs: 100 },
  );
}

/** One command on one node, over a connection of its own. */
async function ask(port: number, command: readonly [string, ...string[]]): Promise<string> {
  const redis = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const [name, ...rest] = command;
    const reply = await redis.call(name, ...rest);
    return typeof reply === 'string' ? reply : JSON.stringify(reply);
  } finally {
    redis.disconnect();
  }
}

/** CLUSTER NODES lines: `<id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> <slots…>`. */
function parseNodes(text: string): ClusterNodeInfo[] {
  const out: ClusterNodeInfo[] = [];
  for (const line of text.split('\n')) {
    const [id, address, flags, primary, , , , , ...slots] = line.trim().split(' ');
    if (!id || !address || !flags || !primary) continue;
    const port = Number(/:(\d+)@/.exec(address)?.[1] ?? NaN);
    const flagList = flags.split(',');
    out.push({
      id,
      port,
      role: flagList.includes('master') ? 'primary' : 'replica',
      primaryId: primary === '-' ? null : primary,
      slots: slots
        .filter((s) => /^\d+(-\d+)?$/.test(s))
        .map((s) => {
          const [first, last] = s.split('-').map(Number);
          return [first ?? 0, last ?? first ?? 0] as const;
        }),
      failed: flagList.includes('fail') || flagList.includes('fail?'),
    });
  }
  return out;
}
