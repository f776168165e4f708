/** The operator's test endpoint, /api/v1/ws/test: limits the gateway and the tools share. */

/** Seconds a test connection stays open without `?hold=`. */
export const TEST_LIFETIME_S = 60;
/** The longest `?hold=<seconds>` the gateway accepts. */
export const TEST_MAX_HOLD_S = 300;
/**
 * Test connections held longer than TEST_LIFETIME_S open at once on one instance. The
 * endpoint is unauthenticated: the bound keeps anyone from filling its slots for minutes;
 * the ordinary one-minute test stays available.
 */
export const TEST_MAX_LONG_HOLDS = 10;
/**
 * Close reasons the test endpoint sends itself, so `archon-ws check-lb` can tell the
 * gateway's own close from one sent by something in between. The time limit is followed by
 * ` (<seconds> s)`.
 */
export const TEST_CLOSE_REASONS = {
  /** 1000, at the end of the test connection's lifetime (60 s, or `?hold=`). */
  timeLimit: 'test connection time limit',
  /** 1001, the gateway shutting down. */
  shutdown: 'server shutting down',
  /** 1008, echoes asked for faster than the endpoint allows. */
  rateLimited: 'rate limited',
} as const;
