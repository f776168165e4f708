/**
 * `archon-ws doctor`: RB-003 Steps 1–2 in one run, and which of the runbook's fixes the
 * evidence points to, with the figures that say so. Exit 0 when no fault is found, 6 when
 * one is; 2–5 as for every command when it cannot gather the evidence.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, Exit, resolveTarget, resolveUrl } from '../api.js';
import { action, durationOption, intOption, targetOptions, type TargetOptions } from '../common.js';
import { diagnose, type Diagnosis } from '../doctor/diagnose.js';
import { collectEvidence, type Evidence } from '../doctor/evidence.js';
import { incidentReport } from '../doctor/report.js';
import { mb, out, round, Steps, table, wrap } from '../format.js';

interface Options extends TargetOptions {
  minutes: string;
  report?: string;
  lb?: string;
  direct?: string[];
  timeout: string;
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
          `${s.active_connections} active, peak ${s.peak_connections}, queue ${s.queue_depth}, p99 ${round(s.broadcast_latency_p99_ms)} ms, lag p99 ${round(s.event_loop_lag_p99_ms)} ms${s.memory_rss_bytes === null ? '' : `, ${mb(s.memory_rss_bytes)} rss`}`,
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
          `${ev.connections.total}, ${ev.connections.with_queue} with a queue, ${ev.connections.stale} stale`,
        ],
        [
          'stats',
          `${ev.stats.errors_per_minute} errors/min, ${ev.stats.messages_per_minute} messages/min, ${ev.stats.disconnects_per_minute} disconnects/min`,
        ],
        [
          '/api/health',
          h.error ??
            `HTTP ${h.http_status} ${h.status ?? ''}${h.backplane === null ? '' : `, backplane ${h.backplane}`}`,
        ],
        ['ws health', ev.ws_health.error ?? `${ev.ws_health.status} (${ev.ws_health.server})`],
        [
          'load balancer',
          ev.lb.ok
            ? `${ev.lb.checks.length} of ${ev.lb.checks.length} checks pass (${ev.lb.server ?? '?'})`
            : `FAIL: ${lbFailing.map((c) => c.name).join(', ')}${lbNotRun > 0 ? ` (${lbNotRun} more not run)` : ''}`,
        ],
        ...ev.direct.map((r) => [
          `direct ${r.server ?? ''}`.trim(),
          r.ok
            ? `${r.checks.length} of ${r.checks.length} checks pass (${r.url})`
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
      .option('--lb <url>', 'URL clients connect through (default: --url / $ARCHON_URL)')
      .option(
        '--direct <url...>',
        'instance URLs that bypass the load balancer, to tell the two apart',
      )
      .option('--timeout <duration>', 'give up on each step after this long', '10s'),
  ).action(
    action(async (options: Options) => {
      const minutes = intOption('--minutes', options.minutes, 1, 60);
      const timeoutMs = durationOption('--timeout', options.timeout);
      const target = resolveTarget(options);
      const lbUrl = options.lb === undefined ? target.url : resolveUrl({ url: options.lb });
      const direct = (options.direct ?? []).map((u) => resolveUrl({ url: u }));
      const json = options.json === true;
      const evidence = await collectEvidence({
        target,
        lbUrl,
        direct,
        minutes,
        timeoutMs,
        steps: new Steps(json),
      });
      const diagnosis = diagnose(evidence);
      if (options.report !== undefined) {
        try {
          writeFileSync(options.report, incidentReport(evidence, diagnosis));
        } catch (err) {
          throw new CliError(
            `cannot write ${options.report}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
            Exit.usage,
          );
        }
      }
      if (json) out(JSON.stringify({ ...diagnosis, evidence }, null, 2));
      else {
        printDiagnosis(evidence, diagnosis);
        if (options.report !== undefined) out(`incident summary written to ${options.report}`);
      }
      return diagnosis.healthy ? Exit.ok : Exit.faultFound;
    }),
  );
}
