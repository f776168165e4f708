/** Wire protocol v1 (docs/protocol.md): JSON text frames, subprotocol `archon.v1`. */
import type { CloseMessage } from './sse.js';

export const SUBPROTOCOL = 'archon.v1';
export const PROTOCOL_VERSION = 1;

export interface Since {
  readonly epoch: string;
  readonly seq: number;
}

// Client → server
export interface HelloOp {
  op: 'hello';
  token: string;
  client?: string;
  /** Asks for state updates as merge patches (docs/protocol.md#deltas); absent means false. */
  deltas?: boolean;
}
export interface SubscribeOp {
  op: 'subscribe';
  id?: number | string;
  channel: string;
  since?: Since;
}
export interface UnsubscribeOp {
  op: 'unsubscribe';
  id?: number | string;
  channel: string;
}
export interface PongOp {
  op: 'pong';
}
export interface PingOp {
  op: 'ping';
}
/** A new token for the open connection (docs/protocol.md#refresh): same user, later expiry. */
export interface RefreshOp {
  op: 'refresh';
  id?: number | string;
  token: string;
}
/** Acknowledges a risk alert for every user of its account (docs/protocol.md#ack). */
export interface AckOp {
  op: 'ack';
  id?: number | string;
  /** A `risk:<account>` channel. */
  channel: string;
  /** The alert's epoch and seq, as its `event` (or `unacked` entry) gave them. */
  epoch: string;
  seq: number;
}
export type ClientOp = HelloOp | SubscribeOp | UnsubscribeOp | PongOp | PingOp | RefreshOp | AckOp;

/** The operations a client may send, in the order docs/protocol.md lists them. */
export const CLIENT_OPS = [
  'hello',
  'subscribe',
  'unsubscribe',
  'refresh',
  'ack',
  'ping',
  'pong',
] as const satisfies readonly ClientOp['op'][];

// Server → client
export interface WelcomeMessage {
  type: 'welcome';
  client_id: string;
  server: string;
  ping_interval: number;
  ping_timeout: number;
  protocol: number;
  /** Present on the HTTP streaming transport only (docs/protocol.md#http-streaming-fallback). */
  transport?: 'sse';
  /** Present when this connection gets state updates as deltas: the client asked in `hello`. */
  deltas?: true;
}
export interface SubscribedMessage {
  type: 'subscribed';
  id?: number | string;
  channel: string;
  epoch: string;
  seq: number;
  recovered: boolean;
  replayed: number;
}
export interface UnsubscribedMessage {
  type: 'unsubscribed';
  id?: number | string;
  channel: string;
  /** Why the server ended the subscription itself (absent for the answer to `unsubscribe`):
   * `forbidden` when a refreshed token no longer covers the channel's account. */
  reason?: 'forbidden';
}
/** The answer to `refresh`: the connection now runs on the new token. */
export interface RefreshedMessage {
  type: 'refreshed';
  id?: number | string;
  /** The new token's expiry (ms since the Unix epoch), or null when it has none. */
  expires_at: number | null;
}
export interface SnapshotEntry {
  key: string;
  data: unknown;
}
export interface SnapshotMessage {
  type: 'snapshot';
  channel: string;
  epoch: string;
  seq: number;
  entries: SnapshotEntry[];
}
export interface EventMessage {
  type: 'event';
  channel: string;
  seq: number;
  key: string | null;
  ts: number;
  data: unknown;
  /** Only on a delta (docs/protocol.md#deltas), sent to connections that asked for them:
   * `data` is then a JSON merge patch (RFC 7396) to apply to the value `key` took at event
   * `base_seq`, the last event of `key` this subscription delivered. */
  base_seq?: number;
  /** When the event stops being true (ms since the Unix epoch): present when it was published
   * with a `ttl` or its class has a default one. */
  expires_at?: number;
}
/** Who acknowledged a risk alert, and when (ms since the Unix epoch). */
export interface AlertAck {
  by: string;
  at: number;
}
/** The answer to `ack`, and the notice every subscriber of the channel gets when anyone
 * acknowledges one of its alerts (idempotent: it may arrive more than once). */
