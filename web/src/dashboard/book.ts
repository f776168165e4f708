/**
 * The positions of one account as the page draws them. Updates arrive far faster than a
 * screen shows them (300 positions at 10/s each is 3,000 a second), so the book takes them in
 * coalesced, one batch per animation frame (StoreBatcher), and tells only the rows whose value
 * changed; the table itself redraws only when a row comes or goes (docs/web.md#under-a-busy-book).
 */
import type { StoreBatch } from '../../../src/client/index.js';

/** A position as the trading engine publishes it (fields it lacks show as —). */
export interface PositionData {
  symbol?: string;
  side?: string;
  size?: number;
  entry_price?: number;
  price?: number;
  pnl?: number;
  pnl_pct?: number;
}

export interface PositionRow {
  readonly key: string;
  readonly data: PositionData;
  /** Which way the price moved on the last update; null after a snapshot. */
  readonly move: 'up' | 'down' | null;
  /** The seq of the last change: a new one replays the price highlight. */
  readonly seq: number;
}

type Listener = () => void;

export class PositionBook {
  readonly rows = new Map<string, PositionRow>();
  /** The keys in display order (by symbol); a new array whenever a row comes or goes. */
  keys: readonly string[] = [];
  private readonly rowListeners = new Map<string, Listener>();
  private readonly frameListeners = new Set<Listener>();

  /**
   * Applies one frame's batch; `entries` is the store's current content (read after a
   * snapshot). Returns true when rows came or went (the table must redraw).
   */
  apply(batch: StoreBatch<PositionData>, entries: ReadonlyMap<string, PositionData>): boolean {
    let membership = false;
    if (batch.replaced) {
      this.rows.clear();
      for (const [key, data] of entries)
        this.rows.set(key, { key, data, move: null, seq: batch.seq });
      membership = true;
    } else {
      for (const [key, { value }] of batch.changes) {
        const row = this.rows.get(key);
        if (value === undefined) {
          if (this.rows.delete(key)) membership = true;
          continue;
        }
        if (row === undefined) membership = true;
        this.rows.set(key, { key, data: value, move: moveOf(row, value), seq: batch.seq });
      }
    }
    if (membership) this.keys = [...this.rows.keys()].sort((a, b) => a.localeCompare(b));
    const touched = batch.replaced ? this.rowListeners.keys() : batch.changes.keys();
    for (const key of touched) this.rowListeners.get(key)?.();
    for (const listener of this.frameListeners) listener();
    return membership;
  }

  /** The row drawn for `key` is told when its value changes; returns the unsubscribe. */
  watchRow(key: string, listener: Listener): () => void {
    this.rowListeners.set(key, listener);
    return () => {
      if (this.rowListeners.get(key) === listener) this.rowListeners.delete(key);
    };
  }

  /** Told after every applied batch (the account total). */
  watchFrame(listener: Listener): () => void {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  /** Unrealised P&L of the account. */
  total(): number {
    let sum = 0;
    for (const row of this.rows.values()) sum += row.data.pnl ?? 0;
    return sum;
  }
}

function moveOf(row: PositionRow | undefined, value: PositionData): PositionRow['move'] {
  const before = row?.data.price;
  const after = value.price;
  if (before === undefined || after === undefined || before === after) return row?.move ?? null;
  return after > before ? 'up' : 'down';
}
