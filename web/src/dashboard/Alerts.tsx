import type { Alert } from './model.js';
import { ago, clock } from '../shared/format.js';

interface Props {
  readonly pending: readonly Alert[];
  readonly now: number;
  readonly onAcknowledge: (id: string) => void;
}

/**
 * Risk alerts the trader has not acknowledged, above everything else, until each one is
 * acknowledged; also the page's own warnings that alerts may be missing. Screen readers hear
 * the count when it changes, not the ages that tick every second.
 */
export function PendingAlerts({ pending, now, onAcknowledge }: Props) {
  if (pending.length === 0) return null;
  return (
    <section class="alerts-pending" aria-labelledby="pending-title" data-testid="risk-alerts">
      <h2 id="pending-title" aria-live="assertive">
        ⚠ {pending.length} risk alert{pending.length === 1 ? '' : 's'} to acknowledge
      </h2>
      <ul>
        {pending.map((a) => (
          <li
            key={a.id}
            class={`alert ${a.level} ${a.missing ? 'missing' : ''}`}
            data-alert-id={a.id}
          >
            <div class="what">
              <span class="level">{a.missing ? 'MAY BE MISSING' : a.level.toUpperCase()}</span>
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

export function AlertHistory({ acknowledged }: { readonly acknowledged: readonly Alert[] }) {
  const done = acknowledged.slice(0, 20);
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
            <span class="level">{a.missing ? 'MAY BE MISSING' : a.level.toUpperCase()}</span>
            <span class="account">{a.account}</span>
            <span class="reason">{a.message}</span>
            <span class="muted">ack {clock(a.acknowledgedAt ?? 0)}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
