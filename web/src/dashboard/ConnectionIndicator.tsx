import type { ConnectionView } from './model.js';
import { ago } from '../shared/format.js';

interface Props {
  readonly connection: ConnectionView;
  /** Channels still resubscribing or recovering while connected. */
  readonly catchingUp: readonly string[];
  readonly retryAt: number | null;
  readonly lastUpdate: number | null;
  readonly now: number;
  readonly online: boolean;
  readonly onRetry: () => void;
}

/**
 * The one place a trader looks to know whether the screen is live. It says Live only while a
 * server has welcomed this page, is still heard from (the SDK's `connected`) and every channel
 * is live again. Only the state word is announced to screen readers, not the countdown. On a
 * network that blocks WebSockets the detail says the data comes by HTTP streaming: still live,
 * and support knows why the connection looks different (docs/web.md).
 */
export function ConnectionIndicator(props: Props) {
  const { connection, lastUpdate, now, online, onRetry } = props;
  const { label, tone, detail, state } = describe(props);
  return (
    <div
      class={`indicator ${tone}`}
      data-testid="connection"
      data-state={state}
      data-transport={connection.transport ?? 'none'}
    >
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

type Tone = 'good' | 'warn' | 'bad';

function describe(p: Props): { label: string; tone: Tone; detail: string | null; state: string } {
  const c = p.connection;
  switch (c.state) {
    case 'connected':
      if (p.catchingUp.length > 0)
        return {
          label: 'Catching up',
          tone: 'warn',
          detail: `resubscribing ${p.catchingUp.length} channel${p.catchingUp.length === 1 ? '' : 's'}`,
          state: 'catching-up',
        };
      return { label: 'Live', tone: 'good', detail: liveDetail(c), state: 'connected' };
    case 'connecting':
      return { label: 'Connecting…', tone: 'warn', detail: null, state: c.state };
    case 'stale':
      return p.online
        ? {
            label: 'No signal',
            tone: 'warn',
            detail: 'the server is silent: checking the connection',
            state: c.state,
          }
        : { label: 'Offline', tone: 'bad', detail: 'this device has no network', state: c.state };
    case 'reconnecting': {
      if (!p.online)
        return { label: 'Offline', tone: 'bad', detail: 'waiting for the network', state: c.state };
      const next =
        p.retryAt === null
          ? 'trying now'
          : `next try in ${Math.max(0, Math.ceil((p.retryAt - p.now) / 1000))} s`;
      return {
        label: 'Reconnecting',
        tone: 'bad',
        detail: c.problem ? `${next} · ${c.problem}` : next,
        state: c.state,
      };
    }
    case 'closed':
      return { label: 'Offline', tone: 'bad', detail: c.problem, state: c.state };
  }
}

/** Which server answers, and how when it is not a WebSocket. */
function liveDetail(c: ConnectionView): string | null {
  const streaming = c.transport === 'sse';
  if (c.server) return streaming ? `via ${c.server} (HTTP streaming)` : `via ${c.server}`;
  return streaming ? 'via HTTP streaming' : null;
}
