/**
 * `archon-ws doctor --report FILE`: the Markdown incident summary for RB-003's post-recovery
 * "Document incident" step. What the evidence says is filled in; what only the responder
 * knows (impact, root cause, what was done when) is left as headed blanks. Pure.
 */
import { mb, round } from '../format.js';
import type { Diagnosis } from './diagnose.js';
import { describeAlerts, type Evidence } from './evidence.js';

/** A table cell: pipes and line breaks would break the row. */
function cell(v: string | number): string {
  return String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function mdTable(
  headers: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  return [
    `| ${headers.map(cell).join(' | ')} |`,
    `| ${headers.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

function counts(map: Record<string, number>): string {
  const entries = Object.entries(map).sort((a, b) => b[1] - a[1]);
  return entries.length === 0 ? 'none' : entries.map(([k, n]) => `${k} ×${n}`).join(', ');
}

const r1 = (v: number) => round(v, 1);

export function incidentReport(ev: Evidence, d: Diagnosis): string {
  const lines: string[] = [];
  const push = (...more: string[]) => lines.push(...more);
  const day = ev.collected_at.slice(0, 10);
  push(`# Incident: WebSocket degradation (RB-003), ${day}`, '');
  push(
    mdTable(
      ['Field', 'Value'],
      [
        ['Gateway', ev.url],
        ['Load balancer', ev.lb_url],
        ['Evidence collected', `${ev.collected_at} (archon-ws doctor)`],
        ['Window', `last ${ev.minutes} min`],
        [
          'Mode',
          `${ev.status.mode}, ${ev.status.instances.length} instance(s)${ev.status.missing_instances.length > 0 ? `, missing: ${ev.status.missing_instances.join(', ')}` : ''}`,
        ],
        ['Verdict', d.verdict],
        ['Severity', 'P2 High (RB-003)'],
      ],
    ),
    '',
  );

  push('## Summary', '', d.verdict, '', `Onset: ${d.onset.description}.`, '');
  for (const note of d.notes) push(`- ${note}`);
  if (d.notes.length > 0) push('');

  push('## Timeline', '');
  push(
    `Per minute over the last ${ev.stats.minutes} min (UTC; the last minute is still running).`,
    '',
  );
  // Minutes before the oldest instance started hold no data: zeros there mean "not running".
  const uptimes = ev.status.instances.map((i) => i.uptime_seconds);
  const startedAt = Date.parse(ev.collected_at) - 1000 * Math.max(0, ...uptimes);
  push(
    mdTable(
      ['Minute (UTC)', 'Connections', 'Messages', 'Errors', ''],
      ev.stats.series.map((m) => [
        m.minute.replace(/:00(\.000)?Z$/, 'Z'),
        m.connections,
        m.messages,
        m.errors,
        m.minute === d.onset.minute
          ? `← ${d.onset.kind} onset`
          : Date.parse(m.minute) + 60_000 <= startedAt
            ? 'no instance running yet'
            : '',
      ]),
    ),
    '',
  );
  push(
    `Errors by type: ${counts(ev.stats.errors_by_type)}. Disconnects by close code: ${counts(ev.stats.disconnects_by_code)} (docs/errors.md says what each code means).`,
    '',
  );

  push('## Findings', '');
  if (d.findings.length === 0) push('No fault found.', '');
  d.findings.forEach((f, n) => {
    push(`### ${n + 1}. ${f.title} (${f.severity})`, '');
    for (const e of f.evidence) push(`- ${e}`);
    push('', '```bash', ...f.commands, '```', '');
  });

  push('## Success criteria (RB-003 section 5)', '');
  push(
    mdTable(
      ['Result', 'Criterion', 'Figure', 'Target'],
      d.criteria.map((c) => [c.pass ? 'PASS' : 'FAIL', c.name, c.figure, c.threshold]),
    ),
    '',
  );

  push('## Evidence', '', '### Instances', '');
  push(
    mdTable(
      [
        'Server',
        'Active',
        'Max',
        'Queue',
        'Broadcast p99',
        'Loop lag p99',
        'Memory',
        'Backplane',
        'Healthy',
      ],
      ev.status.instances.map((i) => [
        i.server,
        i.active_connections,
        i.max_connections,
        i.queue_depth,
        `${r1(i.broadcast_latency_p99_ms)} ms`,
        `${r1(i.event_loop_lag_p99_ms)} ms`,
        mb(i.memory.rss_bytes),
        `${i.backplane.kind} ${i.backplane.healthy ? 'up' : 'DOWN'}`,
        i.healthy ? 'yes' : 'NO',
      ]),
    ),
    '',
  );
  push(
    `Active ${ev.status.active_connections}, peak today ${ev.status.peak_connections}, errors last hour ${ev.status.errors_last_hour}, queue depth ${ev.status.queue_depth}.`,
    '',
  );
  const c = ev.connections;
  push(
    '### Connections',
    '',
    `- ${c.total} connection(s) of ${c.users} user(s); by server: ${counts(c.by_server)}`,
    `- by client version: ${counts(c.by_client_version)}`,
    `- by transport: websocket ×${c.by_transport.websocket}, sse ×${c.by_transport.sse}${c.by_transport.sse > 0 ? ` (${c.sse_users} user(s) on the HTTP streaming fallback: their WebSocket upgrade does not get through, RB-003 Step 4)` : ''}`,
    `- ${c.with_queue} with messages queued; ${c.stale} silent for more than ${c.stale_after_s} s${c.by_transport.sse > 0 ? ' (WebSockets only: a stream is never pinged, its silence says nothing)' : ''}`,
    '',
    '### Risk alerts',
    '',
    `- ${describeAlerts(ev.alerts)}`,
    '',
  );
  for (const r of [ev.lb, ...ev.direct]) {
    push(`### WebSocket upgrade: ${r.url}`, '');
    push(
      mdTable(
        ['Result', 'Check', 'Figure'],
        r.checks.map((x) => [x.status.toUpperCase(), x.name, x.figure]),
      ),
      '',
    );
  }
  const h = ev.health;
  push(
    '### Health',
    '',
    `- /api/health: ${h.error ?? `HTTP ${h.http_status} ${h.status ?? ''} (${h.server ?? '?'}${h.backplane === null ? '' : `, backplane ${h.backplane}`})`}`,
    `- WebSocket /api/v1/ws/health: ${ev.ws_health.error ?? `${ev.ws_health.status} (${ev.ws_health.server})`}`,
    '',
  );

  push('## Actions', '', 'Recommended by the evidence (RB-003 Step 3/4):', '');
  const commands = d.findings.flatMap((f) => f.commands.map((cmd) => [f.title, cmd] as const));
  if (commands.length === 0) push('- none');
  for (const [title, cmd] of commands)
    push(`- [ ] \`${cmd}\` (${title}) — run at: ____ result: ____`);
  push(
    '',
    'Then verify: `archon-ws verify --watch` (RB-003 section 5) and `archon-ws doctor` again.',
    '',
  );

  push(
    '## To be completed by the responder',
    '',
    '### Impact',
    '',
    '<!-- who was affected (all clients or a subset, which instances), for how long -->',
    '',
    '### Root cause',
    '',
    '<!-- what actually failed and why -->',
    '',
    '### What was done, when',
    '',
    '<!-- time (UTC), action, who, effect -->',
    '',
    '### Follow-ups',
    '',
    '<!-- RB-003 post-recovery: connection log patterns, affected client versions, timeout settings -->',
    '',
  );
  return lines.join('\n');
}
