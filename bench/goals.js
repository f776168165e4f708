/**
 * The efficiency goals of docs/performance.md in one command: runs each benchmark in turn,
 * reads its results file and prints the goals table (goal, measured, met) with the date, the
 * machine and the commit, as docs/performance.md shows it.
 *
 *   node_modules/.bin/node bench/goals.js [--soak-minutes 0] [--skip run10k,run5k,idle,storm,startup]
 *        [--node-args=--max-semi-space-size=16] [--quick] [--no-save]
 *
 * Steps, about 20 minutes on a 2-core machine (each step's own options are its defaults):
 *   run10k   bench/run.js --clients 10000 --rate 5   floor, bare, Socket.IO, archon-ws (~6 min)
 *   run5k    bench/run.js --only floor,archon        5,000 × 10/s (~3 min)
 *   idle     bench/idle-memory.js                    10,000 idle connections (~3 min)
 *   storm    bench/storm.js                          10,000 clients move on SIGTERM (~5 min)
 *   startup  RSS of `archon-ws serve` and of the bare server 3 s after start, 3 starts each
 *   soak     bench/soak.js --minutes N               only with --soak-minutes N (the goal: 60)
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
import {
  BENCH,
  ROOT,
  distBuilt,
  environment,
  freePort,
  fx,
  median,
  parseOptions,
  runMain,
  saveResults,
  startServer,
  stopServer,
} from './common.js';
import { procRssMb, sleep } from './loadgen.js';

const STEPS = ['run10k', 'run5k', 'idle', 'storm', 'startup', 'soak'];
const log = (s) => process.stderr.write(`${s}\n`);
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

/** Runs a benchmark script to its end → the results file it wrote (parsed), or an error. */
function step(script, args) {
  return new Promise((resolve) => {
    log(`\n▶ node bench/${script} ${args.join(' ')}`);
    const child = spawn(process.execPath, [path.join(BENCH, script), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      process.stderr.write(d);
    });
    child.on('exit', (code) => {
      const file = /^results: (.+)$/m.exec(out)?.[1];
      if (code !== 0 || !file) {
        resolve({ error: `bench/${script} exited with ${code}` });
        return;
      }
      resolve({ file, result: JSON.parse(readFileSync(path.join(ROOT, file), 'utf8')) });
    });
  });
}

/** RSS of a freshly started server 3 s after it is ready, median of 3 starts. */
async function startupRss(target) {
  const secrets = {
    jwtSecret: randomBytes(32).toString('base64url'),
    publishToken: randomBytes(24).toString('base64url'),
  };
  const mbs = [];
  for (let i = 0; i < 3; i++) {
    const server = await startServer(target, await freePort(), secrets, {
      bound: 60,
      nodeArgs: nodeArgs.split(' ').filter(Boolean),
    });
    await sleep(3000);
    mbs.push(procRssMb(server.pid));
    await stopServer(server);
  }
  return median(mbs);
}

const met = (ok) => (ok === null ? '–' : ok ? 'met' : '**not met**');

