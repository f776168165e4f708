/**
 * When a client connection is dead or stuck, decided in one place for the gateway's sweep
 * (close it, or ping it) and for the operator's cleanup (RB-003 Fix A). Pure: it reads a
 * view of the connection and the clock.
 */
import type { Config } from './config.js';

export type ConnectionState = 'authenticating' | 'open' | 'closing' | 'closed';

export interface LivenessView {
  readonly state: ConnectionState;
  readonly socketOpen: boolean;
  readonly connectedAt: number;
  readonly lastPingAt: number;
  readonly awaitingPongSince: number | null;
  /** When the oldest queued message was queued, or null when nothing is queued. */
  readonly oldestQueuedAt: number | null;
  /** Since when the queue has waited on a socket that does not drain, or null. */
  readonly stuckSince: number | null;
  /** When the token of an open connection expires (ms), or null when it does not. */
  readonly expiresAt: number | null;
}

export type LivenessLimits = Pick<
  Config,
  'pingIntervalMs' | 'pingTimeoutMs' | 'broadcastTimeoutMs' | 'authTimeoutMs'
>;

/** What the sweep does about a connection now. */
export type SweepAction =
  | { readonly kind: 'none' }
  | { readonly kind: 'ping' }
  | { readonly kind: 'no_pong' }
  | { readonly kind: 'expired' }
  | { readonly kind: 'slow'; readonly reason: string };

const NONE: SweepAction = { kind: 'none' };
const PING: SweepAction = { kind: 'ping' };
const NO_PONG: SweepAction = { kind: 'no_pong' };
const EXPIRED: SweepAction = { kind: 'expired' };

function pongOverdue(view: LivenessView, limits: LivenessLimits, now: number): boolean {
  return view.awaitingPongSince !== null && now - view.awaitingPongSince > limits.pingTimeoutMs;
}

/** The sweep (about once a second): an open connection is closed for an expired token
 * (4001), no pong (4009) or a message queued too long (4008), or pinged when its interval is
 * up. Token expiry is judged here rather than by a timer per connection: an idle
 * connection then holds no timer at all. */
export function sweepAction(view: LivenessView, limits: LivenessLimits, now: number): SweepAction {
  if (view.state !== 'open') return NONE;
  if (view.expiresAt !== null && now >= view.expiresAt) return EXPIRED;
  if (pongOverdue(view, limits, now)) return NO_PONG;
  if (view.oldestQueuedAt !== null && now - view.oldestQueuedAt > limits.broadcastTimeoutMs)
    return {
      kind: 'slow',
      reason: `message queued longer than ${limits.broadcastTimeoutMs / 1000}s`,
    };
  if (now - view.lastPingAt >= limits.pingIntervalMs) return PING;
  return NONE;
}

/** Why an operator cleanup closes the connection, or null when it is healthy. */
export function deadReason(view: LivenessView, limits: LivenessLimits, now: number): string | null {
  if (!view.socketOpen) return 'socket not open';
  if (view.state === 'authenticating' && now - view.connectedAt > limits.authTimeoutMs)
    return 'never authenticated';
  if (pongOverdue(view, limits, now)) return 'no pong';
  // Stuck: the socket refuses more and nothing was written for longer than the broadcast
  // timeout. A queue merely not flushed yet this turn is not stuck.
  if (view.stuckSince !== null && now - view.stuckSince > limits.broadcastTimeoutMs)
    return 'queue not draining';
  return null;
}
