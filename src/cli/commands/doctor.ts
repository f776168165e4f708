/**
 * `archon-ws doctor`: RB-003 Steps 1–2 in one run, and which of the runbook's fixes the
 * evidence points to, with the figures that say so. Exit 0 when no fault is found, 6 when
 * one is (risk alerts waiting past ArchonRiskAlertUnacknowledged's threshold count as one), 7
 * when none is but a check could not run (the test endpoint busy or full, the risk alerts not
 * readable); 2–5 as for every command when it cannot gather the evidence.
 */
import { accessSync, constants, statSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError, Exit, resolveTarget } from '../api.js';
import { action, durationOption, intOption, targetOptions, type TargetOptions } from '../common.js';
import { diagnose, type Diagnosis } from '../doctor/diagnose.js';
import { collectEvidence, describeAlerts, type Evidence } from '../doctor/evidence.js';
import { incidentReport } from '../doctor/report.js';
import { mb, out, round, Steps, table, wrap } from '../format.js';
import { testEndpointUrl } from '../lb-probe.js';

interface Options extends TargetOptions {
  minutes: string;
  report?: string;
  force?: boolean;
  lb?: string;
  direct?: string[];
  timeout: string;
}

/** A URL to probe with a WebSocket (--lb, --direct): http(s) or ws(s); exit 2 otherwise. */
export function probeUrlOption(flag: string, raw: string): string {
  if (testEndpointUrl(raw.trim()) === null)
    throw new CliError(
      `${flag} ${JSON.stringify(raw)} is not a URL to probe: expected http(s):// or ws(s)://host[:port]`,
      Exit.usage,
    );
  return raw.trim().replace(/\/+$/, '');
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code ?? String(err);

/**
 * Checks, before any evidence is gathered, that --report can be written: an existing file
 * only with --force, otherwise a directory that exists and takes new files; exit 2 if not.
 */
export function checkReportPath(file: string, force: boolean): void {
  let st: Stats | null = null;
  try {
    st = statSync(file);
  } catch (err) {
    if (errno(err) !== 'ENOENT')
      throw new CliError(`cannot write --report ${file}: ${errno(err)}`, Exit.usage);
  }
  if (st !== null) {
    if (st.isDirectory())
      throw new CliError(`cannot write --report ${file}: it is a directory`, Exit.usage);
    if (!force)
      throw new CliError(
        `--report ${file} already exists: pass --force to overwrite it, or choose another name`,
        Exit.usage,
      );
    try {
      accessSync(file, constants.W_OK);
    } catch (err) {
      throw new CliError(`cannot write --report ${file}: ${errno(err)}`, Exit.usage);
    }
    return;
  }
  const dir = dirname(resolve(file));
  let dirStat: Stats;
  try {
    dirStat = statSync(dir);
  } catch (err) {
    throw new CliError(
      `cannot write --report ${file}: directory ${dir} ${errno(err) === 'ENOENT' ? 'does not exist' : `cannot be read (${errno(err)})`}`,
      Exit.usage,
    );
  }
  if (!dirStat.isDirectory())
    throw new CliError(`cannot write --report ${file}: ${dir} is not a directory`, Exit.usage);
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new CliError(
      `cannot write --report ${file}: no new files in ${dir} (${errno(err)})`,
      Exit.usage,
    );
  }
}

