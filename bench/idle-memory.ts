/**
 * Idle memory per connection: N clients connect, authenticate and subscribe to 3 channels,
 * then stay silent; the server's RSS after minus before, divided by N, is what one idle
 * connection costs. Each target is a fresh server process on a free loopback port, measured
 * one after the other in alternating order per round.
 *
 *   node_modules/.bin/node bench/idle-memory.ts [--clients 10000] [--rounds 3]
 *        [--only bare,socketio,archon] [--settle 5] [--warmup 1000] [--timeout SECONDS]
 *        [--node-args=--max-semi-space-size=16]
 *
 * bare is bench/bare-server.ts (a `ws` server that keeps a Set of subscribers per channel;
 * `floor` is the same server idle); socketio is Socket.IO 4 with 3 rooms joined; archon is
 * `archon-ws serve` with every feature on (JWT auth, queues, history, metrics, liveness).
 * RSS is read from /proc/<pid>/status after `--settle` seconds of quiet, before the clients
 * connect and after they all hold their 3 subscriptions. Before that, `--warmup` clients
 * connect and leave (0: a cold server), so the figure is what connections hold, not the
 * one-off growth of V8's young generation and compiled code that the first burst causes.
 * The heap columns (from the probe every server carries, bench/probe.ts) say where it went.
 */
import { randomBytes } from 'node:crypto';
import process from 'node:process';
import { nodeArgsOf, parseOptions, runMain } from './cli.ts';
import { BenchClient, channel, signToken, type Handlers } from './client.ts';
import { dialect } from './dialect.ts';
import { procRssMb, sleep } from './measure.ts';
import { environment, fx, median, saveResults, table } from './report.ts';
import {
  distBuilt,
  freePort,
  probeStats,
  startServer,
  stopServer,
  type Secrets,
  type Server,
  type Target,
} from './servers.ts';

const { argv, fail } = parseOptions(import.meta.url, 'idle-memory', {
  clients: { type: 'string', default: '10000' },
  rounds: { type: 'string', default: '3' },
  only: { type: 'string', default: 'bare,socketio,archon' },
  settle: { type: 'string', default: '5' },
  warmup: { type: 'string', default: '1000' },
  'node-args': { type: 'string', default: '' },
  timeout: { type: 'string' },
  'no-save': { type: 'boolean', default: false },
});

const clients = Number(argv.clients);
const rounds = Number(argv.rounds);
const settle = Number(argv.settle);
const warmup = Number(argv.warmup);
const nodeArgs = nodeArgsOf(argv['node-args']);
const targets = argv.only.split(',') as Target[];
if (!Number.isInteger(clients) || clients < 1 || clients > 15_000) fail('--clients: 1..15000');
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 9) fail('--rounds: 1..9');
if (!(settle >= 0 && settle <= 60)) fail('--settle: 0..60 seconds');
if (!Number.isInteger(warmup) || warmup < 0 || warmup > 15_000) fail('--warmup: 0..15000');
if (!nodeArgs.every((a) => a.startsWith('--'))) fail('--node-args: Node/V8 flags for every server');
const TARGETS: readonly string[] = ['floor', 'bare', 'socketio', 'archon'];
if (!targets.every((t) => TARGETS.includes(t))) fail(`--only: ${TARGETS.join(', ')}`);
const CHANNELS = ['signals', 'positions:ACC1', 'risk:ACC1'];
const perTarget = 60 + (clients + warmup) / 200 + 2 * settle;
const hardBound = Number(argv.timeout ?? Math.ceil(rounds * targets.length * perTarget + 30));

/** Heap figures of a server in MB, from its probe (bench/probe.ts). They say where the RSS
 * goes: live objects (heap used), heap V8 keeps (heap total, of which the young generation is
 * new space) and buffers (external). */
async function memoryOf(server: Server): Promise<Heap> {
  const m = await probeStats(server);
  const mb = (bytes: number): number => bytes / 1024 / 1024;
  return {
    heapUsed: mb(m.heapUsed),
    heapTotal: mb(m.heapTotal),
    external: mb(m.external),
    newSpace: mb(m.newSpace),
  };
}

/** Idle clients: they answer pings (bench/client.ts) and nothing else. */
const IDLE: Handlers<undefined> = {};

/** Connects `n` clients to a target's server, 200 at a time: hello, then the 3 subscriptions. */
async function connectAll(target: Target, port: number, token: string, n: number) {
  const url = dialect(target).url(`ws://127.0.0.1:${port}`);
  const clients: BenchClient[] = [];
  for (let i = 0; i < n; i += 200) {
    const batch = Array.from(
      { length: Math.min(200, n - i) },
      () =>
        new BenchClient(
          {
            token,
            target,
            client: 'idle-bench',
            channels: CHANNELS.map((name) => channel(name)),
            data: undefined,
          },
          IDLE,
        ),
    );
    // A client not subscribed within 30 s fails the measurement.
    await Promise.all(batch.map((c) => c.open(url, 30_000)));
    clients.push(...batch);
  }
  return clients;
}

