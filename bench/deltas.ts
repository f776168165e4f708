/**
 * Smaller position updates: the demo positions feed (src/demo/feed.ts) to N clients, in full
 * and as deltas (docs/protocol.md#deltas), beside a `ws` broadcast with and without
 * permessage-deflate; bytes on the wire, server CPU and server memory per delivery.
 *
 *   node_modules/.bin/node bench/deltas.ts [--clients 1000] [--tick 100] [--seconds 10]
 *        [--warmup 3] [--rounds 3] [--only full,deltas,ws,deflate] [--seed 1]
 *        [--quiet-wait 20] [--quiet-below 0.25] [--timeout SECONDS] [--no-save]
 *
 * Variants, each a fresh server process on a free 127.0.0.1 port, in alternating order per
 * round:
 *   - `full`: archon-ws (dist/), clients that do not ask for deltas: every update is the
 *     whole position;
 *   - `deltas`: archon-ws, clients that ask in `hello`. One client per account (the checker)
 *     rebuilds the full values from the patches (a patch whose base it does not hold is
 *     counted as `bad`) and is compared with a fresh snapshot once the feed stopped (`diff`:
 *     keys that differ); its events give `deltas %`;
 *   - `ws`: bench/bare-server.ts, a `ws.send` loop, the same events in full: the reference
 *     for the next one;
 *   - `deflate`: the same with permessage-deflate (ws's defaults: context takeover, every
 *     message compressed for each client). The gateway does not negotiate it: it frames each
 *     event once and writes those bytes to every socket, which per-connection compression
 *     rules out; deflate − ws is what compression adds per delivery wherever it runs.
 * Each client subscribes to one account's `positions:` channel (DEMO1..3 in turn). The feed
 * runs in this process and ticks every --tick ms with the demo's price moves (seeded, so every
 * variant sees the same moves), each tick's updates in one POST. Over the window of --seconds
 * (after --warmup): bytes = what the clients' sockets read (frames as on the wire, compressed
 * ones compressed, headers included); CPU = utime+stime of the server process (/proc);
 * deliveries = events the clients received (all but the checkers count them by seq, without
 * parsing them: a client process that keeps up reads every variant alike); memory = the
 * server's RSS at the end of the window minus before the clients connected, per client; `other` = cores the rest of the
 * machine used meanwhile (this process, the server and interrupts left out: other tenants).
 * Before each run it waits up to --quiet-wait s for the machine to be under --quiet-below of
 * its cores. Prints a table per round and the medians; writes
 * bench/results/deltas-<timestamp>.json.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { startDemoFeed, DEMO_ACCOUNTS, type DemoEvent } from '../src/demo/feed.ts';
import { applyMergePatch } from '../src/protocol/merge-patch.ts';
import type { EventMessage, SnapshotMessage } from '../src/protocol/index.js';
import { log, parseOptions, runMain } from './cli.ts';
import { BenchClient, channel, signToken, type Handlers } from './client.ts';
import {
  machineCpu,
  machineWindow,
  procCpuSeconds,
  procRssMb,
  sleep,
  type MachineSample,
} from './measure.ts';
import { environment, fx, median, saveResults, table, waitQuiet, type Column } from './report.ts';
import {
  distBuilt,
  freePort,
  httpPost,
  staleDist,
  startServer,
  stopServer,
  type Server,
} from './servers.ts';

const VARIANTS = ['full', 'deltas', 'ws', 'deflate'] as const;
type Variant = (typeof VARIANTS)[number];

const { argv, fail } = parseOptions(import.meta.url, 'deltas', {
  clients: { type: 'string', default: '1000' },
  tick: { type: 'string', default: '100' },
  seconds: { type: 'string', default: '10' },
  warmup: { type: 'string', default: '3' },
  rounds: { type: 'string', default: '3' },
  only: { type: 'string', default: VARIANTS.join(',') },
  seed: { type: 'string', default: '1' },
  'quiet-wait': { type: 'string', default: '20' },
  'quiet-below': { type: 'string', default: '0.25' },
  timeout: { type: 'string' },
  'no-save': { type: 'boolean', default: false },
});
const opt = {
  clients: Number(argv.clients),
  tickMs: Number(argv.tick),
  seconds: Number(argv.seconds),
  warmup: Number(argv.warmup),
  rounds: Number(argv.rounds),
  seed: Number(argv.seed),
  quietWait: Number(argv['quiet-wait']),
  quietBelow: Number(argv['quiet-below']),
};
const variants = argv.only.split(',').map((v) => v.trim()) as Variant[];
if (!Number.isInteger(opt.clients) || opt.clients < 3 || opt.clients > 15_000)
  fail('--clients: 3..15000');
if (!(opt.tickMs >= 10 && opt.tickMs <= 10_000)) fail('--tick: 10..10000 ms');
if (!(opt.seconds >= 1 && opt.seconds <= 300)) fail('--seconds: 1..300');
if (!(opt.warmup >= 0 && opt.warmup <= 60)) fail('--warmup: 0..60');
if (!Number.isInteger(opt.rounds) || opt.rounds < 1 || opt.rounds > 10) fail('--rounds: 1..10');
if (!Number.isInteger(opt.seed)) fail('--seed: an integer');
if (!(opt.quietWait >= 0 && opt.quietWait <= 600)) fail('--quiet-wait: 0..600 seconds');
if (!(opt.quietBelow > 0 && opt.quietBelow <= 1)) fail('--quiet-below: a fraction of all cores');
if (variants.length === 0 || !variants.every((v) => (VARIANTS as readonly string[]).includes(v)))
  fail(`--only: a comma-separated list of ${VARIANTS.join(', ')}`);

// Per run: start ≤ 30 s, connect, warm-up, window, the check, stop ≤ 10 s; with slack.
const perRun = opt.quietWait + 30 + opt.clients / 50 + opt.warmup + opt.seconds + 10 + 10 + 10;
const hardBound = Number(argv.timeout ?? Math.ceil(perRun * variants.length * opt.rounds + 30));
if (!(hardBound > 0)) fail('--timeout: seconds > 0');

/** A deterministic uniform generator (mulberry32): the same price moves for every variant. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Clients

/** What one client saw: its events, and with deltas the values it rebuilt. */
interface Seen {
  events: number;
  deltas: number;
  /** Patches whose base the client did not hold: never expected. */
  bad: number;
  values: Map<string, { seq: number; data: unknown }> | null;
}

