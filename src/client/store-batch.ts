/**
 * Coalesces the changes of a keyed store (keyed-store.ts) between two reads: a view that draws
 * at most once per animation frame takes one batch per frame, with the latest value of each
 * key, instead of one call per event (docs/client.md#drawing-a-busy-store-once-per-frame).
 */
import type { StoreChange } from './keyed-store.js';

/** One key's change over a batch: its value now (undefined: deleted) and before the batch. */
export interface KeyChange<T> {
  readonly value: T | undefined;
  readonly before: T | undefined;
}

export interface StoreBatch<T> {
  /** A snapshot replaced the content during the batch: every key is to be read anew. */
  readonly replaced: boolean;
  /** The keys changed since the last batch (or since the snapshot, when `replaced`). */
  readonly changes: ReadonlyMap<string, KeyChange<T>>;
  /** The seq of the last change taken in. */
  readonly seq: number;
}

export class StoreBatcher<T> {
  private replaced = false;
  private changes = new Map<string, KeyChange<T>>();
  private seq = -1;

  /** True while changes wait to be taken. */
  get pending(): boolean {
    return this.seq >= 0;
  }

  /** Takes in one change of the store's `change` event. */
  add(change: StoreChange<T>): void {
    this.seq = change.seq;
    if (change.kind === 'snapshot') {
      // The snapshot covers every key: what changed before it no longer matters.
      this.replaced = true;
      this.changes.clear();
      return;
    }
    const earlier = this.changes.get(change.key);
    // A delete is kept as such (value undefined) unless a later set brings the key back.
    this.changes.set(change.key, {
      value: change.kind === 'set' ? change.value : undefined,
      before: earlier === undefined ? change.previous : earlier.before,
    });
  }

  /** The changes since the last take, or null when there were none. */
  take(): StoreBatch<T> | null {
    if (!this.pending) return null;
    const batch: StoreBatch<T> = { replaced: this.replaced, changes: this.changes, seq: this.seq };
    this.replaced = false;
    this.changes = new Map();
    this.seq = -1;
    return batch;
  }
}
