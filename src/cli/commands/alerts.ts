/**
 * `archon-ws alerts`: the risk alerts waiting for acknowledgement (an addition to RB-003,
 * docs/protocol.md#acknowledged-risk-alerts): how old each is and whose dashboards it reached.
 */
import type { Command } from 'commander';
import { ALERT_STATES, type AlertState } from '../../protocol/admin.js';
import { ALERT_UNACKED_ALERT_SECONDS } from '../../protocol/index.js';
import { admin, CliError, Exit, resolveTarget, type AdminRead, type Target } from '../api.js';
import { action, targetOptions, type TargetOptions } from '../common.js';
import { out, table, withProgress } from '../format.js';

export type Alerts = AdminRead<'/alerts'>;
export type AlertRead = Alerts['alerts'][number];

/**
 * GET /alerts?state=…, read through its schema (exit 5 when it does not fit). A 404 names
 * both causes: a gateway of a release before acknowledged alerts, or the admin API off.
 */
export async function fetchAlerts(target: Target, state: AlertState): Promise<Alerts> {
  try {
    return await admin(target, 'GET', '/alerts', { query: `?state=${state}` });
  } catch (err) {
    if (err instanceof CliError && err.httpStatus === 404)
      throw new CliError(
        `GET /api/v1/admin/alerts not found at ${target.url} (404): the gateway predates acknowledged risk alerts, or its admin API is off (ARCHON_ADMIN_TOKENS)`,
        err.exitCode,
        404,
      );
    throw err;
  }
}

/** An age for a person, in seconds while they matter (the alert fires past 120 s): "45 s",
 * "301 s", then "12 min", "2 h". */
export function age(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 600) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

/** Whose dashboards an alert reached: "trader-7 ×3, risk-desk ×1", or "nobody". */
export function deliveredTo(deliveries: Record<string, number>): string {
  const users = Object.entries(deliveries).sort((a, b) => b[1] - a[1]);
  return users.length === 0 ? 'nobody' : users.map(([user, n]) => `${user} ×${n}`).join(', ');
}

/** The alert's `message` (what the risk system said), else its data as JSON; one line. */
function message(data: unknown): string {
  const said = (data as { message?: unknown } | null | undefined)?.message;
  const text = typeof said === 'string' ? said : JSON.stringify(data);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

interface Options extends TargetOptions {
  state: string;
}

export function registerAlerts(program: Command): void {
  targetOptions(
    program
      .command('alerts')
      .description(
        'risk alerts waiting for acknowledgement: age, and whose dashboards they reached',
      )
      .option('--state <state>', `which alerts to list: ${ALERT_STATES.join(', ')}`, 'unacked'),
  ).action(
    action(async (options: Options) => {
      if (!(ALERT_STATES as readonly string[]).includes(options.state))
        throw new CliError(
          `--state must be one of ${ALERT_STATES.join(', ')} (got ${JSON.stringify(options.state)})`,
          Exit.usage,
        );
      const state = options.state as AlertState;
      const target = resolveTarget(options);
      const json = options.json === true;
      const a = await withProgress(`asking ${target.url}`, json, fetchAlerts(target, state));
      if (json) {
        out(JSON.stringify(a, null, 2));
        return;
      }
      const oldest = a.oldest_unacked_seconds;
      out(
        a.unacked === 0 || oldest === null
          ? 'no risk alert waits for acknowledgement'
          : `${a.unacked} risk alert${a.unacked === 1 ? '' : 's'} waiting for acknowledgement, the oldest for ${age(oldest)}${oldest > ALERT_UNACKED_ALERT_SECONDS ? ` (over ${ALERT_UNACKED_ALERT_SECONDS} s: ArchonRiskAlertUnacknowledged)` : ''}`,
      );
      if (a.alerts.length === 0) return;
      out('');
      out(
        table(
          ['ACCOUNT', 'SEQ', 'AGE', 'STATE', 'ACKED BY', 'DELIVERED TO', 'MESSAGE'],
          a.alerts.map((x) => [
            x.account,
            x.seq,
            age(x.age_seconds),
            x.state,
            x.acked_by ?? '-',
            deliveredTo(x.deliveries),
            message(x.data),
          ]),
        ),
      );
    }),
  );
}
