import { ALERT_UNACKED_ALERT_SECONDS, type AlertEntry } from '../../../src/client/index.js';
import type { WaitingAlerts } from './api.js';
import { duration, int } from '../shared/format.js';

/** The oldest alerts listed; the count says how many there are in all. */
const LISTED = 8;

/** An age in seconds while they matter (red past 120 s), then as `duration` gives it. */
function age(seconds: number): string {
  return seconds < 600 ? `${Math.round(seconds)} s` : duration(seconds);
}

/**
 * Risk alerts nobody has acknowledged (docs/protocol.md#acknowledged-risk-alerts): how many,
 * the age of the oldest (red past the threshold of ArchonRiskAlertUnacknowledged), and whose
 * dashboards each reached. An alert delivered to nobody means no page of its account is open.
 */
export function RiskAlerts({ waiting }: { readonly waiting: WaitingAlerts }) {
  if (waiting.kind !== 'read')
    return (
      <section class="card risk-alerts" data-testid="alerts-waiting" data-state={waiting.kind}>
        <header>
          <h2>Risk alerts waiting</h2>
        </header>
        <p class="muted">
          {waiting.kind === 'not-available'
            ? 'Not available: this gateway has no GET /api/v1/admin/alerts (a release before acknowledged risk alerts).'
            : `Could not be read: ${waiting.message}`}
        </p>
      </section>
    );
  const { unacked, oldest_unacked_seconds: oldest, alerts } = waiting.answer;
  const late = oldest !== null && oldest > ALERT_UNACKED_ALERT_SECONDS;
  const tone = late ? 'bad' : unacked > 0 ? 'warn' : 'good';
  return (
    <section
      class={`card risk-alerts ${tone}`}
      data-testid="alerts-waiting"
      data-state="read"
      data-tone={tone}
    >
      <header>
        <h2>Risk alerts waiting</h2>
        <span class="muted">alert past {duration(ALERT_UNACKED_ALERT_SECONDS)}</span>
      </header>
      <div class="summary">
        <span class="value" data-testid="alerts-count">
          {int(unacked)}
        </span>
        <span class={late ? 'down' : 'muted'} data-testid="alerts-oldest">
          {oldest === null
            ? 'none waits for acknowledgement'
            : `the oldest waiting for ${age(oldest)}`}
        </span>
      </div>
      {alerts.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Account</th>
                <th class="num">Seq</th>
                <th class="num">Age</th>
                <th>Delivered to</th>
              </tr>
            </thead>
            <tbody>
              {alerts.slice(0, LISTED).map((a) => (
                <tr key={`${a.channel}@${a.epoch}:${a.seq}`}>
                  <td>{a.account}</td>
                  <td class="num">{a.seq}</td>
                  <td class={`num ${a.age_seconds > ALERT_UNACKED_ALERT_SECONDS ? 'down' : ''}`}>
                    {age(a.age_seconds)}
                  </td>
                  <td>
                    <Deliveries alert={a} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {alerts.length > LISTED && (
            <p class="muted">and {int(alerts.length - LISTED)} more, newer</p>
          )}
        </div>
      )}
    </section>
  );
}

function Deliveries({ alert }: { readonly alert: AlertEntry }) {
  const users = Object.entries(alert.deliveries).sort((a, b) => b[1] - a[1]);
  if (users.length === 0)
    return <span class="down">nobody: no dashboard of {alert.account} is open</span>;
  return <span>{users.map(([user, n]) => `${user} ×${n}`).join(', ')}</span>;
}
