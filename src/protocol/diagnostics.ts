/** The operator's test endpoint, /api/v1/ws/test: limits the gateway and the tools share. */

/** Seconds a test connection stays open without `?hold=`. */
export const TEST_LIFETIME_S = 60;
/** The longest `?hold=<seconds>` the gateway accepts. */
export const TEST_MAX_HOLD_S = 300;
