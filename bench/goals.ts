/**
 * The efficiency goals of docs/performance.md in one command: runs each benchmark in turn,
 * reads its results file and prints the goals table (goal, measured, met) with the date, the
 * machine and the commit, as docs/performance.md shows it.
 *
 *   node_modules/.bin/node bench/goals.ts [--soak-minutes 0] [--skip run10k,run5k,idle,storm,startup]
 *        [--node-args=--max-semi-space-size=16] [--quick] [--no-save]
 *
 * Steps, about 20 minutes on a 2-core machine (each step's own options are its defaults):
 *   run10k   bench/run.ts --clients 10000 --rate 5   floor, bare, Socket.IO, archon-ws (~6 min)
 *   run5k    bench/run.ts --only floor,archon        5,000 × 10/s (~3 min)
 *   idle     bench/idle-memory.ts                    10,000 idle connections (~3 min)
 *   storm    bench/storm.ts                          10,000 clients move on SIGTERM (~5 min)
 *   startup  RSS of `archon-ws serve` and of the bare server 3 s after start, 3 starts each
 *   soak     bench/soak.ts --minutes N               only with --soak-minutes N (the goal: 60)
 * `--node-args` is given to every server of every step (the Docker image runs with
 * `--max-semi-space-size=16`). A step that fails is reported as such and the others go on.
 * `--quick` runs every step small (a few hundred clients, one short round: about 4 minutes) to
 * check the command itself; its figures do not measure the goals.
 * Writes bench/results/goals-<timestamp>.json (the table and each step's results file).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { log, nodeArgsOf, parseOptions, runMain } from './cli.ts';
import { procRssMb, sleep } from './measure.ts';
import { environment, fx, median, saveResults } from './report.ts';
import {
  BENCH,
  ROOT,
  distBuilt,
  freePort,
  startServer,
  stopServer,
  type Target,
} from './servers.ts';

const STEPS = ['run10k', 'run5k', 'idle', 'storm', 'startup', 'soak'];
const { argv, fail } = parseOptions(import.meta.url, 'goals', {
  'soak-minutes': { type: 'string', default: '0' },
  skip: { type: 'string', default: '' },
  'node-args': { type: 'string', default: '' },
  quick: { type: 'boolean', default: false },
  'no-save': { type: 'boolean', default: false },
});
const soakMinutes = Number(argv['soak-minutes']);
if (!(soakMinutes >= 0 && soakMinutes <= 240)) fail('--soak-minutes: 0..240');
const skip = new Set(argv.skip.split(',').filter(Boolean));
for (const s of skip) if (!STEPS.includes(s)) fail(`--skip: some of ${STEPS.join(', ')}`);
if (soakMinutes === 0) skip.add('soak');
const nodeArgs = argv['node-args'];
const passNodeArgs = nodeArgs ? [`--node-args=${nodeArgs}`] : [];
const quick = argv.quick
  ? {
      run10k: ['--clients', '500', '--seconds', '5', '--rounds', '1', '--quiet-wait', '0'],
      run5k: ['--clients', '300', '--seconds', '5', '--rounds', '1', '--quiet-wait', '0'],
      idle: ['--clients', '500', '--warmup', '100', '--settle', '1', '--rounds', '1'],
      storm: ['--clients', '500', '--rounds', '1'],
    }
  : { run10k: [], run5k: [], idle: [], storm: [] };
// Each step has its own hard bound; this one covers them all.
const hardBound = 3 * 3600 + soakMinutes * 60;

/** What a step gives: the results file it wrote (parsed), or an error. */
interface Step {
  file?: string;
  result?: unknown;
  error?: string;
}

/** Runs a benchmark script to its end → the results file it wrote (parsed), or an error. */
function step(script: string, args: readonly string[]): Promise<Step> {
  return new Promise((resolve) => {
    log(`\n▶ node bench/${script} ${args.join(' ')}`);
    const child = spawn(process.execPath, [path.join(BENCH, script), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      process.stderr.write(d);
    });
    child.on('exit', (code) => {
      const file = /^results: (.+)$/m.exec(out)?.[1];
      if (code !== 0 || !file) {
        resolve({ error: `bench/${script} exited with ${code}` });
        return;
      }
      resolve({ file, result: JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) as unknown });
    });
  });
}

