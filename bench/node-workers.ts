/**
 * Every core: `archon-ws serve` with 1 worker (ARCHON_WORKERS=1, one process) and with 2
 * (a primary and two workers sharing the port, docs/cluster.md#workers), on a Redis of its own,
 * under the same load generator (loadgen.ts) in the same run: for each publish rate, the
 * deliveries per second, the delivery latency p99 and the server's CPU per delivery (the
 * primary and its workers summed). Compare the rates where both keep p99 under --p99-ms.
 * Figures in docs/performance.md ("Every core: workers").
 *
 *   node_modules/.bin/node bench/node-workers.ts                        # 2000 clients, 10,20,40 msg/s
 *   node_modules/.bin/node bench/node-workers.ts --clients 500 --rates 10 --seconds 5   # quick check
 *
 * 127.0.0.1 only; every server and Redis stops by itself (timeout(1)); --timeout bounds the run.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { log, parseOptions, runMain } from './cli.ts';
import { signToken } from './client.ts';
import { runLoad, type LoadFigures } from './loadgen.ts';
import {
  baseEnv,
  freePort,
  GATEWAY,
  httpGet,
  redisServerVersion,
  startBenchRedis,
  startProcess,
  stopServer,
  type Child,
} from './servers.ts';

const { argv, fail } = parseOptions(import.meta.url, 'node-workers.ts', {
  clients: { type: 'string', default: '2000' },
  rates: { type: 'string', default: '10,20,40' },
  seconds: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '2' },
  'p99-ms': { type: 'string', default: '100' },
  timeout: { type: 'string', default: '900' },
});
const clients = Number(argv.clients);
const rates = argv.rates.split(',').map(Number);
const seconds = Number(argv.seconds);
const warmup = Number(argv.warmup);
const p99Bound = Number(argv['p99-ms']);
const timeout = Number(argv.timeout);
if (!Number.isInteger(clients) || clients < 1 || clients > 10_000) fail('--clients: 1..10000');
if (!rates.every((r) => r > 0 && r <= 1000)) fail('--rates: msg/s 1..1000, comma-separated');
if (!(seconds >= 1 && seconds <= 120)) fail('--seconds: 1..120');
if (!(warmup >= 0 && warmup <= 30)) fail('--warmup: 0..30');
if (!(timeout >= 30 && timeout <= 3600)) fail('--timeout: 30..3600 seconds');
if (redisServerVersion() === null) fail('redis-server (Redis 7) is needed on the PATH');

/** The children of a process (the workers of a primary). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

interface Row {
  workers: number;
  rate: number;
  figures: LoadFigures;
  cpuSeconds: number | null;
}

async function measure(
  workers: number,
  rate: number,
  redisUrl: string,
  secrets: { jwtSecret: string; jwt: string; publishToken: string },
): Promise<Row> {
  const port = await freePort();
  const server: Child = await startProcess({
    label: `archon ×${workers}`,
    cmd: process.execPath,
    args: [GATEWAY, 'serve', '--port', String(port)],
    env: {
      ...baseEnv(),
      HOST: '127.0.0.1',
      ARCHON_SERVER_ID: 'bench',
      ARCHON_WORKERS: String(workers),
      ARCHON_REDIS_URL: redisUrl,
      ARCHON_JWT_SECRET: secrets.jwtSecret,
      ARCHON_PUBLISH_TOKENS: secrets.publishToken,
      WEBSOCKET_MAX_CONNECTIONS: '20000',
      // Every client signs in as the same user from the same address.
      WEBSOCKET_MAX_CONNECTIONS_PER_USER: '20000',
      WEBSOCKET_MAX_CONNECTIONS_PER_IP: '20000',
      LOG_LEVEL: 'warn',
    },
    bound: warmup + seconds + 120,
    // Ready when every worker is in the node's scrape (archon_websocket_worker_up), so
    // round-robin spreads the clients over all of them.
    ready: async () => {
      const r = await httpGet(`http://127.0.0.1:${port}/metrics`);
      if (r.status !== 200) return false;
      if (workers === 1) return true;
      return (r.body.match(/^archon_websocket_worker_up\{[^}]*\} 1$/gm) ?? []).length === workers;
    },
  });
  try {
    const workerPids = workers > 1 ? childrenOf(server.pid) : [];
    const figures = await runLoad({
      url: `ws://127.0.0.1:${port}/api/v1/ws`,
      token: secrets.jwt,
      publishToken: secrets.publishToken,
      serverPid: server.pid,
      extraPids: Object.fromEntries(workerPids.map((pid, i) => [`w${i + 1}`, pid])),
      clients,
      rate,
      warmup,
      seconds,
      log,
    });
    const parts = [
      figures.server?.cpuSeconds,
      ...Object.values(figures.extra).map((e) => e.cpuSeconds),
    ];
    const cpuSeconds = parts.every((c) => typeof c === 'number')
      ? parts.reduce<number>((a, c) => a + (c ?? 0), 0)
      : null;
    return { workers, rate, figures, cpuSeconds };
  } finally {
    await stopServer(server);
  }
}

const f = (n: number | null | undefined, digits = 1): string =>
  n === null || n === undefined ? '—' : n.toFixed(digits);

runMain('node-workers.ts', timeout, async () => {
  const redis = await startBenchRedis(timeout);
  const jwtSecret = randomBytes(32).toString('base64url');
  const secrets = {
    jwtSecret,
    jwt: await signToken(jwtSecret, 'bench-0'),
    publishToken: randomBytes(24).toString('base64url'),
  };
  const rows: Row[] = [];
  try {
    for (const rate of rates)
      for (const workers of [1, 2]) {
        log(`--- ${workers} worker(s), ${clients} clients × ${rate} msg/s`);
        rows.push(await measure(workers, rate, redis.url, secrets));
      }
  } finally {
    await redis.stop();
  }
  const lines = [
    `${clients} clients, ${seconds} s window; p99 bound ${p99Bound} ms`,
    '| workers | rate msg/s | deliveries/s | p99 ms | server CPU cores | µs CPU / delivery | of which primary | load generator cores | complete |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const d = r.figures.delivered.perSecond;
    const window = r.figures.window.seconds;
    const cores = r.cpuSeconds === null ? null : r.cpuSeconds / window;
    const us = r.cpuSeconds === null || d === 0 ? null : (r.cpuSeconds * 1e6) / (d * window);
    const lg = r.figures.loadgen.workers.reduce((a, w) => a + (w.cpuCores ?? 0), 0);
    lines.push(
      `| ${r.workers} | ${r.rate} | ${f(d, 0)} | ${f(r.figures.latencyMs.p99)} | ${f(cores, 2)} | ${f(us, 2)} | ${r.workers > 1 ? f(r.figures.server?.cpuCores, 3) : '—'} | ${f(lg, 2)} | ${r.figures.integrity.complete ? 'yes' : 'no'} |`,
    );
  }
  for (const workers of [1, 2]) {
    const within = rows.filter(
      (r) => r.workers === workers && (r.figures.latencyMs.p99 ?? Infinity) <= p99Bound,
    );
    const best = within.sort(
      (a, b) => b.figures.delivered.perSecond - a.figures.delivered.perSecond,
    )[0];
    lines.push(
      `${workers} worker(s): ${best ? `${f(best.figures.delivered.perSecond, 0)} deliveries/s at p99 ≤ ${p99Bound} ms (rate ${best.rate})` : `no rate kept p99 ≤ ${p99Bound} ms`}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
});