export interface AckedMessage extends AlertAck {
  type: 'acked';
  id?: number | string;
  channel: string;
  epoch: string;
  seq: number;
}
/** One alert still waiting for an acknowledgement. */
export interface UnackedAlert {
  seq: number;
  key: string | null;
  ts: number;
  data: unknown;
  expires_at?: number;
}
/** Follows `subscribed` (and its replay) on every subscription of a risk channel
 * (docs/protocol.md#unacked). `seqs`: every alert of the epoch still held and not
 * acknowledged, as ranges [from, to], oldest first; authoritative: an alert the client holds as
 * waiting but not in them was acknowledged or expired. `alerts`: in full, those of them the
 * client does not hold otherwise (before its resume point, replayed, or arriving live). */
export interface UnackedMessage {
  type: 'unacked';
  channel: string;
  epoch: string;
  seqs: [from: number, to: number][];
  alerts: UnackedAlert[];
}

/** Ascending seqs as ranges [from, to] of consecutive seqs. */
export function seqRanges(seqs: readonly number[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const seq of seqs) {
    const last = ranges.at(-1);
    if (last && seq === last[1] + 1) last[1] = seq;
    else ranges.push([seq, seq]);
  }
  return ranges;
}

/** The seqs of ranges [from, to], ascending; at most `max` of them (a channel holds at most
 * WEBSOCKET_ALERT_HISTORY_SIZE alerts, so a longer list is not one a gateway sent). */
export function rangeSeqs(
  ranges: readonly (readonly [number, number])[],
  max = 1_000_000,
): number[] {
  const seqs: number[] = [];
  for (const [from, to] of ranges)
    for (let seq = from; seq <= to && seqs.length < max; seq++) seqs.push(seq);
  return seqs;
}
/** Stands in for events `from_seq` … `seq` of a channel that expired (their `ttl`) before
 * they reached this connection: nothing was lost, `seq` moves on. */
export interface ExpiredMessage {
  type: 'expired';
  channel: string;
  from_seq: number;
  seq: number;
}
export interface SystemMessage {
  type: 'system';
  message: string;
  ts: number;
}
export interface ResyncMessage {
  type: 'resync';
  channels: string[];
}
export interface PingMessage {
  type: 'ping';
}
export interface PongMessage {
  type: 'pong';
}
export interface ErrorMessage {
  type: 'error';
  id?: number | string;
  code: string;
  message: string;
}
export type ServerMessage =
  | CloseMessage
  | WelcomeMessage
  | SubscribedMessage
  | UnsubscribedMessage
  | RefreshedMessage
  | SnapshotMessage
  | EventMessage
  | AckedMessage
  | UnackedMessage
  | ExpiredMessage
  | SystemMessage
  | ResyncMessage
  | PingMessage
  | PongMessage
  | ErrorMessage;

/** One published event as stored in history and sent to subscribers. */
export interface StoredEvent {
  readonly channel: string;
  readonly seq: number;
  readonly key: string | null;
  readonly ts: number;
  readonly data: unknown;
  /** Absent when the event never expires (docs/protocol.md#expiring-events). */
  readonly expires_at?: number;
}

/** Whether an event has expired at `now`: it is then never delivered, replayed or snapshotted. */
export function isExpired(event: { readonly expires_at?: number }, now: number): boolean {
  return event.expires_at !== undefined && event.expires_at <= now;
}

/** Answer of GET /api/v1/history. */
export interface HistoryAnswer {
  channel: string;
  epoch: string;
  /** Latest seq of the channel. */
  seq: number;
  /** Oldest seq still held, or seq + 1 when nothing is held. */
  first_seq: number;
  /** True when `events` holds every event after the requested since_seq in this epoch. */
  complete: boolean;
  epoch_changed: boolean;
  events: StoredEvent[];
}