runMain('goals', hardBound, async () => {
  distBuilt();
  const started = new Date();
  const steps = {};
  if (!skip.has('run10k'))
    steps.run10k = await step('run.js', [
      '--clients',
      '10000',
      '--rate',
      '5',
      ...quick.run10k,
      ...passNodeArgs,
    ]);
  if (!skip.has('run5k'))
    steps.run5k = await step('run.js', ['--only', 'floor,archon', ...quick.run5k, ...passNodeArgs]);
  if (!skip.has('idle'))
    steps.idle = await step('idle-memory.js', [...quick.idle, ...passNodeArgs]);
  if (!skip.has('storm')) steps.storm = await step('storm.js', [...quick.storm, ...passNodeArgs]);
  if (!skip.has('startup')) {
    log('\n▶ startup RSS: archon-ws serve and the bare server, 3 starts each');
    steps.startup = {
      result: { archonMb: await startupRss('archon'), bareMb: await startupRss('bare') },
    };
  }
  if (!skip.has('soak'))
    steps.soak = await step('soak.js', ['--minutes', String(soakMinutes), ...passNodeArgs]);

  const rows = [];
  const add = (goal, measured, ok) => rows.push({ goal, measured, ok });
  const missing = (name) => (steps[name]?.error ? `failed: ${steps[name].error}` : 'not run');
  const r10 = steps.run10k?.result?.summary;
  if (r10) {
    const t = r10.targets;
    add(
      'CPU per delivery ≤ 1.10× the frame-once floor, 10,000 × 5/s',
      `${fx(r10.floor.ratio, 2)}× (archon/bare ${fx(r10.ratio, 2)}, Socket.IO/floor ${fx(t.socketio?.cpuUsPerDelivery / t.floor?.cpuUsPerDelivery, 2)})`,
      r10.floor.ratio <= 1.1,
    );
    const rss = t.archon.rssMb / t.floor.rssMb;
    add(
      'RSS under 10,000 × 5/s ≤ 1.5× the floor',
      `${fx(t.archon.rssMb, 0)} MB vs ${fx(t.floor.rssMb, 0)} MB: ${fx(rss, 2)}×`,
      rss <= 1.5,
    );
    add(
      'publish p99 ≤ 5 ms while fanning out to 10,000',
      `${fx(t.archon.publishP99Ms, 1)} ms (p50 ${fx(t.archon.publishP50Ms, 1)}; floor ${fx(t.floor.publishP99Ms, 0)})`,
      t.archon.publishP99Ms <= 5,
    );
    add(
      'event-loop lag p99 ≤ 20 ms while fanning out',
      `${fx(t.archon.lagP99Ms, 1)} ms (floor ${fx(t.floor.lagP99Ms, 0)})`,
      t.archon.lagP99Ms <= 20,
    );
    add(
      'delivery p99 no worse than the floor',
      `${fx(t.archon.p99Ms, 1)} ms vs ${fx(t.floor.p99Ms, 1)} ms`,
      t.archon.p99Ms <= t.floor.p99Ms,
    );
  } else add('10,000 × 5/s side by side', missing('run10k'), null);
  const r5 = steps.run5k?.result?.summary;
  if (r5)
    add(
      'CPU per delivery ≤ 1.10× the frame-once floor, 5,000 × 10/s',
      `${fx(r5.floor.ratio, 2)}×`,
      r5.floor.ratio <= 1.1,
    );
  else add('5,000 × 10/s', missing('run5k'), null);
  const idle = steps.idle?.result?.summary;
  if (idle)
    add(
      '≤ 8 KB per idle connection (3 subscriptions), within ~2 KB of ws',
      `${fx(idle.archon, 1)} KB (ws ${fx(idle.bare, 1)}, Socket.IO ${fx(idle.socketio, 1)})`,
      idle.archon <= 8 && idle.archon - idle.bare <= 2,
    );
  else add('idle memory', missing('idle'), null);
  const storm = steps.storm?.result?.summary?.[0];
  if (storm)
    add(
      'reconnect storm: 10,000 clients on SIGTERM, nothing lost, blind p99 ≤ 1.5 s',
      `blind p50 ${fx(storm.blindP50Ms, 0)} / p99 ${fx(storm.blindP99Ms, 0)} ms; back 50/99/100 % ${fx(storm.back50Ms / 1000, 1)}/${fx(storm.back99Ms / 1000, 1)}/${fx(storm.back100Ms / 1000, 1)} s; ${storm.lossless ? 'nothing lost' : 'LOSS'}`,
      storm.lossless && storm.blindP99Ms <= 1500,
    );
  else add('reconnect storm', missing('storm'), null);
  const st = steps.startup?.result;
  if (st)
    add(
      'startup RSS reported',
      `${fx(st.archonMb, 0)} MB (bare server ${fx(st.bareMb, 0)} MB)`,
      null,
    );
  const soak = steps.soak?.result?.verdict;
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
