/**
 * A FIFO with O(1) push and shift over slots [head, tail) of one array, made for queues that
 * fill and drain every event-loop turn (a connection's outbound lanes, the hub's flush list):
 * a drained small queue keeps its array and reuses the slots, so steady traffic allocates
 * nothing per item. An empty queue that never held anything has no array of its own, the
 * array is compacted once the consumed head is large, and one larger than `keepSlots` is let
 * go once drained.
 */

/** What an empty FIFO holds until its first item. Never written. */
const NONE: never[] = [];
/** Compact once this many consumed slots sit ahead of the queue, if they are most of it. */
const COMPACT_AFTER = 1024;

export class Fifo<T> {
  private items: (T | undefined)[] = NONE;
  private head = 0;
  private tail = 0;

  /** @param keepSlots a drained FIFO keeps an array this small for its next items (0: it
   * lets go of its array whenever it drains). */
  constructor(private readonly keepSlots = 16) {}

  get length(): number {
    return this.tail - this.head;
  }

  push(item: T): void {
    if (this.items === NONE) this.items = [];
    this.items[this.tail++] = item; // overwrites a drained slot, or appends
  }

  peek(): T | undefined {
    return this.head < this.tail ? this.items[this.head] : undefined;
  }

  shift(): T | undefined {
    if (this.head === this.tail) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.tail) {
      this.head = this.tail = 0;
      if (this.items.length > this.keepSlots) this.items = NONE;
    } else if (this.head > COMPACT_AFTER && this.head * 2 > this.tail) {
      this.items = this.items.slice(this.head, this.tail);
      this.tail -= this.head;
      this.head = 0;
    }
    return item;
  }

  /** Removes the items that match, keeping the others in order; returns the removed. */
  remove(match: (item: T) => boolean): T[] {
    const kept: T[] = [];
    const removed: T[] = [];
    for (const item of this.take()) (match(item) ? removed : kept).push(item);
    this.items = kept.length === 0 ? NONE : kept;
    this.tail = kept.length;
    return removed;
  }

  /** Empties the FIFO; returns what it held, in order. */
  clear(): T[] {
    const rest = this.take();
    this.items = NONE;
    this.tail = 0;
    return rest;
  }

  /** The queued items, in order; the FIFO is left at head 0. */
  private take(): T[] {
    const items = this.items.slice(this.head, this.tail) as T[];
    this.head = 0;
    return items;
  }
}
