/**
 * The table of one account's positions. A row subscribes to its own key in the book and
 * redraws alone when its value changes; the price highlight is replayed on the cell with the
 * Web Animations API (an opacity fade), not by re-creating the cell. Beyond VIRTUAL_FROM rows
 * only the rows in view (and a few around them) are drawn, in a scrolling box of fixed-height
 * rows (docs/web.md#under-a-busy-book).
 */
import { memo } from '../shared/memo.js';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { PositionBook, PositionData } from './book.js';
import { fixed, quantity, signedMoney } from '../shared/format.js';

/** Books longer than this draw only the rows in view: at 100 rows × 10/s, drawing them all
 * held the page near 45 fps, the rows in view alone at 60 (docs/performance.md). */
export const VIRTUAL_FROM = 50;
/** The height of a row in a virtual book (styles.css `.virtual tr`), in px. */
const ROW_HEIGHT = 30;
/** Rows drawn beyond each edge of the view, so a scroll does not show blanks. */
const OVERSCAN = 10;

interface Props {
  readonly book: PositionBook;
  readonly keys: readonly string[];
}

export function PositionRows({ book, keys }: Props) {
  const virtual = keys.length > VIRTUAL_FROM;
  const box = useRef<HTMLDivElement>(null);
  const [view, setView] = useState({ top: 0, height: 600 });
  useLayoutEffect(() => {
    const el = box.current;
    if (!virtual || el === null) return;
    const measure = () => setView({ top: el.scrollTop, height: el.clientHeight });
    measure();
    el.addEventListener('scroll', measure, { passive: true });
    addEventListener('resize', measure);
    return () => {
      el.removeEventListener('scroll', measure);
      removeEventListener('resize', measure);
    };
  }, [virtual]);
  const first = virtual ? Math.max(0, Math.floor(view.top / ROW_HEIGHT) - OVERSCAN) : 0;
  const last = virtual
    ? Math.min(keys.length, Math.ceil((view.top + view.height) / ROW_HEIGHT) + OVERSCAN)
    : keys.length;
  return (
    <div class={`table-wrap ${virtual ? 'virtual' : ''}`} ref={box}>
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
          {first > 0 && <tr class="spacer" style={{ height: `${first * ROW_HEIGHT}px` }} />}
          {keys.slice(first, last).map((key) => (
            <Row key={key} book={book} rowKey={key} />
          ))}
          {last < keys.length && (
            <tr class="spacer" style={{ height: `${(keys.length - last) * ROW_HEIGHT}px` }} />
          )}
        </tbody>
      </table>
    </div>
  );
}

const Row = memo(function Row({ book, rowKey }: { book: PositionBook; rowKey: string }) {
  const [row, setRow] = useState(() => book.rows.get(rowKey));
  useLayoutEffect(() => {
    const read = () => setRow(book.rows.get(rowKey));
    const stop = book.watchRow(rowKey, read);
    read(); // a batch may have landed between the first drawing and this subscription
    return stop;
  }, [book, rowKey]);
  const price = useRef<HTMLTableCellElement>(null);
  const pnl = useRef<HTMLTableCellElement>(null);
  const shownSeq = useRef(row?.seq);
  useLayoutEffect(() => {
    // Only a change seen while the row is on screen flashes, not its first drawing.
    if (row === undefined || row.seq === shownSeq.current) return;
    shownSeq.current = row.seq;
    if (row.move !== null) for (const cell of [price.current, pnl.current]) flash(cell);
  }, [row]);
  if (row === undefined) return null;
  const d: PositionData = row.data;
  const moved = row.move === null ? '' : `flash-${row.move}`;
  return (
    <tr data-symbol={row.key}>
      <td class="symbol">{d.symbol ?? row.key}</td>
      <td class={`side ${d.side ?? ''}`}>{d.side ?? '—'}</td>
      <td class="num hide-phone">{d.size === undefined ? '—' : quantity(d.size)}</td>
      <td class={`num price ${moved}`} ref={price} data-testid="price">
        {d.price === undefined ? '—' : priceText(d.price)}
        {row.move !== null && (
          <span class="arrow" aria-hidden="true">
            {row.move === 'up' ? '▲' : '▼'}
          </span>
        )}
      </td>
      <td class={`num ${tone(d.pnl ?? 0)} ${moved}`} ref={pnl}>
        {d.pnl === undefined ? '—' : signedMoney(d.pnl)}
      </td>
      <td class={`num hide-narrow ${tone(d.pnl_pct ?? 0)}`}>
        {d.pnl_pct === undefined ? '—' : `${fixed(d.pnl_pct, 2)} %`}
      </td>
    </tr>
  );
});

/**
 * The highlight is the opacity of the cell's ::after layer (its colour comes from the
 * flash-up/flash-down class, styles.css): an opacity animation runs off the main thread, where
 * animating the background of hundreds of cells repainted them every frame (docs/web.md).
 */
const FADE: Keyframe[] = [{ opacity: 1 }, { opacity: 0 }];
const FADE_OPTIONS: KeyframeAnimationOptions = {
  duration: 900,
  easing: 'ease-out',
  pseudoElement: '::after',
};
const flashes = new WeakMap<Element, Animation>();

/** Replays the highlight on a cell: its one animation restarts, no element is re-created. */
function flash(cell: HTMLElement | null): void {
  if (cell === null) return;
  const running = flashes.get(cell);
  if (running === undefined) flashes.set(cell, cell.animate(FADE, FADE_OPTIONS));
  else {
    running.currentTime = 0;
    running.play();
  }
}

function priceText(price: number): string {
  const decimals = Math.min(5, Math.max(2, (String(price).split('.')[1] ?? '').length));
  return fixed(price, decimals);
}

/** The colour class of a signed figure. */
export function tone(n: number): string {
  return n > 0 ? 'up' : n < 0 ? 'down' : '';
}
