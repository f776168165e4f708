import type { AckAttempt, Alert } from './model.js';
import { ago, clock } from '../shared/format.js';

interface Props {
  readonly pending: readonly Alert[];
  readonly attempts: ReadonlyMap<string, AckAttempt>;
  readonly now: number;
  readonly onAcknowledge: (id: string) => void;
}

/**
 * Risk alerts nobody has acknowledged, above everything else, until the gateway says someone
 * did (here, on another device, or another user of the account); also the page's own
 * warnings that alerts may be missing. Screen readers hear the count when it changes, not the
 * ages that tick every second.
 */
export function PendingAlerts({ pending, attempts, now, onAcknowledge }: Props) {
  if (pending.length === 0) return null;
  return (
    <section class="alerts-pending" aria-labelledby="pending-title" data-testid="risk-alerts">
      <h2 id="pending-title" aria-live="assertive">
        ⚠ {pending.length} risk alert{pending.length === 1 ? '' : 's'} to acknowledge
      </h2>
      <ul>
        {pending.map((a) => {
          const attempt = attempts.get(a.id);
          const sending = attempt?.kind === 'sending';
          return (
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
              {attempt?.kind === 'failed' && (
                <p class="ack-note" role="status" data-testid="ack-note">
                  {attempt.text}
                </p>
              )}
              <button
                type="button"
                class="ack"
                disabled={sending}
                onClick={() => onAcknowledge(a.id)}
              >
                {sending ? 'Acknowledging…' : 'Acknowledge'}
              </button>
            </li>
          );
        })}
      </ul>
    </section>
  );
}

/** Alerts that no longer wait: who acknowledged each and when, or that it expired. */
export function AlertHistory({ closed }: { readonly closed: readonly Alert[] }) {
  const done = closed.slice(0, 20);
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
            <Outcome alert={a} />
          </li>
        ))}
      </ol>
    </section>
  );
}

function Outcome({ alert }: { readonly alert: Alert }) {
  const closed = alert.closed;
  if (closed === null) return null;
  if (closed.kind === 'expired')
    return (
      <span class="muted" data-testid="outcome" title="The gateway no longer holds this alert">
        expired {clock(closed.at)}, not acknowledged
      </span>
    );
  if (closed.by === null)
    return (
      <span
        class="muted"
        data-testid="outcome"
        title="The gateway no longer lists it as waiting: acknowledged on another device, or expired"
      >
        no longer waiting ({clock(closed.at)})
      </span>
    );
  return (
    <span class="muted" data-testid="outcome">
      ack {clock(closed.at)} by {closed.by}
    </span>
  );
}