/** Counts events; a client of the deltas variant rebuilds full values from the patches. */
const HANDLERS: Handlers<Seen> = {
  snapshot(client, _ch, m: SnapshotMessage) {
    const seen = client.data;
    if (seen.values === null) return;
    seen.values.clear();
    for (const e of m.entries) seen.values.set(e.key, { seq: m.seq, data: e.data });
  },
  event(client, _ch, _seq, m: EventMessage | null) {
    const seen = client.data;
    seen.events++;
    if (m === null || m.key === null || seen.values === null) return;
    let data = m.data;
    if (m.base_seq !== undefined) {
      seen.deltas++;
      const base = seen.values.get(m.key);
      if (base?.seq !== m.base_seq) {
        seen.bad++;
        return;
      }
      data = applyMergePatch(base.data, m.data);
    }
    if (data === null) seen.values.delete(m.key);
    else seen.values.set(m.key, { seq: m.seq, data });
  },
};

async function connectAll(
  variant: Variant,
  port: number,
  token: string,
): Promise<BenchClient<Seen>[]> {
  const url = `ws://127.0.0.1:${port}/api/v1/ws`;
  const clients: BenchClient<Seen>[] = [];
  for (let i = 0; i < opt.clients; i += 200) {
    const batch = Array.from({ length: Math.min(200, opt.clients - i) }, (_, j) => {
      const account = DEMO_ACCOUNTS[(i + j) % DEMO_ACCOUNTS.length] as string;
      return new BenchClient<Seen>(
        {
          token,
          client: `deltas-bench/${variant}`,
          channels: [channel(`positions:${account}`, false)],
          data: {
            events: 0,
            deltas: 0,
            bad: 0,
            values: variant === 'deltas' ? new Map() : null,
          },
          deltas: variant === 'deltas',
          perMessageDeflate: variant === 'deflate',
          // The first client of each account checks; the others only count.
          seqOnly: i + j >= DEMO_ACCOUNTS.length,
        },
        HANDLERS,
      );
    });
    await Promise.all(batch.map((c) => c.open(url, 30_000)));
    clients.push(...batch);
  }
  return clients;
}