/** RSS of a freshly started server 3 s after it is ready, median of 3 starts. */
async function startupRss(target: Target): Promise<number | null> {
  const secrets = {
    jwtSecret: randomBytes(32).toString('base64url'),
    publishToken: randomBytes(24).toString('base64url'),
  };
  const mbs = [];
  for (let i = 0; i < 3; i++) {
    const server = await startServer(target, await freePort(), secrets, {
      bound: 60,
      nodeArgs: nodeArgsOf(nodeArgs),
    });
    await sleep(3000);
    mbs.push(procRssMb(server.pid));
    await stopServer(server);
  }
  return median(mbs);
}

/** What this script reads of a run.ts results file. */
interface RunResult {
  summary?: {
    ratio: number | null;
    floor: { ratio: number | null };
    targets: Record<
      string,
      | Partial<
          Record<
            'cpuUsPerDelivery' | 'rssMb' | 'publishP50Ms' | 'publishP99Ms' | 'lagP99Ms' | 'p99Ms',
            number | null
          >
        >
      | undefined
    >;
  };
}
type StormSummary = Record<
  'back50Ms' | 'back99Ms' | 'back100Ms' | 'blindP50Ms' | 'blindP99Ms',
  number | null
> & { lossless: boolean };
interface SoakVerdict {
  rssPct: number | null;
  heapTotalPct: number | null;
  fdsFrom: number | null;
  fdsTo: number | null;
  pass: boolean;
}

/** a ≤ b, false when either is missing. */
const atMost = (a: number | null | undefined, b: number | null | undefined): boolean =>
  typeof a === 'number' && typeof b === 'number' && a <= b;
const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  typeof a === 'number' && typeof b === 'number' ? a / b : null;
const secs = (ms: number | null): number | null => (ms === null ? null : ms / 1000);

const met = (ok: boolean | null): string => (ok === null ? '–' : ok ? 'met' : '**not met**');

