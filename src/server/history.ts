/** A channel's recent events, bounded by count and age, for resume with `since`. */
import type { StoredEvent } from '../protocol/index.js';

interface Entry {
  readonly event: StoredEvent;
  readonly at: number;
}

export class History {
  private entries: Entry[] = [];
  private head = 0;

  constructor(
    private readonly maxSize: number,
    private readonly ttlMs: number,
  ) {}

  append(event: StoredEvent, now: number): void {
    this.entries.push({ event, at: now });
    this.trim(now);
  }

  /** Oldest seq still held, or null when nothing is held. */
  firstSeq(now: number): number | null {
    this.trim(now);
    return this.entries[this.head]?.event.seq ?? null;
  }

  /** Events with seq > sinceSeq still held, oldest first. */
  since(sinceSeq: number, now: number): StoredEvent[] {
    this.trim(now);
    const out: StoredEvent[] = [];
    for (let i = this.head; i < this.entries.length; i++) {
      const entry = this.entries[i] as Entry;
      if (entry.event.seq > sinceSeq) out.push(entry.event);
    }
    return out;
  }

  get size(): number {
    return this.entries.length - this.head;
  }

  private trim(now: number): void {
    while (this.size > this.maxSize) this.head++;
    while (
      this.head < this.entries.length &&
      now - (this.entries[this.head] as Entry).at > this.ttlMs
    ) {
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