function printDiagnosis(ev: Evidence, d: Diagnosis): void {
  const s = ev.status;
  out(
    `doctor: ${ev.url} (${s.mode}, ${s.instances.length} instance${s.instances.length === 1 ? '' : 's'}), last ${ev.minutes} min, ${ev.collected_at}`,
  );
  out('');
  out(
    table(
      ['RESULT', 'CRITERION', 'FIGURE', 'TARGET'],
      d.criteria.map((c) => [c.pass ? 'PASS' : 'FAIL', c.name, c.figure, c.threshold]),
    ),
  );
  out('');
  const h = ev.health;
  const lbFailing = ev.lb.checks.filter((c) => c.status === 'fail');
  const lbNotRun = ev.lb.checks.filter((c) => c.status === 'not run').length;
  out(
    table(
      ['STEP', 'SEEN'],
      [
        [
          'status',
          `${s.active_connections} active, peak ${s.peak_connections}, queue ${s.queue_depth}, p99 ${round(s.broadcast_latency_p99_ms)} ms, lag p99 ${round(s.event_loop_lag_p99_ms)} ms${s.memory.rss_bytes > 0 ? `, ${mb(s.memory.rss_bytes)} rss` : ''}`,
        ],
        [
          'instances',
          s.instances
            .map((i) => `${i.server} ${i.active_connections}${i.healthy ? '' : ' (UNHEALTHY)'}`)
            .join(', ') +
            (s.missing_instances.length > 0 ? `; missing ${s.missing_instances.join(', ')}` : ''),
        ],
        [
          'connections',
          `${ev.connections.total} (websocket ${ev.connections.by_transport.websocket}, sse ${ev.connections.by_transport.sse}), ${ev.connections.with_queue} with a queue, ${ev.connections.stale} stale`,
        ],
        [
          'stats',
          `${ev.stats.errors_per_minute} errors/min, ${ev.stats.messages_per_minute} messages/min, ${ev.stats.disconnects_per_minute} disconnects/min`,
        ],
        ['risk alerts', describeAlerts(ev.alerts)],
        [
          '/api/health',
          h.error ??
            `HTTP ${h.http_status} ${h.status ?? ''}${h.backplane === null ? '' : `, backplane ${h.backplane}`}`,
        ],
        ['ws health', ev.ws_health.error ?? `${ev.ws_health.status} (${ev.ws_health.server})`],
        [
          'load balancer',
          ev.lb.verdict === 'pass'
            ? `${ev.lb.checks.length} of ${ev.lb.checks.length} checks pass (${ev.lb.server ?? '?'})`
            : ev.lb.verdict === 'incomplete'
              ? `NOT RUN: ${ev.lb.busy ?? `${lbNotRun} check(s) could not run`}`
              : `FAIL: ${lbFailing.map((c) => c.name).join(', ')}${lbNotRun > 0 ? ` (${lbNotRun} more not run)` : ''}`,
        ],
        ...ev.direct.map((r) => [
          `direct ${r.server ?? ''}`.trim(),
          r.verdict === 'pass'
            ? `${r.checks.length} of ${r.checks.length} checks pass (${r.url})`
            : r.verdict === 'incomplete'
              ? `NOT RUN (${r.url}): ${r.busy ?? 'checks could not run'}`
              : `FAIL (${r.url})`,
        ]),
      ],
    ),
  );
  out('');
  out(wrap(`onset: ${d.onset.description}`, 96));
  for (const note of d.notes) out(wrap(`note: ${note}`, 96));
  out('');
  if (d.healthy) {
    out(wrap(d.verdict, 96));
    return;
  }
  d.findings.forEach((f, n) => {
    out(`${n + 1}. ${f.title} [${f.severity}]`);
    for (const e of f.evidence) out(wrap(e, 96, '     ').replace(/^ {5}/, '   - '));
    for (const c of f.commands) out(`   run: ${c}`);
    out('');
  });
  out(`${d.verdict}`);
}

export function registerDoctor(program: Command): void {
  targetOptions(
    program
      .command('doctor')
      .description(
        'RB-003 Steps 1-2 in one run, and which fix (A-D, load balancer, backplane) the evidence points to',
      )
      .option('--minutes <n>', 'stats window in minutes, 1-60', '15')
      .option('--report <file>', 'write a Markdown incident summary (RB-003 "Document incident")')
      .option('--force', 'let --report overwrite an existing file')
      .option(
        '--lb <url>',
        'URL clients connect through, http(s) or ws(s) (default: --url / $ARCHON_URL)',
      )
      .option(
        '--direct <url...>',
        'instance URLs that bypass the load balancer, to tell the two apart',
      )
      .option(
        '--timeout <duration>',
        'give up on each step (admin request, probe) after this long, 1ms-1h',
        '10s',
      ),
  ).action(
    action(async (options: Options) => {
      const minutes = intOption('--minutes', options.minutes, 1, 60);
      const timeoutMs = durationOption('--timeout', options.timeout);
      const target = { ...resolveTarget(options), timeoutMs };
      const lbUrl = options.lb === undefined ? target.url : probeUrlOption('--lb', options.lb);
      const direct = (options.direct ?? []).map((u) => probeUrlOption('--direct', u));
      const json = options.json === true;
      // Before the evidence (which takes a while): a report that cannot be written fails now.
      if (options.report !== undefined) checkReportPath(options.report, options.force === true);
      const evidence = await collectEvidence({
        target,
        lbUrl,
        direct,
        minutes,
        timeoutMs,
        steps: new Steps(json),
      });
      const diagnosis = diagnose(evidence);
      let writeError: CliError | null = null;
      if (options.report !== undefined) {
        try {
          writeFileSync(options.report, incidentReport(evidence, diagnosis), {
            flag: options.force === true ? 'w' : 'wx',
          });
        } catch (err) {
          writeError = new CliError(
            `cannot write --report ${options.report}: ${errno(err)}`,
            Exit.usage,
          );
        }
      }
      // The diagnosis is printed even when the report could not be written.
      if (json) out(JSON.stringify({ ...diagnosis, evidence }, null, 2));
      else {
        printDiagnosis(evidence, diagnosis);
        if (options.report !== undefined && writeError === null)
          out(`incident summary written to ${options.report}`);
      }
      if (writeError !== null) throw writeError;
      if (!diagnosis.healthy) return Exit.faultFound;
      return diagnosis.unchecked.length > 0 ? Exit.incomplete : Exit.ok;
    }),
  );
}
