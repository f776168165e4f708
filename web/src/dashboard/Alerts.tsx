import type { Alert } from './model.js';
import { ago, clock } from '../shared/format.js';

interface Props {
  readonly alerts: readonly Alert[];
  readonly now: number;
  readonly onAcknowledge: (id: string) => void;
}

/**
 * Risk alerts the trader has not acknowledged, above everything else, until each one is
 * acknowledged. Acknowledged ones stay listed, muted, below.
 */
export function PendingAlerts({ alerts, now, onAcknowledge }: Props) {
  const pending = alerts.filter((a) => a.acknowledgedAt === null);
  if (pending.length === 0) return null;
  return (
    <section class="alerts-pending" role="alert" aria-live="assertive" data-testid="risk-alerts">
      <h2>
        ⚠ {pending.length} risk alert{pending.length === 1 ? '' : 's'} to acknowledge
      </h2>
      <ul>
        {pending.map((a) => (
          <li key={a.id} class={`alert ${a.level}`} data-alert-id={a.id}>
            <div class="what">
              <span class="level">{a.level.toUpperCase()}</span>
              <span class="account">{a.account}</span>
              <span class="message">{a.message}</span>
            </div>
            <div class="when">
              {clock(a.ts)} · {ago(a.ts, now)}
              {a.late && <span class="tag">arrived while disconnected</span>}
            </div>
            <button type="button" class="ack" onClick={() => onAcknowledge(a.id)}>
              Acknowledge
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function AlertHistory({ alerts }: { readonly alerts: readonly Alert[] }) {
  const done = alerts.filter((a) => a.acknowledgedAt !== null).slice(0, 20);
  return (
    <section class="card alert-history" data-testid="alert-history">
      <header>
        <h2>Risk alerts</h2>
        <span class="muted">{done.length === 0 ? 'none acknowledged yet' : 'acknowledged'}</span>
      </header>
      <ol class="feed">
        {done.map((a) => (
          <li key={a.id} class={`alert-done ${a.level}`}>
            <time>{clock(a.ts)}</time>
            <span class="level">{a.level.toUpperCase()}</span>
            <span class="account">{a.account}</span>
            <span class="reason">{a.message}</span>
            <span class="muted">ack {clock(a.acknowledgedAt ?? 0)}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
