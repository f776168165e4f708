/**
 * The command line of the benchmark scripts and their run under a hard time bound: options
 * (node:util parseArgs) with -h/--help printing the script's header comment, the options the
 * orchestrators share, and `runMain`, which kills every child (workers, servers, Redis) on
 * exit, error, signals and at the bound.
 */
import { readFileSync } from 'node:fs';
import process from 'node:process';
import { clearTimeout, setTimeout } from 'node:timers';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { killServers } from './servers.ts';
import { describe, killWorkers } from './workers.ts';

/** Progress lines go to stderr, so stdout holds only the tables. */
export const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};

type Values = Record<string, string | boolean | undefined>;

/** A script's option values: strings, or booleans for the flags. */
export type Argv<O extends ParseArgsOptionsConfig> = {
  [K in keyof O]: O[K] extends { type: 'boolean' }
    ? boolean
    : O[K] extends { default: string }
      ? string
      : string | undefined;
};

/**
 * The command line of a benchmark script (the one at `scriptUrl`: its import.meta.url):
 * `options` plus -h/--help, which prints the script's header comment and exits. An unknown
 * option or a bad form exits with status 2 and a one-line error; so does fail(msg), with
 * `name: msg`.
 */
export function parseOptions<O extends ParseArgsOptionsConfig>(
  scriptUrl: string,
  name: string,
  options: O,
): { argv: Argv<O>; fail: (msg: string) => never } {
  const fail = (msg: string): never => {
    log(`${name}: ${msg}`);
    process.exit(2);
  };
  let values: Values;
  try {
    ({ values } = parseArgs({
      options: { ...options, help: { type: 'boolean', short: 'h', default: false } },
    }));
  } catch (err) {
    // e.g. a value that starts with -- needs the = form: --node-args=--max-semi-space-size=16
    return fail(`${(err as Error).message} (--help lists the options)`);
  }
  if (values.help) {
    process.stdout.write(readFileSync(fileURLToPath(scriptUrl), 'utf8').split('*/')[0] ?? '');
    process.exit(0);
  }
  return { argv: values as Argv<O>, fail };
}

/** The options run.ts, abuse.ts and storm.ts share, checked. */
export interface SharedOptions {
  rate: number;
  size: number;
  seconds: number;
  warmup: number;
  rounds: number;
  quietWait: number;
  quietBelow: number;
}

const SHARED = {
  size: { type: 'string', default: '200' },
  seconds: { type: 'string', default: '20' },
  warmup: { type: 'string', default: '3' },
  rounds: { type: 'string', default: '3' },
  'quiet-below': { type: 'string', default: '0.25' },
  timeout: { type: 'string' },
  'no-save': { type: 'boolean', default: false },
} as const;

/**
 * The command line of an orchestrator: its own `options` plus those run.ts, abuse.ts and
 * storm.ts share — the published load (--rate msg/s, --size bytes), the timeline (--warmup,
 * --seconds), --rounds, the wait for a quiet machine (--quiet-wait seconds, --quiet-below a
 * fraction of all cores), --timeout, --no-save — and -h/--help (parseOptions). `defaults`: the
 * script's --rate and --quiet-wait defaults and its largest --size. check(ok, msg) exits with
 * status 2 and `name: msg` unless ok.
 */
export function parseCli<O extends ParseArgsOptionsConfig>(
  scriptUrl: string,
  name: string,
  options: O,
  defaults: { rate: string; quietWait: string; maxSize: number },
): {
  argv: Argv<O & typeof SHARED> & { rate: string; 'quiet-wait': string };
  check: (ok: boolean, msg: string) => void;
  opt: SharedOptions;
} {
  const { argv, fail } = parseOptions(scriptUrl, name, {
    ...options,
    ...SHARED,
    rate: { type: 'string', default: defaults.rate },
    'quiet-wait': { type: 'string', default: defaults.quietWait },
  });
  const check = (ok: boolean, msg: string): void => {
    if (!ok) fail(msg);
  };
  const opt: SharedOptions = {
    rate: Number(argv.rate),
    size: Number(argv.size),
    seconds: Number(argv.seconds),
    warmup: Number(argv.warmup),
    rounds: Number(argv.rounds),
    quietWait: Number(argv['quiet-wait']),
    quietBelow: Number(argv['quiet-below']),
  };
  const { maxSize } = defaults;
  check(opt.rate > 0 && opt.rate <= 1000, '--rate: 1..1000 msg/s');
  check(
    Number.isInteger(opt.size) && opt.size >= 40 && opt.size <= maxSize,
    `--size: 40..${maxSize} bytes`,
  );
  check(opt.seconds >= 1 && opt.seconds <= 300, '--seconds: 1..300');
  check(opt.warmup >= 0 && opt.warmup <= 60, '--warmup: 0..60');
  check(Number.isInteger(opt.rounds) && opt.rounds >= 1 && opt.rounds <= 10, '--rounds: 1..10');
  check(opt.quietWait >= 0 && opt.quietWait <= 600, '--quiet-wait: 0..600 seconds');
  check(opt.quietBelow > 0 && opt.quietBelow <= 1, '--quiet-below: a fraction of all cores, 0..1');
  return {
    argv: argv as Argv<O & typeof SHARED> & { rate: string; 'quiet-wait': string },
    check,
    opt,
  };
}

/** Node/V8 flags for the servers, from --node-args (space-separated). */
export function nodeArgsOf(value: string): string[] {
  return value.split(' ').filter(Boolean);
}

/** Kills every child still alive: the workers (workers.ts) and the servers (servers.ts). */
function killAll(): void {
  killWorkers();
  killServers();
}

/**
 * Runs `main` (the script's body): the children are killed on exit, on SIGINT, SIGTERM and
 * SIGHUP (exit 130) and after `hardBound` seconds (exit 124); exits 0 when main resolves, 1
 * (with the error) when it throws. A private Redis (test/support/redis.ts) is killed when
 * the process exits.
 */
export function runMain(name: string, hardBound: number, main: () => Promise<void>): void {
  process.on('exit', () => killAll());
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      log(`${name}: ${sig}, stopping children`);
      killAll();
      process.exit(130);
    });
  }
  const boundTimer = setTimeout(() => {
    log(`${name}: hard time bound of ${hardBound} s reached, stopping`);
    killAll();
    process.exit(124);
  }, hardBound * 1000);
  main()
    .then(() => {
      clearTimeout(boundTimer);
      killAll();
      process.exit(0);
    })
    .catch((err: unknown) => {
      log(`${name}: ${describe(err)}`);
      killAll();
      process.exit(1);
    });
}
