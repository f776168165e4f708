/**
 * The HTTP streaming transport (docs/protocol.md#http-streaming-fallback): the same server
 * messages as the WebSocket, as server-sent events on `GET /api/v1/sse`, and client ops as
 * `POST /api/v1/sse/<client_id>`. What both ends and the tools must agree on lives here.
 */
import type { Since } from './messages.js';

/** What a client connection runs over: the `transport` field and metric label. */
export const TRANSPORTS = ['websocket', 'sse'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export const SSE_PATH = '/api/v1/sse';

/** Ops one POST may carry, at most (a client batches what queued while one was in flight). */
export const SSE_MAX_OPS_PER_POST = 32;

/** The longest `since` / `Last-Event-ID` cursor read, in characters (64 channels' worth). */
export const SSE_MAX_CURSOR_LENGTH = 64 * 300;

/**
 * The server's last message on a stream before it ends it: the close code and reason a
 * WebSocket would have closed with (docs/protocol.md, "Close codes"). Only sent over SSE.
 */
export interface CloseMessage {
  type: 'close';
  code: number;
  reason: string;
}

/**
 * A resume cursor: where each channel of a stream stands, `<channel>@<epoch>:<seq>` joined
 * by `,`. The stream's `id:` lines carry it, so `Last-Event-ID` resumes every channel; a
 * client may send the same form as `since`.
 */
export type Cursor = Map<string, Since>;

const ENTRY = /^([^@,\s]{1,200})@([A-Za-z0-9_-]{0,64}):(\d{1,15})$/;

/** Parses a cursor; an error names the entry that is wrong. Total and linear. */
export function parseCursor(text: string): { cursor: Cursor } | { error: string } {
  const cursor: Cursor = new Map();
  if (text.length > SSE_MAX_CURSOR_LENGTH)
    return { error: `longer than ${SSE_MAX_CURSOR_LENGTH} characters` };
  if (text.trim() === '') return { cursor };
  for (const entry of text.split(',')) {
    const match = ENTRY.exec(entry.trim());
    if (!match)
      return {
        error: `entry ${JSON.stringify(entry.slice(0, 80))} is not <channel>@<epoch>:<seq>`,
      };
    const [, channel, epoch, seq] = match as unknown as [string, string, string, string];
    cursor.set(channel, { epoch, seq: Number(seq) });
  }
  return { cursor };
}

/** The cursor's text form (the inverse of parseCursor). */
export function formatCursor(cursor: Iterable<readonly [string, Since]>): string {
  const parts: string[] = [];
  for (const [channel, { epoch, seq }] of cursor) parts.push(`${channel}@${epoch}:${seq}`);
  return parts.join(',');
}