/** What a fresh subscription to an account's channel holds: its snapshot. */
async function snapshotOf(port: number, token: string, account: string): Promise<SnapshotMessage> {
  let received: (m: SnapshotMessage) => void = () => {};
  const snapshot = new Promise<SnapshotMessage>((resolve) => (received = resolve));
  const c = new BenchClient<null>(
    { token, channels: [channel(`positions:${account}`, false)], data: null },
    { snapshot: (_c, _ch, m) => received(m) },
  );
  try {
    await c.open(`ws://127.0.0.1:${port}/api/v1/ws`, 10_000);
    const timeout = sleep(10_000).then(() => {
      throw new Error(`no snapshot of positions:${account} within 10 s`);
    });
    return await Promise.race([snapshot, timeout]);
  } finally {
    c.terminate();
  }
}

/**
 * How many keys the values a client rebuilt get wrong against a fresh snapshot of its channel,
 * once the client has received every update up to the snapshot's seq (the feed is stopped).
 */
async function mismatches(client: BenchClient<Seen>, port: number, token: string) {
  const values = client.data.values;
  const ch = client.channels[0];
  if (values === null || ch === undefined) return 0;
  const snapshot = await snapshotOf(port, token, ch.name.slice('positions:'.length));
  for (let waited = 0; ch.seq < snapshot.seq && waited < 30_000; waited += 50) await sleep(50);
  if (ch.seq !== snapshot.seq)
    log(`  ${ch.name}: the checker is at seq ${ch.seq}, the snapshot at ${snapshot.seq}`);
  const held = new Map(snapshot.entries.map((e) => [e.key, JSON.stringify(e.data)]));
  let wrong = 0;
  for (const key of new Set([...values.keys(), ...held.keys()]))
    if (JSON.stringify(values.get(key)?.data) !== held.get(key)) wrong++;
  return wrong;
}

// ---------------------------------------------------------------------------------------------
// One run

interface Run {
  variant: Variant;
  round: number;
  clients: number;
  deliveries: number;
  deliveriesPerSecond: number;
  bytesPerDelivery: number | null;
  cpuUsPerDelivery: number | null;
  serverCores: number | null;
  kbPerClient: number | null;
  rssMb: number | null;
  /** Share of the checkers' events that were deltas (over the whole run). */
  deltaShare: number;
  /** Cores used by other tenants of the machine during the window. */
  otherCores: number | null;
  bad: number;
  diff: number;
  publishFailed: number;
}

interface Secrets {
  jwtSecret: string;
  publishToken: string;
  jwt: string;
}

