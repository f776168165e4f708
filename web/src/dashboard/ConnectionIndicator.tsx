import type { ConnectionView } from './model.js';
import { ago } from '../shared/format.js';

interface Props {
  readonly connection: ConnectionView;
  readonly lastUpdate: number | null;
  readonly now: number;
  readonly online: boolean;
  readonly onRetry: () => void;
}

/**
 * The one place a trader looks to know whether the screen is live. It never says Live unless a
 * server has welcomed this page and is still heard from (the SDK's `connected`).
 */
export function ConnectionIndicator({ connection, lastUpdate, now, online, onRetry }: Props) {
  const { label, tone, detail } = describe(connection, now, online);
  return (
    <div class={`indicator ${tone}`} data-testid="connection" data-state={connection.state}>
      <span class="dot" aria-hidden="true" />
      <span class="label" role="status" aria-live="polite">
        {label}
      </span>
      {detail !== null && <span class="detail">{detail}</span>}
      <span class="last-update" data-testid="last-update">
        {lastUpdate === null ? 'no data yet' : `last update ${ago(lastUpdate, now)}`}
      </span>
      {connection.state === 'reconnecting' && online && (
        <button type="button" class="link" onClick={onRetry}>
          Try now
        </button>
      )}
    </div>
  );
}

function describe(
  c: ConnectionView,
  now: number,
  online: boolean,
): { label: string; tone: 'good' | 'warn' | 'bad'; detail: string | null } {
  switch (c.state) {
    case 'connected':
      return { label: 'Live', tone: 'good', detail: c.server ? `via ${c.server}` : null };
    case 'connecting':
      return { label: 'Connecting…', tone: 'warn', detail: null };
    case 'stale':
      return online
        ? { label: 'No signal', tone: 'warn', detail: 'server silent: checking the connection' }
        : { label: 'Offline', tone: 'bad', detail: 'this device has no network' };
    case 'reconnecting': {
      if (!online) return { label: 'Offline', tone: 'bad', detail: 'waiting for the network' };
      const label =
        c.retryAt === null
          ? 'Reconnecting (trying now)'
          : `Reconnecting (next try in ${Math.max(0, Math.ceil((c.retryAt - now) / 1000))} s)`;
      return { label, tone: 'bad', detail: c.problem };
    }
    case 'closed':
      return { label: 'Offline', tone: 'bad', detail: c.problem };
  }
}