interface Heap {
  heapUsed: number;
  heapTotal: number;
  external: number;
  newSpace: number;
}

async function measure(target: Target, secrets: Secrets & { jwt: string }) {
  const port = await freePort();
  const server = await startServer(target, port, secrets, {
    bound: Math.ceil(perTarget + 30),
    nodeArgs,
    extraEnv: {
      WEBSOCKET_MAX_CONNECTIONS_PER_USER: '20000',
      WEBSOCKET_MAX_CONNECTIONS_PER_IP: '20000',
    },
  });
  try {
    // Warm-up: the server's code paths compiled and its young generation grown to the size
    // a burst of connections needs, so "before" is a server that has already served clients.
    for (const c of await connectAll(target, port, secrets.jwt, warmup)) c.terminate();
    await sleep(settle * 1000);
    const before = procRssMb(server.pid);
    const heapBefore = await memoryOf(server);
    const connected = await connectAll(target, port, secrets.jwt, clients);
    await sleep(settle * 1000);
    const after = procRssMb(server.pid);
    const heapAfter = await memoryOf(server);
    for (const c of connected) c.terminate();
    const perConnection = (a: number | null, b: number | null): number | null =>
      a === null || b === null ? null : ((b - a) * 1024) / clients;
    return {
      target,
      clients,
      rssBeforeMb: before,
      rssAfterMb: after,
      kbPerConnection: perConnection(before, after),
      heapBefore,
      heapAfter,
      // KB per connection of each part: the objects, what V8 holds, buffers.
      kbHeapUsed: perConnection(heapBefore.heapUsed, heapAfter.heapUsed),
      kbHeapTotal: perConnection(heapBefore.heapTotal, heapAfter.heapTotal),
      kbNewSpace: perConnection(heapBefore.newSpace, heapAfter.newSpace),
      kbExternal: perConnection(heapBefore.external, heapAfter.external),
    };
  } finally {
    await stopServer(server);
  }
}

type Measured = { round: number } & Awaited<ReturnType<typeof measure>>;

runMain('idle-memory', hardBound, async () => {
  distBuilt();
  const started = new Date();
  const jwtSecret = randomBytes(32).toString('base64url');
  const secrets = {
    jwtSecret,
    jwt: await signToken(jwtSecret, 'bench-0', ['ACC1']),
    publishToken: randomBytes(24).toString('base64url'),
  };
  process.stderr.write(
    `idle memory: ${clients} clients × ${CHANNELS.length} subscriptions (after a warm-up of ${warmup}), ${rounds} round(s), targets ${targets.join(', ')}\n`,
  );
  const results: Measured[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      const m = { round: r + 1, ...(await measure(target, secrets)) };
      results.push(m);
      process.stderr.write(
        `round ${m.round} ${target}: RSS ${fx(m.rssBeforeMb, 1)} → ${fx(m.rssAfterMb, 1)} MB, ${fx(m.kbPerConnection, 1)} KB per connection\n`,
      );
    }
  }
  const summary = Object.fromEntries(
    targets.map((t) => [
      t,
      median(results.filter((m) => m.target === t).map((m) => m.kbPerConnection)),
    ]),
  );
  process.stdout.write(
    `${table(
      [
        ['round', 5, (m) => m.round],
        ['server', 7, (m) => m.target],
        ['RSS before MB', 14, (m) => fx(m.rssBeforeMb, 1)],
        ['RSS after MB', 13, (m) => fx(m.rssAfterMb, 1)],
        ['KB per connection', 18, (m) => fx(m.kbPerConnection, 1)],
        ['heap used KB', 13, (m) => fx(m.kbHeapUsed, 1)],
        ['heap total KB', 14, (m) => fx(m.kbHeapTotal, 1)],
        ['new space KB', 13, (m) => fx(m.kbNewSpace, 1)],
        ['external KB', 12, (m) => fx(m.kbExternal, 1)],
      ],
      results,
    )}\n\nmedian KB per idle connection: ${targets.map((t) => `${t} ${fx(summary[t], 1)}`).join(', ')}${
      summary.bare && summary.archon
        ? `; archon − bare ${fx(summary.archon - summary.bare, 1)} KB`
        : ''
    }\n`,
  );
  if (!argv['no-save'])
    saveResults('idle-memory-', started, {
      environment: environment(),
      clients,
      warmup,
      settle,
      nodeArgs,
      results,
      summary,
    });
});
