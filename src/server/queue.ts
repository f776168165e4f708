/**
 * A connection's outbound queue: bounded by count and bytes, alerts ahead of everything
 * else, state updates conflated per key. It never drops silently: when a bound is hit the
 * caller closes the connection with 4008 and the client recovers what it missed on
 * reconnect, which is safer for a trader than a dashboard with holes in it.
 */
import { Fifo } from './fifo.js';
import type { Frame } from './frame.js';

interface Item {
  frame: Frame;
  /** When the first version of this item was queued; conflation keeps it, so a client that
   * never drains is still caught by the broadcast timeout. */
  readonly queuedAt: number;
  /** False for a resume's replay and snapshot: bounded by the history settings and the
   * user's replay budget already, and a gap as large as the queue must not close the client
   * on every reconnect. */
  readonly counted: boolean;
}

export type EnqueueResult = 'queued' | 'conflated' | 'overflow';

export class OutboundQueue {
  /** The two lanes. Live events reach a client that keeps up without queueing (hub.ts), so
   * frames wait here only behind a backlog: a drained lane lets go of its array, and an idle
   * connection holds none. */
  private readonly priority = new Fifo<Item>(0);
  private readonly normal = new Fifo<Item>(0);
  /** Queued state updates by conflation key; created on the first one. */
  private byKey: Map<string, Item> | null = null;
  private queuedBytes = 0;
  /** What the bounds apply to: every item but replays. */
  private countedItems = 0;
  private countedBytes = 0;

  constructor(
    private readonly maxItems: number,
    private readonly maxBytes: number,
  ) {}

  get depth(): number {
    return this.priority.length + this.normal.length;
  }

  get bytes(): number {
    return this.queuedBytes;
  }

  /** When the oldest queued item was queued (ms), or null when empty. */
  oldestQueuedAt(): number | null {
    const a = this.priority.peek()?.queuedAt;
    const b = this.normal.peek()?.queuedAt;
    if (a === undefined) return b ?? null;
    if (b === undefined) return a;
    return Math.min(a, b);
  }

  /** Queues a frame; `replay` frames (a resume's snapshot or replay) are exempt from the
   * bounds but still count in depth and bytes. */
  enqueue(frame: Frame, now: number, replay = false): EnqueueResult {
    if (frame.conflateKey !== null) {
      const queued = this.byKey?.get(frame.conflateKey);
      if (queued) {
        // Same key still waiting: replace its value in place, keep its place in line.
        this.queuedBytes += frame.size - queued.frame.size;
        this.countedBytes += frame.size - queued.frame.size;
        queued.frame.release();
        frame.retain();
        queued.frame = frame;
        return this.countedBytes > this.maxBytes ? 'overflow' : 'conflated';
      }
    }
    if (
      !replay &&
      (this.countedItems >= this.maxItems || this.countedBytes + frame.size > this.maxBytes)
    ) {
      return 'overflow';
    }
    const item: Item = { frame, queuedAt: now, counted: !replay };
    frame.retain();
    this.queuedBytes += frame.size;
    if (!replay) {
      this.countedItems++;
      this.countedBytes += frame.size;
    }
    if (frame.lane === 'priority') {
      this.priority.push(item);
    } else {
      this.normal.push(item);
      if (frame.conflateKey !== null) (this.byKey ??= new Map()).set(frame.conflateKey, item);
    }
    return 'queued';
  }

  /** Takes the next frame to write: priority lane first. The caller releases it. */
  shift(): Frame | undefined {
    const item = this.priority.shift() ?? this.normal.shift();
    if (!item) return undefined;
    this.forget(item);
    return item.frame;
  }

  private forget(item: Item): void {
    this.queuedBytes -= item.frame.size;
    if (item.counted) {
      this.countedItems--;
      this.countedBytes -= item.frame.size;
    }
    const key = item.frame.conflateKey;
    if (key !== null && this.byKey?.get(key) === item) {
      this.byKey.delete(key);
      if (this.byKey.size === 0) this.byKey = null;
    }
  }

  private dropWhere(match: (item: Item) => boolean): number {
    const dropped = [...this.priority.remove(match), ...this.normal.remove(match)];
    for (const item of dropped) {
      this.forget(item);
      item.frame.release();
    }
    return dropped.length;
  }

  /**
   * Drops what is still queued for a channel (unsubscribe, resubscribe). Without this a
   * queued state value could be conflated with a newer one ahead of the new snapshot, and
   * the client would apply the older snapshot last.
   */
  dropChannel(channel: string): number {
    return this.dropWhere((item) => item.frame.channel === channel);
  }

  /** Operator queue flush: drops every channel's events and snapshots, keeps replies and
   * pings (dropping a ping would get the client closed for not answering it). */
  dropChannelFrames(): number {
    return this.dropWhere((item) => item.frame.channel !== null);
  }

  /** Empties the queue (operator flush, close); returns how many frames were dropped. */
  clear(): number {
    const dropped = [...this.priority.clear(), ...this.normal.clear()];
    for (const item of dropped) item.frame.release();
    this.byKey = null;
    this.queuedBytes = this.countedItems = this.countedBytes = 0;
    return dropped.length;
  }
}
