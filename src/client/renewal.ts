/**
 * Token renewal in place (docs/client.md, "Tokens renewed in place"): before the connection's
 * token expires, ask the application's token provider for a fresh one and send it with
 * `refresh`, so the connection, its subscriptions and their queues stay. When 15–25 % of
 * the token's lifetime is left (a random point, so a floor of dashboards signed in together
 * does not hit the identity provider together), and never sooner than a tenth of the
 * lifetime (at most 30 s) after the last try. A refused renewal, or a provider that gives no
 * token expiring later than the current one (one that caches its token), is tried again at
 * half the time left; when none succeeds the server closes with 4001 at expiry and the
 * client takes the usual path: a new token, then a reconnect. A gateway that does not know
 * `refresh` (an older version during a rolling upgrade) answers `unknown_op`: renewal stops
 * for that connection, and the reconnect path covers it.
 */

/** Renew when this share of the lifetime is left, plus up to RENEW_JITTER more. */
const RENEW_AT_LEFT = 0.15;
const RENEW_JITTER = 0.1;
/** Timers longer than this are re-armed on firing (setTimeout's limit is about 24.8 days). */
const MAX_TIMER_MS = 24 * 3600 * 1000;
/** With less than this left, a failed renewal is not retried: the reconnect path takes over. */
const MIN_RETRY_LEFT_MS = 2000;
/** Tries are at least this share of the lifetime apart (at most MAX_GAP_MS). */
const MIN_GAP_SHARE = 0.1;
const MAX_GAP_MS = 30_000;
/** Answers that mean the gateway does not take `refresh` at all: do not try again. */
const NOT_SUPPORTED = new Set(['unknown_op', 'bad_request']);

export interface RenewalHost {
  /** A fresh token from the application's provider, or null when it has none fresher
   * (a fixed token string). */
  fresh(): Promise<string | null>;
  /** Sends `refresh` with this token and request id on the current connection. */
  send(token: string, id: string): void;
  /** A renewal failed (the provider or the server refused): reported to the application. */
  failed(code: string, message: string): void;
  readonly random: () => number;
  readonly now: () => number;
}

/** `exp` and `iat` of a JWT in ms, read without verifying it (the server verifies). */
export function tokenTimes(token: string): { exp: number | null; iat: number | null } {
  try {
    const part = token.split('.')[1];
    if (!part) return { exp: null, iat: null };
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(json) as { exp?: unknown; iat?: unknown };
    const ms = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v * 1000 : null);
    return { exp: ms(claims.exp), iat: ms(claims.iat) };
  } catch {
    return { exp: null, iat: null };
  }
}

export class TokenRenewal {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private pendingId: string | null = null;
  private pendingToken: string | null = null;
  private count = 0;
  private exp: number | null = null;
  /** Tries are at least this far apart (ms). */
  private gap = 0;
  /** Bumped by stop(): work begun for an earlier connection or token gives up. */
  private generation = 0;

  constructor(private readonly host: RenewalHost) {}

  /** The connection signed in (or renewed) with `token`, obtained at `since` (ms). */
  start(token: string, since = this.host.now()): void {
    this.stop();
    const { exp, iat } = tokenTimes(token);
    this.exp = exp;
    if (exp === null) return;
    const issued = iat !== null && iat <= since ? iat : since;
    const lifetime = Math.max(0, exp - issued);
    this.gap = Math.min(MAX_GAP_MS, lifetime * MIN_GAP_SHARE);
    const left = lifetime * (RENEW_AT_LEFT + RENEW_JITTER * this.host.random());
    this.arm(Math.max(exp - left, this.host.now() + this.gap));
  }

  /** True when `id` is the renewal in flight. */
  awaits(id: unknown): boolean {
    return id !== undefined && id === this.pendingId;
  }

  /** The server took the new token: returns it (the one to keep) and plans the next renewal. */
  renewed(): string | null {
    const token = this.pendingToken;
    this.pendingId = this.pendingToken = null;
    if (token !== null) this.start(token);
    return token;
  }

  /** The server answered the renewal with an error (`refresh_refused`, or `unknown_op` from
   * a gateway that does not know `refresh`). */
  refused(code: string, message: string): void {
    this.pendingId = this.pendingToken = null;
    this.host.failed(code, message);
    if (NOT_SUPPORTED.has(code)) this.stop();
    else this.retry();
  }

  /** The connection is gone: nothing more to renew on it. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.pendingId = this.pendingToken = null;
    this.exp = null;
    this.generation++;
  }

  private arm(at: number): void {
    if (this.timer !== null) clearTimeout(this.timer);
    const delay = Math.max(0, at - this.host.now());
    this.timer = setTimeout(
      () => {
        this.timer = null;
        if (at - this.host.now() > 0) this.arm(at);
        else void this.renew();
      },
      Math.min(delay, MAX_TIMER_MS),
    );
  }

  private async renew(): Promise<void> {
    const generation = this.generation;
    let token: string | null;
    try {
      token = await this.host.fresh();
    } catch (err) {
      if (this.generation !== generation) return; // stopped meanwhile
      this.host.failed(
        'token_failed',
        `token provider: ${err instanceof Error ? err.message : String(err)}`,
      );
      this.retry();
      return;
    }
    // Stopped meanwhile, or no provider (a fixed token): let it expire.
    if (this.generation !== generation || token === null) return;
    // A provider that hands back its cached token: nothing gained by sending it; ask later.
    const exp = tokenTimes(token).exp;
    if (exp === null || this.exp === null || exp <= this.exp) {
      this.retry();
      return;
    }
    this.pendingId = `refresh-${++this.count}`;
    this.pendingToken = token;
    this.host.send(token, this.pendingId);
  }

  private retry(): void {
    if (this.exp === null) return;
    const now = this.host.now();
    const left = this.exp - now;
    if (left > MIN_RETRY_LEFT_MS) this.arm(Math.max(this.exp - left / 2, now + this.gap));
  }
}
