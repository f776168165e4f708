/**
 * `archon-ws check-lb`: RB-003 Step 2 through the load balancer, each check PASS or FAIL: the
 * WebSocket upgrade and what follows it, then whether the HTTP streaming fallback
 * (GET /api/v1/sse, RB-003 Step 4) reaches a gateway, judged on its own.
 * Exit 0 when every check passes, 1 when one fails, 7 when none fails but some could not run
 * (the test endpoint busy or full, an idle hold the gateway did not grant or ended itself);
 * 2 for bad flags and 3 when nothing answers, as for every command.
 */
import type { Command } from 'commander';
import { TEST_MAX_HOLD_S } from '../../protocol/index.js';
import { CliError, Exit, resolveUrl } from '../api.js';
import { action, durationOption } from '../common.js';
import { out, table, withProgress, wrap } from '../format.js';
import { judge, type LbReport } from '../lb-checks.js';
import {
  fallbackUrl,
  judgeFallback,
  probeFallback,
  withFallback,
  type CheckLbReport,
} from '../lb-fallback.js';
import { probe } from '../lb-probe.js';
import { testUrl } from './test-connect.js';

/** The gateway is asked to hold the test connection this much longer than the idle period,
 * for the checks before it and the echo after it. */
export const HOLD_MARGIN_S = 10;
export const MAX_IDLE_S = TEST_MAX_HOLD_S - HOLD_MARGIN_S;

interface Options {
  url?: string;
  json?: boolean;
  idle?: string;
  timeout: string;
}

/** `--idle` in ms: a duration from 1 s to MAX_IDLE_S; exit 2 otherwise. */
export function idleOption(raw: string): number {
  const ms = durationOption('--idle', raw);
  if (ms < 1000 || ms > MAX_IDLE_S * 1000)
    throw new CliError(
      `--idle must be from 1s to ${MAX_IDLE_S}s (the gateway holds a test connection at most ${TEST_MAX_HOLD_S} s; got ${JSON.stringify(raw)})`,
      Exit.usage,
    );
  return ms;
}

export interface CheckLbRun {
  url: string;
  timeoutMs: number;
  idleMs?: number;
  quiet: boolean;
}

/** Probes and judges, the upgrade then the fallback; a target that does not answer at all is
 * exit 3, as for every command. */
export async function checkLb(run: CheckLbRun): Promise<CheckLbReport> {
  const state = { idleSince: null as number | null };
  const idleMs = run.idleMs;
  const totalS = idleMs === undefined ? 0 : Math.round(idleMs / 1000);
  const result = await withProgress(
    idleMs === undefined ? `check-lb: ${run.url}` : `check-lb: idle hold of ${totalS} s`,
    run.quiet,
    probe(run.url, {
      timeoutMs: run.timeoutMs,
      ...(idleMs !== undefined && {
        idleMs,
        holdSeconds: Math.ceil(idleMs / 1000) + HOLD_MARGIN_S,
        progress: state,
      }),
    }),
    {
      tick: () => {
        if (state.idleSince === null) return '';
        const s = Math.min(totalS, Math.floor((Date.now() - state.idleSince) / 1000));
        return `${s} s of ${totalS} s, ${totalS - s} s left`;
      },
    },
  );
  if (result.handshake.unreachable)
    throw new CliError(
      `cannot reach ${result.url}: ${result.handshake.error ?? 'no answer'}`,
      Exit.unreachable,
    );
  const sse = fallbackUrl(run.url);
  if (sse === null) throw new CliError(`invalid URL ${JSON.stringify(run.url)}`, Exit.usage);
  const fallback = await withProgress(
    `check-lb: ${sse.toString()}`,
    run.quiet,
    probeFallback(sse.toString(), run.timeoutMs),
  );
  return withFallback(judge(result, idleMs), judgeFallback(fallback));
}

/** The checks as a table, then what an idle hold and the fallback mean, then the count. */
export function printLbReport(r: CheckLbReport): void {
  out(`${r.url}${r.server === null ? '' : ` (answered by ${r.server})`}`);
  out(
    table(
      ['RESULT', 'CHECK', 'FIGURE'],
      r.checks.map((c) => [
        c.status === 'pass' ? 'PASS' : c.status === 'fail' ? 'FAIL' : '-',
        c.name,
        c.figure,
      ]),
    ),
  );
  if (r.busy !== null) {
    out('');
    out(wrap(r.busy));
  }
  if (r.idle !== null) {
    out('');
    out(wrap(r.idle.explanation));
  }
  if (r.fallback.explanation !== null) {
    out('');
    out(wrap(r.fallback.explanation));
  }
  const failing = r.checks.filter((c) => c.status !== 'pass').length;
  out('');
  out(
    r.verdict === 'pass'
      ? 'all load balancer checks pass'
      : r.verdict === 'fail'
        ? `${failing} of ${r.checks.length} checks fail or did not run`
        : `${failing} of ${r.checks.length} checks did not run, none failed: the answer is incomplete (exit ${Exit.incomplete})`,
  );
}

/** check-lb's exit code: 0 every check passes, 1 one fails, 7 none fails but some did not run. */
export function lbExitCode(r: LbReport): number {
  return r.verdict === 'pass' ? Exit.ok : r.verdict === 'fail' ? Exit.checkFailed : Exit.incomplete;
}

export function registerCheckLb(program: Command): void {
  program
    .command('check-lb')
    .description(
      'RB-003 Step 2 through the load balancer: upgrade headers, subprotocol, welcome, ping, echo, idle hold',
    )
    .argument('[url]', 'load balancer URL or test endpoint URL (default: $ARCHON_URL)')
    .option('--url <url>', 'load balancer URL (default: $ARCHON_URL)')
    .option(
      '--idle <duration>',
      `also hold the connection completely idle this long, e.g. 90s (max ${MAX_IDLE_S}s): catches a proxy read timeout`,
    )
    .option('--timeout <duration>', 'give up on each step after this long', '10s')
    .option('--json', 'print JSON for scripts')
    .action(
      action(async (arg: string | undefined, options: Options) => {
        const timeoutMs = durationOption('--timeout', options.timeout);
        const idleMs = options.idle === undefined ? undefined : idleOption(options.idle);
        const url = testUrl(arg ?? resolveUrl(options));
        const json = options.json === true;
        const report = await checkLb({
          url,
          timeoutMs,
          ...(idleMs !== undefined && { idleMs }),
          quiet: json,
        });
        if (json) out(JSON.stringify(report, null, 2));
        else printLbReport(report);
        return lbExitCode(report);
      }),
    );
}
