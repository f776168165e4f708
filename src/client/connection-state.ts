/** The client's named connection states and the events it emits. */
import type { CloseAction } from '../protocol/index.js';
import type { Transport } from './link-shape.js';
import type { ChannelEvent, ClientError, Gap, SystemNotice, WelcomeInfo } from './types.js';

/**
 * - `connecting`: the first connection is being opened;
 * - `connected`: welcomed by a server, data flowing;
 * - `stale`: connected, but a ping is overdue (nothing heard for ping_interval +
 *   ping_timeout / 2), or the browser went offline: what is on screen may be old. Back to
 *   `connected` as soon as anything arrives; closed and retried when the silence reaches
 *   ping_interval + ping_timeout;
 * - `reconnecting`: the connection was lost; retrying (see `nextRetryAt`), or waiting for the
 *   network to come back;
 * - `closed`: closed by the application, or by the server with a code a retry cannot help.
 */
export type ConnectionState = 'connecting' | 'connected' | 'reconnecting' | 'stale' | 'closed';

export interface StateChange {
  readonly previous: ConnectionState;
  /** When the next connection attempt starts (ms since the Unix epoch), when one is planned. */
  readonly retryAt: number | null;
}

/** A connection attempt was planned: "Reconnecting (next try in N s)". */
export interface RetryInfo {
  /** Retries since the last stable connection (1 for the first). */
  readonly attempt: number;
  /** The delay chosen, ms; null while waiting for the browser to be online again. */
  readonly delayMs: number | null;
  /** When the attempt starts (ms since the Unix epoch); null while offline. */
  readonly at: number | null;
}

/** A connection ended. */
export interface DisconnectInfo {
  /** The close code (1006 when the connection was lost or found dead). */
  readonly code: number;
  readonly reason: string;
  /** What the client does about it (src/protocol/close-codes.ts). */
  readonly action: CloseAction;
}

/** The connection runs over another transport than the one before. */
export interface TransportChange {
  /** The transport of the connection before (null: this is the first connection). */
  readonly previous: Transport | null;
}

export interface ClientEvents {
  state: [state: ConnectionState, change: StateChange];
  welcome: [welcome: WelcomeInfo];
  /** Every event of every subscription, in seq order per channel. */
  event: [event: ChannelEvent];
  /** Operator notices: show them. */
  system: [notice: SystemNotice];
  /** Events lost for good on a channel. */
  gap: [gap: Gap];
  error: [error: ClientError];
  /** The server dropped these subscriptions (or one received a delta it could not apply):
   * the client has resubscribed them. */
  resync: [channels: readonly string[]];
  disconnect: [info: DisconnectInfo];
  retry: [info: RetryInfo];
  /**
   * A connection was welcomed over another transport than the one before (the first one
   * included): a fallback to HTTP streaming, or the move back to WebSocket
   * (docs/client.md#when-websocket-cannot-get-through). `client.transport` says which now.
   */
  transport: [transport: Transport, change: TransportChange];
  /** The connection renewed its token in place (`refresh`); `expiresAt`: ms, or null. */
  refreshed: [info: { readonly expiresAt: number | null }];
}
