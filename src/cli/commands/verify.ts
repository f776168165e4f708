/** `archon-ws verify`: RB-003 section 5's success criteria, each PASS or FAIL with its figure. */
import type { Command } from 'commander';
import { Exit, resolveTarget, type Target } from '../api.js';
import { action, durationOption, targetOptions, type TargetOptions } from '../common.js';
import { out, round, table, withProgress } from '../format.js';
import { fetchStats } from './stats.js';
import { fetchStatus } from './status.js';

export interface Check {
  name: string;
  pass: boolean;
  /** The measured number the criterion judges. */
  value: number;
  figure: string;
  threshold: string;
}

/** One round of checks: status for connections, queue and latency; stats over 5 min for errors. */
export async function runChecks(target: Target): Promise<Check[]> {
  const [status, stats] = await Promise.all([fetchStatus(target), fetchStats(target, 5)]);
  const { active_connections: active, peak_connections: peak } = status;
  const baseline: Check =
    peak === 0
      ? {
          name: 'connections back to baseline',
          pass: true,
          value: active,
          figure: `${active} active, no baseline (peak today 0)`,
          threshold: '>= 80 % of peak',
        }
      : {
          name: 'connections back to baseline',
          pass: active >= 0.8 * peak,
          value: active / peak,
          figure: `${active} of peak ${peak} (${Math.round((active / peak) * 100)} %)`,
          threshold: '>= 80 % of peak',
        };
  return [
    baseline,
    {
      name: 'error rate',
      pass: stats.errors_per_minute < 1,
      value: stats.errors_per_minute,
      figure: `${round(stats.errors_per_minute)}/min over 5 min`,
      threshold: '< 1/min',
    },
    {
      name: 'queue depth',
      pass: status.queue_depth < 100,
      value: status.queue_depth,
      figure: String(status.queue_depth),
      threshold: '< 100',
    },
    {
      name: 'broadcast latency p99',
      pass: status.broadcast_latency_p99_ms < 500,
      value: status.broadcast_latency_p99_ms,
      figure: `${round(status.broadcast_latency_p99_ms)} ms`,
      threshold: '< 500 ms',
    },
  ];
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
      const timeoutMs = durationOption('--timeout', options.timeout);
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
