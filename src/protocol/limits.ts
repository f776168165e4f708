/**
 * Fixed bounds on what a client or publisher may send (docs/security.md). The settings
 * (WEBSOCKET_MAX_CONNECTIONS_PER_USER and the like) live in the server's config; these are
 * the limits no deployment needs to change, shared by the gateway, the SDK and the docs.
 */

/** Client → server messages: JSON nesting deeper than this is refused before it is walked
 * (no op needs more than 2 levels). */
export const MAX_OP_DEPTH = 8;

/** Bytes a connection may send before its `hello` succeeded (hello and pipelined ops). */
export const PREAUTH_MAX_BYTES = 32 * 1024;

/** Publish: `data` nested deeper than this is refused (JSON.stringify and every consumer
 * recurse; 32 levels is far beyond any trading payload). */
export const MAX_DATA_DEPTH = 32;

/** Publish: the largest `data` of one event, as JSON bytes. */
export const MAX_EVENT_DATA_BYTES = 256 * 1024;

/** `/api/v1/ws/health` connections open at once per instance. */
export const HEALTH_MAX_CONNECTIONS = 100;

/** GET /api/v1/history: requests per second per user (token bucket, bursts of twice that). */
export const HISTORY_REQUESTS_PER_SECOND = 10;

/** GET /api/v1/history: requests per second per client address, checked before the token is
 * (many users may share an office address; refusals must cost next to nothing). */
export const HISTORY_REQUESTS_PER_SECOND_PER_ADDRESS = 50;

/** An unknown op or other client value is quoted in an error only up to this many characters. */
export const MAX_QUOTED_CHARS = 32;

/** Publish: the longest `ttl` of an event, in seconds (7 days, like the history TTLs). */
export const MAX_EVENT_TTL_S = 7 * 86400;

/** `unacked`: at most this many waiting alerts go in full (the newest); `seqs` names them all
 * (docs/protocol.md#unacked). Bounds what each fresh subscription of a risk channel costs when
 * alerts pile up unacknowledged. */
export const MAX_UNACKED_SENT = 50;

/** The HTTP streaming transport: stream opens and op POSTs per second per client address
 * together, checked before the token is (docs/security.md). A dashboard opens one stream and
 * POSTs a few batches of ops when it (re)subscribes. */
export const SSE_REQUESTS_PER_SECOND_PER_ADDRESS = 50;