runMain('goals', hardBound, async () => {
  distBuilt();
  const started = new Date();
  const steps: Record<string, Step> = {};
  if (!skip.has('run10k'))
    steps.run10k = await step('run.ts', [
      '--clients',
      '10000',
      '--rate',
      '5',
      ...quick.run10k,
      ...passNodeArgs,
    ]);
  if (!skip.has('run5k'))
    steps.run5k = await step('run.ts', ['--only', 'floor,archon', ...quick.run5k, ...passNodeArgs]);
  if (!skip.has('idle'))
    steps.idle = await step('idle-memory.ts', [...quick.idle, ...passNodeArgs]);
  if (!skip.has('storm')) steps.storm = await step('storm.ts', [...quick.storm, ...passNodeArgs]);
  if (!skip.has('startup')) {
    log('\n▶ startup RSS: archon-ws serve and the bare server, 3 starts each');
    steps.startup = {
      result: { archonMb: await startupRss('archon'), bareMb: await startupRss('bare') },
    };
  }
  if (!skip.has('soak'))
    steps.soak = await step('soak.ts', ['--minutes', String(soakMinutes), ...passNodeArgs]);

  const rows: { goal: string; measured: string; ok: boolean | null }[] = [];
  const add = (goal: string, measured: string, ok: boolean | null): number =>
    rows.push({ goal, measured, ok });
  const missing = (name: string): string => {
    const error = steps[name]?.error;
    return error ? `failed: ${error}` : 'not run';
  };
  const r10 = (steps.run10k?.result as RunResult | undefined)?.summary;
  if (r10) {
    const t = r10.targets;
    const floor = t.floor ?? {};
    const archon = t.archon ?? {};
    add(
      'CPU per delivery ≤ 1.10× the frame-once floor, 10,000 × 5/s',
      `${fx(r10.floor.ratio, 2)}× (archon/bare ${fx(r10.ratio, 2)}, Socket.IO/floor ${fx(ratio(t.socketio?.cpuUsPerDelivery, floor.cpuUsPerDelivery), 2)})`,
      atMost(r10.floor.ratio, 1.1),
    );
    const rss = ratio(archon.rssMb, floor.rssMb);
    add(
      'RSS under 10,000 × 5/s ≤ 1.5× the floor',
      `${fx(archon.rssMb, 0)} MB vs ${fx(floor.rssMb, 0)} MB: ${fx(rss, 2)}×`,
      atMost(rss, 1.5),
    );
    add(
      'publish p99 ≤ 5 ms while fanning out to 10,000',
      `${fx(archon.publishP99Ms, 1)} ms (p50 ${fx(archon.publishP50Ms, 1)}; floor ${fx(floor.publishP99Ms, 0)})`,
      atMost(archon.publishP99Ms, 5),
    );
    add(
      'event-loop lag p99 ≤ 20 ms while fanning out',
      `${fx(archon.lagP99Ms, 1)} ms (floor ${fx(floor.lagP99Ms, 0)})`,
      atMost(archon.lagP99Ms, 20),
    );
    add(
      'delivery p99 no worse than the floor',
      `${fx(archon.p99Ms, 1)} ms vs ${fx(floor.p99Ms, 1)} ms`,
      atMost(archon.p99Ms, floor.p99Ms),
    );
  } else add('10,000 × 5/s side by side', missing('run10k'), null);
  const r5 = (steps.run5k?.result as RunResult | undefined)?.summary;
  if (r5)
    add(
      'CPU per delivery ≤ 1.10× the frame-once floor, 5,000 × 10/s',
      `${fx(r5.floor.ratio, 2)}×`,
      atMost(r5.floor.ratio, 1.1),
    );
  else add('5,000 × 10/s', missing('run5k'), null);
  const idle = (steps.idle?.result as { summary?: Record<string, number | null> } | undefined)
    ?.summary;
  if (idle)
    add(
      '≤ 8 KB per idle connection (3 subscriptions), within ~2 KB of ws',
      `${fx(idle.archon, 1)} KB (ws ${fx(idle.bare, 1)}, Socket.IO ${fx(idle.socketio, 1)})`,
      atMost(idle.archon, 8) && atMost(idle.archon, (idle.bare ?? NaN) + 2),
    );
  else add('idle memory', missing('idle'), null);
  const storm = (steps.storm?.result as { summary?: StormSummary[] } | undefined)?.summary?.[0];
  if (storm)
    add(
      'reconnect storm: 10,000 clients on SIGTERM, nothing lost, blind p99 ≤ 1.5 s',
      `blind p50 ${fx(storm.blindP50Ms, 0)} / p99 ${fx(storm.blindP99Ms, 0)} ms; back 50/99/100 % ${fx(secs(storm.back50Ms), 1)}/${fx(secs(storm.back99Ms), 1)}/${fx(secs(storm.back100Ms), 1)} s; ${storm.lossless ? 'nothing lost' : 'LOSS'}`,
      storm.lossless && atMost(storm.blindP99Ms, 1500),
    );
  else add('reconnect storm', missing('storm'), null);
  const st = steps.startup?.result as
    { archonMb: number | null; bareMb: number | null } | undefined;
  if (st)
    add(
      'startup RSS reported',
      `${fx(st.archonMb, 0)} MB (bare server ${fx(st.bareMb, 0)} MB)`,
      null,
    );
  const soak = (steps.soak?.result as { verdict?: SoakVerdict } | undefined)?.verdict;
  if (soak)
    add(
      `RSS growth < 5 % after minute 5 of a ${soakMinutes}-minute soak`,
      `RSS ${fx(soak.rssPct, 1)} %, heap total ${fx(soak.heapTotalPct, 1)} %, fds ${soak.fdsFrom} → ${soak.fdsTo}`,
      soak.pass,
    );
  else add('soak', missing('soak'), null);

  const env = environment({ nodeArgs });
  process.stdout.write(
    `\nGoals (${started.toISOString().slice(0, 10)}, ${env.cpus} × ${env.cpuModel}, Node ${env.node}, ` +
      `commit ${env.commit?.slice(0, 7)}${nodeArgs ? `, servers with ${nodeArgs}` : ''}):\n\n` +
      (argv.quick ? '--quick: small loads; these figures do not measure the goals.\n\n' : '') +
      `| Goal | Measured | |\n| --- | --- | --- |\n` +
      rows.map((r) => `| ${r.goal} | ${r.measured} | ${met(r.ok)} |`).join('\n') +
      '\n\n' +
      Object.entries(steps)
        .filter(([, s]) => s.file)
        .map(([name, s]) => `${name}: ${s.file}`)
        .join('\n') +
      '\n',
  );
  if (!argv['no-save'])
    saveResults('goals-', started, {
      environment: env,
      rows,
      files: Object.fromEntries(
        Object.entries(steps).map(([k, s]) => [k, s.file ?? s.error ?? null]),
      ),
      startup: steps.startup?.result ?? null,
    });
});
