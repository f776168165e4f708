/**
 * HTTP refusals of the streaming fallback (docs/client.md#when-websocket-cannot-get-through)
 * as the close code a WebSocket would have ended with, so one close policy (close-policy.ts)
 * decides what follows: the error catalogue's close code for the body's `error.code`, else a
 * code by status. 404 means a gateway without the endpoint (an older release): 1006, a lost
 * connection, so the client tries again later instead of giving up.
 */
import { CloseCode, ERRORS, readErrorAnswer, type ErrorSpec } from '../protocol/index.js';

export interface Refusal {
  readonly code: number;
  readonly reason: string;
  /** The server's Retry-After, ms, when it sent one. */
  readonly retryAfterMs?: number;
}

/** The longest Retry-After honoured, ms: a misconfigured proxy must not park the client. */
const MAX_RETRY_AFTER_MS = 60_000;

/** Close codes by status, for answers whose body names no code the catalogue closes with. */
const BY_STATUS: Readonly<Record<number, number>> = {
  400: CloseCode.protocolError,
  401: CloseCode.unauthorized,
  403: CloseCode.forbidden,
  429: CloseCode.atCapacity,
  503: CloseCode.atCapacity,
};

/** `body`: the answer's text (a JSON error answer, a proxy's page, or nothing). Total. */
export function refusalClose(status: number, body: string, retryAfter: string | null): Refusal {
  const error = readErrorAnswer(body);
  const spec: ErrorSpec | undefined = error
    ? (ERRORS as Record<string, ErrorSpec>)[error.code]
    : undefined;
  const code =
    status === 404 ? CloseCode.abnormal : (spec?.close ?? BY_STATUS[status] ?? CloseCode.abnormal);
  const named = error ? ` ${error.code}${error.message ? `: ${error.message}` : ''}` : '';
  const wait = retryAfterMs(retryAfter);
  return {
    code,
    reason: `HTTP ${status}${named}`,
    ...(wait !== null && { retryAfterMs: wait }),
  };
}

/** Retry-After in seconds or as an HTTP date, ms; null when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === '') return null;
  const text = value.trim();
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now;
  if (!Number.isFinite(ms)) return null;
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms));
}
