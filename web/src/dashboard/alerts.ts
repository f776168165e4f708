/**
 * The trader's risk alerts, kept in this browser per user: a cache of what the gateway holds
 * (docs/protocol.md#acknowledged-risk-alerts), every alert received (waiting or no longer) and,
 * per `risk:<account>` channel, the position of the last one, so a reload resumes where the
 * page stopped and an alert published while it was closed is replayed.
 *
 * The gateway decides what waits: an alert stops waiting when an `acked` names it (anyone, any
 * device) or when the `unacked` list of its channel's epoch leaves it out; nothing here marks
 * an alert of the gateway acknowledged by itself. Waiting alerts are stored too, so a gateway
 * restart (a new epoch, whose history does not hold them) cannot make one disappear; only
 * closed ones are ever trimmed. Other tabs of the same user share the book.
 */
import type { Position } from '../../../src/client/index.js';

/** Why an alert no longer waits. */
export type Closed =
  | {
      readonly kind: 'acknowledged';
      readonly at: number;
      /** The user's `sub`; null when only the gateway's list said someone did (or it expired). */
      readonly by: string | null;
    }
  /** The gateway no longer holds it (`alert_unknown`): expired, trimmed, or of an epoch a
   * restart lost. Nobody acknowledged it. */
  | { readonly kind: 'expired'; readonly at: number };

export interface Alert {
  readonly id: string;
  readonly account: string;
  readonly channel: string;
  /** What an `ack` names; null for the page's own warnings (`missing`). */
  readonly epoch: string | null;
  readonly seq: number | null;
  readonly ts: number;
  readonly level: string;
  readonly message: string;
  /** Replayed after a reconnect, listed as waiting, or read from history: it happened while we
   * were away. */
  readonly late: boolean;
  /** A warning of the page itself (alerts may be missing), not an alert of the risk system:
   * the gateway does not know it, so it is acknowledged here only. */
  readonly missing: boolean;
  /** Null while it waits. */
  closed: Closed | null;
}

interface Stored {
  alerts: Alert[];
  resume: Record<string, Position>;
}

/** Closed alerts kept for the history list; waiting ones are never dropped. */
const KEEP_CLOSED = 200;

/** The id of an alert of the gateway: its channel, epoch and seq. */
export function alertId(channel: string, epoch: string, seq: number): string {
  return `${channel}@${epoch}:${seq}`;
}

export class AlertBook {
  /** Newest first. */
  alerts: Alert[] = [];
  private resume: Record<string, Position> = {};

  /** `key`: the storage key of this user; `accounts`: what this session may show. */
  constructor(
    private readonly key: string,
    private readonly accounts: ReadonlySet<string>,
  ) {
    this.merge(read(key));
  }

  get pending(): Alert[] {
    return this.alerts.filter((a) => a.closed === null);
  }

  /** Acknowledged or expired, newest first. */
  get closed(): Alert[] {
    return this.alerts.filter((a) => a.closed !== null);
  }

  find(id: string): Alert | undefined {
    return this.alerts.find((a) => a.id === id);
  }

  /** Where to resume a risk channel: just after the last alert this browser got. */
  resumeFrom(channel: string): Position | null {
    return this.resume[channel] ?? null;
  }

  /** Adds an alert; false when it is already in the book (a replay). */
  add(alert: Alert): boolean {
    if (this.alerts.some((a) => a.id === alert.id)) return false;
    this.alerts = [alert, ...this.alerts].sort((a, b) => b.ts - a.ts);
    return true;
  }

  /** Closes an alert; false when nothing changed. An acknowledgement naming who replaces one
   * that did not (the `acked` event after the list left it out). */
  close(id: string, closed: Closed): boolean {
    const alert = this.find(id);
    if (!alert || !improves(alert.closed, closed)) return false;
    alert.closed = closed;
    return true;
  }

  /**
   * The gateway's list of the alerts still waiting on a channel's epoch, received on every
   * (re)subscribe (docs/protocol.md#unacked): alerts of that epoch waiting here but not listed
   * were acknowledged elsewhere (or expired); listed ones this browser lacks are added. True
   * when the book changed.
   */
  reconcile(
    channel: string,
    epoch: string,
    seqs: ReadonlySet<number>,
    waiting: readonly Alert[],
    at: number,
  ): boolean {
    let changed = false;
    for (const a of this.alerts)
      if (
        a.channel === channel &&
        a.epoch === epoch &&
        a.seq !== null &&
        a.closed === null &&
        !seqs.has(a.seq)
      ) {
        a.closed = { kind: 'acknowledged', at, by: null };
        changed = true;
      }
    for (const a of waiting) changed = this.add(a) || changed;
    return changed;
  }

