/**
 * What the client needs of a connection, whatever carries it: a WebSocket (link.ts) or the
 * HTTP streaming fallback (sse-link.ts, docs/client.md#when-websocket-cannot-get-through).
 * Both parse the server's JSON the same way and report a lost connection as a close code
 * (1006 when nothing better is known), so the client's close policy is one table for both.
 */
import type { ClientOp, ServerMessage, Transport } from '../protocol/index.js';

export type { Transport } from '../protocol/index.js';

export interface LinkHandlers {
  /** The connection is up (WebSocket open; SSE: the stream's 200 arrived). */
  open(): void;
  message(message: ServerMessage): void;
  /**
   * The connection ended (not called after a close from our side). `retryAfterMs`: the
   * server asked for at least this wait (an HTTP refusal's Retry-After).
   */
  close(code: number, reason: string, retryAfterMs?: number): void;
  /** Something that is not a message showed the link is alive (an SSE comment heartbeat). */
  heard?(): void;
  /** The server refused something without ending the connection (an SSE POST's 400). */
  failed?(code: string, message: string): void;
}

/** The common shape of Link and SseLink. */
export interface ClientLink {
  readonly transport: Transport;
  /** True while ops can be sent (or queued to be sent). */
  readonly open: boolean;
  /** False when the link cannot take it (closed, or not open yet). */
  send(op: ClientOp): boolean;
  /** Closes from our side; the handlers are not called any more. */
  close(code?: number, reason?: string): void;
}

/** A server message, or null for anything else (binary, not JSON, no `type`). Total. */
export function readServerMessage(data: unknown): ServerMessage | null {
  if (typeof data !== 'string') return null;
  try {
    const value: unknown = JSON.parse(data);
    if (typeof value !== 'object' || value === null) return null;
    return typeof (value as { type?: unknown }).type === 'string' ? (value as ServerMessage) : null;
  } catch {
    return null;
  }
}
