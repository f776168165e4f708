/** `archon-ws verify`: RB-003 section 5's success criteria, each PASS or FAIL with its figure. */
import type { Command } from 'commander';
import { successCriteria, type SuccessCheck } from '../../protocol/index.js';
import { Exit, resolveTarget, type Target } from '../api.js';
import { action, durationOption, targetOptions, type TargetOptions } from '../common.js';
import { out, table, withProgress } from '../format.js';
import { fetchStats } from './stats.js';
import { fetchStatus } from './status.js';

export type Check = SuccessCheck;

/** One round of checks: status for connections, queue and latency; stats over 5 min for errors. */
export async function runChecks(target: Target): Promise<Check[]> {
  const [status, stats] = await Promise.all([fetchStatus(target), fetchStats(target, 5)]);
  return successCriteria({
    ...status,
    errors_per_minute: stats.errors_per_minute,
    minutes: 5,
  });
}

interface Options extends TargetOptions {
  watch?: boolean;
  timeout: string;
  interval: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function registerVerify(program: Command): void {
  targetOptions(
    program
      .command('verify')
      .description('RB-003 section 5 success criteria; exit 0 only when all pass')
      .option('--watch', 'repeat until all pass (bounded by --timeout)')
      .option('--timeout <duration>', 'how long --watch keeps trying (e.g. 90s, 10m)', '10m')
      .option('--interval <duration>', 'time between --watch rounds', '10s'),
  ).action(
    action(async (options: Options) => {
      // --watch may be left running for a long incident: up to a day.
      const timeoutMs = durationOption('--timeout', options.timeout, { maxMs: 86_400_000 });
      const intervalMs = durationOption('--interval', options.interval);
      const target = resolveTarget(options);
      const json = options.json === true;
      const deadline = Date.now() + timeoutMs;
      for (let round_ = 1; ; round_++) {
        const checks = await withProgress(`checking ${target.url}`, json, runChecks(target));
        const ok = checks.every((c) => c.pass);
        const last = !options.watch || ok || Date.now() + intervalMs > deadline;
        if (json) {
          if (last) out(JSON.stringify({ ok, rounds: round_, checks }, null, 2));
        } else if (last || process.stdout.isTTY !== true) {
          out(
            table(
              ['RESULT', 'CRITERION', 'FIGURE', 'TARGET'],
              checks.map((c) => [c.pass ? 'PASS' : 'FAIL', c.name, c.figure, c.threshold]),
            ),
          );
          out(
            ok
              ? 'all success criteria pass'
              : `${checks.filter((c) => !c.pass).length} of ${checks.length} criteria fail${options.watch ? ` (gave up after ${Math.round(timeoutMs / 1000)} s)` : ''}`,
          );
        }
        if (last) return ok ? Exit.ok : Exit.checkFailed;
        if (!json) {
          const failing = checks.filter((c) => !c.pass).map((c) => `${c.name} ${c.figure}`);
          process.stderr.write(
            `round ${round_}: failing: ${failing.join('; ')}; next check in ${Math.round(intervalMs / 1000)} s\n`,
          );
        }
        await sleep(intervalMs);
      }
    }),
  );
}
