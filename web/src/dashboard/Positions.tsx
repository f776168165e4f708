import type { AccountView, PositionData, PositionRow } from './model.js';
import { ago, fixed, quantity, signedMoney } from '../shared/format.js';

/** Positions of one account: one row per symbol, highlighted when its price moves. */
export function Positions({ view, now }: { readonly view: AccountView; readonly now: number }) {
  const rows = [...view.rows.values()].sort((a, b) => a.key.localeCompare(b.key));
  const total = rows.reduce((n, r) => n + (r.data.pnl ?? 0), 0);
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
        {view.ready && (
          <span class={`total ${tone(total)}`} title="Unrealised P&L of the account">
            {signedMoney(total)}
          </span>
        )}
      </header>
      {problems.map((p) => (
        <p class="problem" role="alert" key={p}>
          {p}
        </p>
      ))}
      {!view.ready && view.positions.problem === null && <p class="muted">Loading positions…</p>}
      {view.ready && rows.length === 0 && <p class="muted">No open positions.</p>}
      {rows.length > 0 && (
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>Symbol</th>
                <th>Side</th>
                <th class="num hide-phone">Size</th>
                <th class="num">Price</th>
                <th class="num">P&amp;L</th>
                <th class="num hide-narrow">P&amp;L %</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <Row key={row.key} row={row} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function Row({ row }: { readonly row: PositionRow }) {
  const d: PositionData = row.data;
  const flash = row.move === null ? '' : `flash-${row.move}`;
  return (
    <tr data-symbol={row.key}>
      <td class="symbol">{d.symbol ?? row.key}</td>
      <td class={`side ${d.side ?? ''}`}>{d.side ?? '—'}</td>
      <td class="num hide-phone">{d.size === undefined ? '—' : quantity(d.size)}</td>
      {/* keyed by seq: each update re-mounts the cell and replays the highlight */}
      <td class={`num price ${flash}`} key={`p${row.seq}`} data-testid="price">
        {d.price === undefined ? '—' : priceText(d.price)}
        {row.move !== null && (
          <span class="arrow" aria-hidden="true">
            {row.move === 'up' ? '▲' : '▼'}
          </span>
        )}
      </td>
      <td class={`num ${tone(d.pnl ?? 0)} ${flash}`} key={`l${row.seq}`}>
        {d.pnl === undefined ? '—' : signedMoney(d.pnl)}
      </td>
      <td class={`num hide-narrow ${tone(d.pnl_pct ?? 0)}`}>
        {d.pnl_pct === undefined ? '—' : `${fixed(d.pnl_pct, 2)} %`}
      </td>
    </tr>
  );
}

function priceText(price: number): string {
  const decimals = Math.min(5, Math.max(2, (String(price).split('.')[1] ?? '').length));
  return fixed(price, decimals);
}

function tone(n: number): string {
  return n > 0 ? 'up' : n < 0 ? 'down' : '';
}
