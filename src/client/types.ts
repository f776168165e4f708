/** What the SDK hands to the application. */
import type { Since } from '../protocol/index.js';

/** A channel position: the epoch (which history the seq belongs to) and the seq. */
export type Position = Since;

/** One event of a channel, in seq order, each seq at most once. */
export interface ChannelEvent<T = unknown> {
  readonly channel: string;
  /** The epoch of the subscription it arrived on (events carry none on the wire). */
  readonly epoch: string;
  readonly seq: number;
  /** State channels: the entry key. Stream and alert channels: the publisher's key or null. */
  readonly key: string | null;
  /** When the gateway accepted the event (ms since the Unix epoch). */
  readonly ts: number;
  /** The payload; `null` on a state channel deletes `key`. */
  readonly data: T;
  /** How it arrived: live, replayed on a resume with `since`, or read from GET /api/v1/history. */
  readonly source: 'live' | 'replay' | 'history';
}

/** The whole current content of a state channel, sent on every (re)subscribe. */
export interface ChannelSnapshot<T = unknown> {
  readonly channel: string;
  readonly epoch: string;
  readonly seq: number;
  readonly entries: readonly { readonly key: string; readonly data: T }[];
}

export type GapReason =
  /** The channel's history was lost (gateway or Redis restart): a new epoch began. */
  | 'epoch-changed'
  /** The missed events were trimmed from history (size or age) before the client came back. */
  | 'trimmed'
  /** GET /api/v1/history failed, so what the resume did not replay stays missing. */
  | 'history-unavailable'
  /** A live event skipped seqs on a stream or alert channel (never expected). */
  | 'skipped';

/**
 * Events were missed for good: every event strictly between `after` and `before` is lost.
 * Show it ("the list may be incomplete"): a trader must not believe the list is whole.
 */
export interface Gap {
  readonly channel: string;
  readonly reason: GapReason;
  /** The last event received before the hole. */
  readonly after: Position;
  /** The first event after the hole (delivered next, live or from history). */
  readonly before: Position;
}

/** A risk alert acknowledged by a user of its account (docs/protocol.md#acked). */
export interface AlertAckInfo {
  readonly channel: string;
  readonly epoch: string;
  readonly seq: number;
  /** The `sub` of the user who acknowledged it. */
  readonly by: string;
  /** When (ms since the Unix epoch). */
  readonly at: number;
}

/** The alerts of a risk channel still waiting for an acknowledgement when it was subscribed
 * (docs/protocol.md#unacked). */
export interface UnackedAlerts<T = unknown> {
  readonly channel: string;
  readonly epoch: string;
  /** The seq of every alert of the epoch still waiting, ascending: the authority, an alert
   * not in it no longer waits. */
  readonly seqs: readonly number[];
  /** In full, those of them this subscription did not hand over otherwise (as events, before
   * its resume point, in its replay, or live after it). */
  readonly alerts: readonly Omit<ChannelEvent<T>, 'source'>[];
}

/** An operator notice (`system`), shown to the user. */
export interface SystemNotice {
  readonly message: string;
  readonly ts: number;
}

/** The server's `welcome`. */
export interface WelcomeInfo {
  readonly clientId: string;
  readonly server: string;
  /** Seconds between server pings. */
  readonly pingInterval: number;
  /** Seconds the server waits for a pong. */
  readonly pingTimeout: number;
  /** State updates arrive as deltas on this connection (the SDK rebuilds full values). */
  readonly deltas: boolean;
}

export type SdkErrorCode =
  /** The server closed with a code that a retry cannot help (4003, 4400, 1000, 1009…). */
  | 'closed'
  /** The token provider threw. */
  | 'token_failed'
  /** No welcome within connectTimeoutMs. */
  | 'connect_timeout'
  /** GET /api/v1/history failed; a `gap` follows. */
  | 'history_failed'
  /** No WebSocket can be created: a malformed URL, or no global WebSocket (Node < 22). */
  | 'cannot_connect'
  /** `ack()` without a connection, or the connection ended before its answer: ack again. */
  | 'not_connected';

export interface ClientError {
  /** An SdkErrorCode, or a server code from the error catalogue (docs/errors.md). */
  readonly code: string;
  readonly message: string;
  /** The channel concerned, for subscription and history errors. */
  readonly channel?: string;
  /** The close code, for `closed`. */
  readonly closeCode?: number;
}