async function runVariant(variant: Variant, round: number, secrets: Secrets): Promise<Run> {
  await waitQuiet(opt, log);
  const port = await freePort();
  const target = variant === 'full' || variant === 'deltas' ? 'archon' : 'bare';
  log(`\n▶ round ${round} ${variant} (${target}) on 127.0.0.1:${port}`);
  const server: Server = await startServer(target, port, secrets, {
    bound: Math.ceil(perRun),
    extraEnv: {
      WEBSOCKET_MAX_CONNECTIONS_PER_USER: '20000',
      WEBSOCKET_MAX_CONNECTIONS_PER_IP: '20000',
      ...(variant === 'deflate' && { BENCH_DEFLATE: '1' }),
    },
  });
  let publishFailed = 0;
  /** Publishes on their way: the check waits for them once the feed stopped. */
  const inFlight = new Set<Promise<unknown>>();
  const feed = startDemoFeed({
    random: seeded(opt.seed),
    tickMs: opt.tickMs,
    // Only positions are measured: signals and alerts would not be published anyway.
    signalEveryMs: 1e6,
    alertEveryMs: 1e6,
    publish: async (events: DemoEvent[]) => {
      const positions = events.filter((e) => e.channel.startsWith('positions:'));
      if (positions.length === 0) return;
      const posted = httpPost(
        `http://127.0.0.1:${port}/api/v1/publish`,
        { events: positions },
        { authorization: `Bearer ${secrets.publishToken}` },
      );
      inFlight.add(posted);
      const r = await posted.finally(() => inFlight.delete(posted));
      if (r.status !== 200) {
        if (publishFailed++ === 0) log(`  publish answered ${r.status ?? 'nothing'}: ${r.body}`);
      }
    },
    onError: (err) => {
      if (publishFailed++ === 0) log(`  publish failed: ${String(err)}`);
    },
  });
  let clients: BenchClient<Seen>[] = [];
  try {
    await sleep(1000);
    const rssBefore = procRssMb(server.pid);
    clients = await connectAll(variant, port, secrets.jwt);
    log(`  ${clients.length} clients subscribed; warm-up ${opt.warmup} s`);
    await sleep(opt.warmup * 1000);

    const sum = (f: (c: BenchClient<Seen>) => number): number =>
      clients.reduce((n, c) => n + f(c), 0);
    const cpu0 = procCpuSeconds(server.pid);
    const bytes0 = sum((c) => c.bytesRead);
    const events0 = sum((c) => c.data.events);
    const m0: MachineSample = { machine: machineCpu(), self: process.cpuUsage() };
    const t0 = performance.now();
    await sleep(opt.seconds * 1000);
    const cpu1 = procCpuSeconds(server.pid);
    const bytes1 = sum((c) => c.bytesRead);
    const events1 = sum((c) => c.data.events);
    const m1: MachineSample = { machine: machineCpu(), self: process.cpuUsage() };
    const secs = (performance.now() - t0) / 1000;
    const rssAfter = procRssMb(server.pid);
    feed.stop();

    const deliveries = events1 - events0;
    const cpu = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
    const machine = machineWindow(m0, m1, secs, cpu === null ? 0 : cpu / secs);
    const checkers = clients.slice(0, DEMO_ACCOUNTS.length);
    let diff = 0;
    if (variant === 'deltas') {
      await Promise.allSettled([...inFlight]);
      for (const c of checkers) diff += await mismatches(c, port, secrets.jwt);
    }
    const checked = checkers.reduce((n, c) => n + c.data.events, 0);
    if (server.exited) throw new Error(`${variant}: the server exited:\n${server.logTail}`);
    return {
      variant,
      round,
      clients: clients.length,
      deliveries,
      deliveriesPerSecond: deliveries / secs,
      bytesPerDelivery: deliveries > 0 ? (bytes1 - bytes0) / deliveries : null,
      cpuUsPerDelivery: cpu !== null && deliveries > 0 ? (cpu * 1e6) / deliveries : null,
      serverCores: cpu === null ? null : cpu / secs,
      kbPerClient:
        rssBefore === null || rssAfter === null
          ? null
          : ((rssAfter - rssBefore) * 1024) / clients.length,
      rssMb: rssAfter,
      deltaShare: checked > 0 ? checkers.reduce((n, c) => n + c.data.deltas, 0) / checked : 0,
      otherCores: machine.otherCores,
      bad: sum((c) => c.data.bad),
      diff,
      publishFailed,
    };
  } finally {
    feed.stop();
    for (const c of clients) c.terminate();
    await stopServer(server);
  }
}

