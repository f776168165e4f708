import type { ChannelView, FeedItem } from './model.js';
import { clock } from '../shared/format.js';

/** The signals feed, newest first; missed events are shown where they were missed. */
interface Props {
  readonly feed: readonly FeedItem[];
  readonly channel: ChannelView;
}

export function Signals({ feed, channel }: Props) {
  const live = channel.state === 'live';
  return (
    <section
      class={`card signals ${live ? '' : 'not-live'}`}
      data-testid="signals"
      data-state={channel.state}
    >
      <header>
        <h2>Signals</h2>
        <span class="muted">
          {channel.state === 'failed'
            ? 'not available'
            : !live
              ? 'not live'
              : feed.length === 0
                ? 'waiting for the first signal'
                : ''}
        </span>
      </header>
      {channel.problem !== null && (
        <p class="problem" role="alert">
          {channel.problem}
        </p>
      )}
      <ol class="feed">
        {feed.map((item) =>
          item.kind === 'gap' ? (
            <li key={item.id} class="gap" role="note">
              ⚠ {item.text}
            </li>
          ) : (
            <SignalItem key={item.id} item={item} />
          ),
        )}
      </ol>
    </section>
  );
}

function SignalItem({ item }: { readonly item: Extract<FeedItem, { kind: 'signal' }> }) {
  const d = item.data;
  const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');
  const action = text(d.action).toLowerCase();
  const strength = typeof d.strength === 'number' ? `${Math.round(d.strength * 100)} %` : '';
  return (
    <li class="signal">
      <time>{clock(item.ts)}</time>
      <span class={`action ${action}`}>{action.toUpperCase() || 'SIGNAL'}</span>
      <strong>{text(d.symbol)}</strong>
      {strength && <span class="strength">{strength}</span>}
      {d.strategy !== undefined && <span class="strategy">{text(d.strategy)}</span>}
      {item.late && <span class="tag">received late</span>}
      {d.reason !== undefined && <span class="reason">{text(d.reason)}</span>}
    </li>
  );
}
