import { memo } from '../shared/memo.js';
import { useEffect, useState } from 'preact/hooks';
import type { PositionBook } from './book.js';
import type { AccountView } from './model.js';
import { PositionRows, tone } from './Rows.js';
import { ago, signedMoney } from '../shared/format.js';

/**
 * Positions of one account. This component redraws once a second (the "N s ago") and when rows
 * come or go; a value that changes redraws only its row (Rows.tsx), and a long book draws only
 * the rows in view (docs/web.md#under-a-busy-book).
 */
export function Positions({ view, now }: { readonly view: AccountView; readonly now: number }) {
  const count = view.book.keys.length;
  // Stale: the subscription is not live, or the connection is not confirmed live (nothing
  // heard for longer than a ping is due): the numbers may be out of date, so they are greyed.
  const live = view.source !== null && !view.source.stale;
  const asOf = view.source?.asOf ?? view.lastUpdate;
  const problems = [
    view.positions.problem && `Positions: ${view.positions.problem}`,
    view.risk.problem && `Risk alerts: ${view.risk.problem}`,
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
  return (
    <section
      class={`card positions ${live ? '' : 'not-live'}`}
      data-testid={`positions-${view.account}`}
      data-positions-state={view.positions.state}
      data-risk-state={view.risk.state}
      data-stale={String(!live)}
      data-rows={count}
    >
      <header>
        <h2>{view.account}</h2>
        <span class="muted updated">
          {live
            ? asOf === null
              ? ''
              : `updated ${ago(asOf, now)}`
            : view.positions.state === 'failed'
              ? 'not available'
              : view.ready
                ? `not live: as of ${ago(asOf ?? now, now)}`
                : ''}
        </span>
        {view.ready && <Total book={view.book} />}
      </header>
      {problems.map((p) => (
        <p class="problem" role="alert" key={p}>
          {p}
        </p>
      ))}
      {!view.ready && view.positions.problem === null && <p class="muted">Loading positions…</p>}
      {view.ready && count === 0 && <p class="muted">No open positions.</p>}
      {count > 0 && <PositionRows book={view.book} keys={view.book.keys} />}
    </section>
  );
}

/** The account's P&L, redrawn after each frame's batch without redrawing the table. */
const Total = memo(function Total({ book }: { readonly book: PositionBook }) {
  const [total, setTotal] = useState(() => book.total());
  useEffect(() => book.watchFrame(() => setTotal(book.total())), [book]);
  return (
    <span class={`total ${tone(total)}`} title="Unrealised P&L of the account">
      {signedMoney(total)}
    </span>
  );
});