// ---------------------------------------------------------------------------------------------
const COLUMNS: Column<Run>[] = [
  ['round', 5, (r) => r.round],
  ['variant', 8, (r) => r.variant],
  ['clients', 7, (r) => r.clients],
  ['deliv/s', 8, (r) => fx(r.deliveriesPerSecond, 0)],
  ['B/deliv', 8, (r) => fx(r.bytesPerDelivery, 1)],
  ['µs/deliv', 9, (r) => fx(r.cpuUsPerDelivery, 3)],
  ['cores', 6, (r) => fx(r.serverCores)],
  ['KB/client', 10, (r) => fx(r.kbPerClient, 1)],
  ['RSS MB', 7, (r) => fx(r.rssMb, 0)],
  ['deltas %', 9, (r) => fx(r.deltaShare * 100, 1)],
  ['other', 6, (r) => fx(r.otherCores)],
  ['bad', 4, (r) => r.bad],
  ['diff', 5, (r) => r.diff],
  ['pub fail', 9, (r) => r.publishFailed],
];

runMain('deltas', hardBound, async () => {
  if (variants.some((v) => v === 'full' || v === 'deltas')) {
    const stale = staleDist();
    if (stale) log(`deltas: WARNING: ${stale}`);
  }
  const started = new Date();
  const jwtSecret = randomBytes(32).toString('base64url');
  const secrets: Secrets = {
    jwtSecret,
    publishToken: randomBytes(24).toString('base64url'),
    jwt: await signToken(jwtSecret, 'bench-0', [...DEMO_ACCOUNTS]),
  };
  log(
    `deltas: ${opt.clients} clients, demo positions feed every ${opt.tickMs} ms, ${opt.rounds} round(s) of ${variants.join(', ')}`,
  );
  const runs: Run[] = [];
  for (let round = 1; round <= opt.rounds; round++) {
    const order = round % 2 === 1 ? variants : [...variants].reverse();
    for (const variant of order) {
      const run = await runVariant(variant, round, secrets);
      runs.push(run);
      log(table(COLUMNS, [run]));
    }
  }
  const summary = Object.fromEntries(
    variants.map((v) => {
      const of = runs.filter((r) => r.variant === v);
      const m = (f: (r: Run) => number | null) => median(of.map(f));
      return [
        v,
        {
          deliveriesPerSecond: m((r) => r.deliveriesPerSecond),
          bytesPerDelivery: m((r) => r.bytesPerDelivery),
          cpuUsPerDelivery: m((r) => r.cpuUsPerDelivery),
          kbPerClient: m((r) => r.kbPerClient),
          deltaShare: m((r) => r.deltaShare),
          bad: of.reduce((n, r) => n + r.bad, 0),
          diff: of.reduce((n, r) => n + r.diff, 0),
        },
      ];
    }),
  );
  const ratio = (a: Variant, b: Variant, key: 'bytesPerDelivery' | 'cpuUsPerDelivery') => {
    const x = summary[a]?.[key];
    const y = summary[b]?.[key];
    return typeof x === 'number' && typeof y === 'number' && y > 0 ? x / y : null;
  };
  process.stdout.write(`${table(COLUMNS, runs)}\n\nmedians over ${opt.rounds} round(s):\n`);
  for (const v of variants) {
    const s = summary[v];
    process.stdout.write(
      `  ${v.padEnd(8)} ${fx(s?.bytesPerDelivery, 1)} B/delivery, ${fx(s?.cpuUsPerDelivery, 3)} µs CPU/delivery, ${fx(s?.kbPerClient, 1)} KB/client\n`,
    );
  }
  const lines = [
    ['deltas/full bytes', ratio('deltas', 'full', 'bytesPerDelivery')],
    ['deltas/full CPU', ratio('deltas', 'full', 'cpuUsPerDelivery')],
    ['deflate/ws bytes', ratio('deflate', 'ws', 'bytesPerDelivery')],
    ['deflate/ws CPU', ratio('deflate', 'ws', 'cpuUsPerDelivery')],
  ] as const;
  for (const [name, value] of lines)
    if (value !== null) process.stdout.write(`  ${name}: ${fx(value, 2)}\n`);
  if (!argv['no-save'])
    saveResults('deltas-', started, {
      environment: environment({ distBuilt: distBuilt() }),
      options: opt,
      variants,
      runs,
      summary,
    });
});