  setResume(channel: string, position: Position): void {
    this.resume[channel] = { epoch: position.epoch, seq: position.seq };
  }

  /** Writes the book, merged with what other tabs wrote since. */
  save(): void {
    this.merge(read(this.key));
    const done = this.closed.slice(0, KEEP_CLOSED);
    const kept = this.alerts.filter((a) => a.closed === null || done.includes(a));
    this.alerts = kept;
    try {
      localStorage.setItem(this.key, JSON.stringify({ alerts: kept, resume: this.resume }));
    } catch {
      // Storage full or disabled: the page still works, it only forgets on reload.
    }
  }

  /** Another tab changed the book: take its alerts and what it learned of them. */
  reload(): void {
    this.merge(read(this.key));
  }

  private merge(stored: Stored): void {
    for (const other of stored.alerts) {
      if (!this.accounts.has(other.account)) continue;
      const mine = this.find(other.id);
      if (!mine) this.add(other);
      else if (other.closed !== null && improves(mine.closed, other.closed))
        mine.closed = other.closed;
    }
    for (const [channel, position] of Object.entries(stored.resume)) {
      const mine = this.resume[channel];
      // Same history: the further position wins. Another epoch: keep ours (the live one).
      if (!mine || (mine.epoch === position.epoch && position.seq > mine.seq))
        this.resume[channel] = position;
    }
  }
}

/** Whether `next` says more than `now`: any closure of a waiting alert, or who acknowledged
 * it where that was unknown. Closures are final otherwise. */
function improves(now: Closed | null, next: Closed): boolean {
  if (now === null) return true;
  return (
    now.kind === 'acknowledged' &&
    now.by === null &&
    next.kind === 'acknowledged' &&
    next.by !== null
  );
}

/** The storage key of a user (JWT `sub`): two traders on one browser never share a book. */
export function bookKey(user: string): string {
  return `archon.dashboard.alerts.${user}`;
}

function read(key: string): Stored {
  try {
    const raw = JSON.parse(localStorage.getItem(key) ?? 'null') as Partial<Stored> | null;
    const alerts = Array.isArray(raw?.alerts) ? raw.alerts.filter(isAlert) : [];
    const resume: Record<string, Position> = {};
    if (raw?.resume && typeof raw.resume === 'object')
      for (const [channel, p] of Object.entries(raw.resume))
        if (isPosition(p)) resume[channel] = { epoch: p.epoch, seq: p.seq };
    return { alerts, resume };
  } catch {
    return { alerts: [], resume: {} };
  }
}

/**
 * Anything else in storage (a hand edit, or the older format whose acknowledgements the
 * gateway never heard of) is ignored, never rendered: what the gateway still holds as waiting
 * comes back with its `unacked` list.
 */
function isAlert(v: unknown): v is Alert {
  const a = v as Record<string, unknown> | null;
  return (
    typeof a === 'object' &&
    a !== null &&
    typeof a.id === 'string' &&
    typeof a.account === 'string' &&
    typeof a.channel === 'string' &&
    (a.epoch === null || typeof a.epoch === 'string') &&
    (a.seq === null || typeof a.seq === 'number') &&
    typeof a.ts === 'number' &&
    typeof a.level === 'string' &&
    typeof a.message === 'string' &&
    typeof a.late === 'boolean' &&
    typeof a.missing === 'boolean' &&
    (a.closed === null || isClosed(a.closed))
  );
}

function isClosed(v: unknown): v is Closed {
  const c = v as Record<string, unknown> | null;
  if (typeof c !== 'object' || c === null || typeof c.at !== 'number') return false;
  if (c.kind === 'expired') return true;
  return c.kind === 'acknowledged' && (c.by === null || typeof c.by === 'string');
}

function isPosition(v: unknown): v is Position {
  const p = v as Partial<Position> | null;
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.epoch === 'string' &&
    typeof p.seq === 'number' &&
    Number.isInteger(p.seq) &&
    p.seq >= 0
  );
}
