/**
 * The one catalogue of archon-ws error codes. Each code has a stable name, the HTTP status
 * it answers with (when it can happen over HTTP), the close code it closes a WebSocket with
 * (when it ends a connection), a message template and what the client should do.
 * `docs/errors.md` documents every code; a test fails when one is missing there.
 */

import { CloseCode } from './close-codes.js';

export interface ErrorSpec {
  readonly http?: number;
  readonly close?: number;
  /** Sending the same request again cannot succeed (a client must not retry it); codes
   * without it are temporary. Clients read this, not a list of their own. */
  readonly permanent?: true;
  readonly message: string;
  readonly clientAction: string;
}

export const ERRORS = {
  bad_request: {
    permanent: true,
    http: 400,
    close: CloseCode.protocolError,
    message: 'malformed request',
    clientAction: 'fix the request; a second malformed WebSocket message closes with 4400',
  },
  invalid_json: {
    permanent: true,
    close: CloseCode.protocolError,
    message: 'message is not valid JSON',
    clientAction: 'send one JSON object per text frame; repeating closes with 4400',
  },
  unknown_op: {
    permanent: true,
    close: CloseCode.protocolError,
    message: 'unknown op',
    clientAction:
      'use hello, subscribe, unsubscribe, refresh, ack, ping or pong; repeating closes with 4400',
  },
  unknown_channel: {
    permanent: true,
    http: 400,
    message: 'unknown channel',
    clientAction:
      'check the channel name (positions:<account>, risk:<account>, signals[:<strategy>], system)',
  },
  too_many_subscriptions: {
    message: 'too many subscriptions on this connection',
    clientAction:
      'unsubscribe from channels no longer shown (WEBSOCKET_MAX_SUBSCRIPTIONS); the connection stays open',
  },
  forbidden: {
    permanent: true,
    http: 403,
    message: 'not allowed',
    clientAction: 'the token does not cover this account; the connection stays open',
  },
  unauthorized: {
    http: 401,
    close: CloseCode.unauthorized,
    message: 'missing or invalid token',
    clientAction: 'get a fresh token, then reconnect',
  },
  token_expired: {
    http: 401,
    close: CloseCode.unauthorized,
    message: 'token expired',
    clientAction: 'get a fresh token, then reconnect',
  },
  refresh_refused: {
    message: 'token refresh refused',
    clientAction:
      'the connection stays open on its current token until that expires: get a valid token for the same user and refresh again, or reconnect with it',
  },
  alert_unknown: {
    permanent: true,
    message: 'no such alert is held',
    clientAction:
      'the alert expired (WEBSOCKET_ALERT_HISTORY_TTL or its ttl), belongs to another epoch, or the channel is not a risk:<account> channel: drop it from the list; the connection stays open',
  },
  auth_timeout: {
    close: CloseCode.unauthorized,
    message: 'no hello within the auth timeout',
    clientAction: 'send hello with a token as the first message',
  },
  not_authenticated: {
    close: CloseCode.unauthorized,
    message: 'hello must be the first message',
    clientAction: 'send hello with a token before anything else',
  },
  rate_limited: {
    http: 429,
    close: CloseCode.policy,
    message: 'too many messages',
    clientAction: 'slow down; reconnect after a backoff',
  },
  message_too_big: {
    http: 413,
    close: CloseCode.tooBig,
    message: 'message larger than allowed',
    clientAction: 'send smaller messages (WEBSOCKET_MAX_MESSAGE_SIZE)',
  },
  slow_consumer: {
    close: CloseCode.slowConsumer,
    message: 'client could not keep up',
    clientAction: 'reconnect and resubscribe with since; missed events are replayed',
  },
  ping_timeout: {
    close: CloseCode.noPong,
    message: 'no pong within the ping timeout',
    clientAction: 'reconnect; answer every ping with pong',
  },
  at_capacity: {
    http: 503,
    close: CloseCode.atCapacity,
    message: 'server at capacity',
    clientAction: 'back off, then reconnect (another instance may have room)',
  },
  ip_connection_limit: {
    http: 429,
    message: 'too many connections from this address',
    clientAction:
      'close unused connections from this address, or retry after Retry-After (WEBSOCKET_MAX_CONNECTIONS_PER_IP)',
  },
  user_connection_limit: {
    http: 429,
    close: CloseCode.atCapacity,
    message: 'too many connections for this user',
    clientAction:
      'close other tabs or sessions of this user, then reconnect after a backoff (WEBSOCKET_MAX_CONNECTIONS_PER_USER)',
  },
  unauthenticated_evicted: {
    close: CloseCode.atCapacity,
    message: 'closed to make room: no hello yet while the server is full',
    clientAction: 'reconnect after a backoff and send hello as soon as the socket opens',
  },
  unauthenticated_limit: {
    close: CloseCode.policy,
    message: 'too much sent before hello',
    clientAction: 'send hello first and wait for welcome before sending more than 32 KiB',
  },
  replay_limited: {
    message: 'replay budget of this connection used up',
    clientAction:
      'retry the subscribe with since after a backoff (WEBSOCKET_REPLAY_BYTES_PER_MINUTE); the connection stays open',
  },
  test_endpoint_busy: {
    http: 503,
    message: 'too many long test holds open on this instance',
    clientAction: 'hold for 60 s or less, or retry after Retry-After',
  },
  origin_not_allowed: {
    http: 403,
    close: CloseCode.policy,
    message: 'origin not allowed',
    clientAction: 'serve the page from an allowed origin (WEBSOCKET_ALLOWED_ORIGINS)',
  },
  draining: {
    http: 503,
    close: CloseCode.restarting,
    message: 'server shutting down',
    clientAction: 'reconnect with jitter to another instance and resume with since',
  },
  operator_cleanup: {
    close: CloseCode.operatorCleanup,
    message: 'closed by operator cleanup',
    clientAction: 'reconnect and resume with since',
  },
  sse_session_unknown: {
    permanent: true,
    http: 404,
    message: 'no open stream has this client_id',
    clientAction:
      'the stream closed (or never opened on this cluster): open GET /api/v1/sse again and resume with since',
  },
  not_found: {
    http: 404,
    message: 'not found',
    clientAction: 'check the path; the admin API answers 404 when no admin token is configured',
  },
  invalid_event: {
    http: 400,
    message: 'invalid event',
    clientAction: 'fix the event (channel, key, data) as the message says',
  },
  payload_too_large: {
    http: 413,
    message: 'request body too large',
    clientAction: 'split the batch into smaller requests',
  },
  backplane_unavailable: {
    http: 503,
    message: 'backplane unavailable: event not stored',
    clientAction: 'retry after Retry-After seconds with the same id',
  },
  internal: {
    http: 500,
    close: CloseCode.internal,
    message: 'internal error',
    clientAction: 'retry; report it if it persists',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/**
 * The codes with which the gateway refuses clients that overreach its limits (sockets that
 * never authenticate, too much before hello, too many connections, replay loops): many of
 * them mean hostile or broken clients that the gateway turned away while it kept serving
 * everyone else (docs/security.md). Doctor reads the errors-by-type metric with these.
 */
export const REFUSAL_CODES = [
  'unauthenticated_evicted',
  'unauthenticated_limit',
  'user_connection_limit',
  'replay_limited',
] as const satisfies readonly ErrorCode[];

/** Whether retrying what earned this error code can succeed: unknown codes (a newer server's)
 * count as temporary. */
export function isPermanentError(code: string): boolean {
  const spec: ErrorSpec | undefined = (ERRORS as Record<string, ErrorSpec>)[code];
  return spec?.permanent === true;
}

/** The body of every HTTP error answer (docs/http-api.md): `code` stable, `message` for people. */
export interface ErrorAnswer {
  error: { code: string; message: string };
}

export function errorAnswer(code: ErrorCode, message: string): ErrorAnswer {
  return { error: { code, message } };
}

/**
 * The code and message of an HTTP error answer, or null when the body is not one (a proxy's
 * own page, an empty body). Total: any parsed JSON, or a string to parse, is accepted.
 */
export function readErrorAnswer(body: unknown): ErrorAnswer['error'] | null {
  let value = body;
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value);
    } catch {
      return null;
    }
  }
  if (typeof value !== 'object' || value === null || !('error' in value)) return null;
  const error: unknown = value.error;
  if (typeof error !== 'object' || error === null || !('code' in error)) return null;
  if (typeof error.code !== 'string') return null;
  const message = 'message' in error && typeof error.message === 'string' ? error.message : '';
  return { code: error.code, message };
}

/** An error with a catalogue code; HTTP routes and connections turn it into an answer. */
export class ArchonError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string) {
    super(message ?? ERRORS[code].message);
    this.name = 'ArchonError';
    this.code = code;
  }

  get httpStatus(): number {
    const spec: ErrorSpec = ERRORS[this.code];
    return spec.http ?? 500;
  }
}
