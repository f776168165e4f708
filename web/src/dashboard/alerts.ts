/**
 * The trader's risk alerts, kept in this browser per user: every alert received (waiting or
 * acknowledged) and, per `risk:<account>` channel, the position of the last one, so a reload
 * resumes where the page stopped and an alert published while it was closed is replayed.
 * Waiting alerts are stored here too, so a gateway restart (a new epoch, whose history does
 * not hold them) cannot make one disappear; only acknowledged ones are ever trimmed. Other
 * tabs of the same user share the book: an acknowledgement in one clears the alert in all.
 */
import type { Position } from '../../../src/client/index.js';

export interface Alert {
  readonly id: string;
  readonly account: string;
  readonly channel: string;
  readonly ts: number;
  readonly level: string;
  readonly message: string;
  /** Replayed after a reconnect or read from history: it happened while we were away. */
  readonly late: boolean;
  /** A warning of the page itself (alerts may be missing), not an alert of the risk system. */
  readonly missing: boolean;
  acknowledgedAt: number | null;
}

interface Stored {
  alerts: Alert[];
  resume: Record<string, Position>;
}

/** Acknowledged alerts kept for the history list; waiting ones are never dropped. */
const KEEP_ACKNOWLEDGED = 200;

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
    return this.alerts.filter((a) => a.acknowledgedAt === null);
  }

  get acknowledged(): Alert[] {
    return this.alerts.filter((a) => a.acknowledgedAt !== null);
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

  acknowledge(id: string, at: number): boolean {
    const alert = this.alerts.find((a) => a.id === id);
    if (!alert || alert.acknowledgedAt !== null) return false;
    alert.acknowledgedAt = at;
    return true;
  }

  setResume(channel: string, position: Position): void {
    this.resume[channel] = { epoch: position.epoch, seq: position.seq };
  }

  /** Writes the book, merged with what other tabs wrote since. */
  save(): void {
    this.merge(read(this.key));
    const done = this.acknowledged.slice(0, KEEP_ACKNOWLEDGED);
    const kept = this.alerts.filter((a) => a.acknowledgedAt === null || done.includes(a));
    this.alerts = kept;
    try {
      localStorage.setItem(this.key, JSON.stringify({ alerts: kept, resume: this.resume }));
    } catch {
      // Storage full or disabled: the page still works, it only forgets on reload.
    }
  }

  /** Another tab changed the book: take its alerts and acknowledgements. */
  reload(): void {
    this.merge(read(this.key));
  }

  private merge(stored: Stored): void {
    for (const other of stored.alerts) {
      if (!this.accounts.has(other.account)) continue;
      const mine = this.alerts.find((a) => a.id === other.id);
      if (!mine) this.add(other);
      else if (mine.acknowledgedAt === null) mine.acknowledgedAt = other.acknowledgedAt;
    }
    for (const [channel, position] of Object.entries(stored.resume)) {
      const mine = this.resume[channel];
      // Same history: the further position wins. Another epoch: keep ours (the live one).
      if (!mine || (mine.epoch === position.epoch && position.seq > mine.seq))
        this.resume[channel] = position;
    }
  }
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

/** Anything else in storage (an older format, a hand edit) is ignored, never rendered. */
function isAlert(v: unknown): v is Alert {
  const a = v as Record<string, unknown> | null;
  return (
    typeof a === 'object' &&
    a !== null &&
    typeof a.id === 'string' &&
    typeof a.account === 'string' &&
    typeof a.channel === 'string' &&
    typeof a.ts === 'number' &&
    typeof a.level === 'string' &&
    typeof a.message === 'string' &&
    typeof a.late === 'boolean' &&
    typeof a.missing === 'boolean' &&
    (a.acknowledgedAt === null || typeof a.acknowledgedAt === 'number')
  );
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
