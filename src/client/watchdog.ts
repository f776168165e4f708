/**
 * Liveness of one connection. The server pings every `ping_interval` seconds whatever else
 * it sends, so a live connection is never quiet for long: quiet past `staleMs` means a ping
 * is overdue (the data on screen may be old), quiet past `deadMs` means the link is dead.
 * One timer per connection, re-armed lazily: messages only record when they arrived.
 */

export interface WatchdogHandlers {
  /** Nothing heard for staleMs (once per silence). */
  stale(): void;
  /** Nothing heard for deadMs; the watchdog has stopped. */
  dead(): void;
}

/** A timer that fires this much later than asked means the event loop was blocked. */
const BLOCKED_MS = 1000;

export class Watchdog {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private heardAt = 0;
  private dueAt = 0;
  private staleMs = 0;
  private deadMs = 0;
  private isStale = false;
  private graced = false;

  constructor(private readonly handlers: WatchdogHandlers) {}

  /** (Re)starts watching: quiet from now on counts. */
  start(staleMs: number, deadMs: number): void {
    this.stop();
    this.staleMs = Math.min(staleMs, deadMs);
    this.deadMs = deadMs;
    this.heardAt = Date.now();
    this.schedule(this.staleMs);
  }

  /** Something arrived. */
  heard(): void {
    this.heardAt = Date.now();
    this.graced = false;
    if (!this.isStale || this.timer === null) return;
    this.isStale = false;
    this.schedule(this.staleMs);
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.isStale = false;
    this.graced = false;
  }

  private schedule(ms: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.dueAt = Date.now() + ms;
    this.timer = setTimeout(() => this.check(), ms);
  }

  private check(): void {
    const now = Date.now();
    if (!this.graced && now - this.dueAt > BLOCKED_MS) {
      // The page was busy (or asleep): messages may be waiting unread in the socket. Let them
      // be processed before calling the link stale or dead.
      this.graced = true;
      this.schedule(0);
      return;
    }
    const quiet = now - this.heardAt;
    if (quiet >= this.deadMs) {
      this.stop();
      this.handlers.dead();
      return;
    }
    if (!this.isStale && quiet >= this.staleMs) {
      this.isStale = true;
      this.handlers.stale();
    }
    this.schedule((this.isStale ? this.deadMs : this.staleMs) - quiet);
  }
}
