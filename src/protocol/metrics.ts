/**
 * Label values of the gateway's metrics (docs/metrics.md), defined once: the gateway creates
 * every series at 0 from these (a dashboard shows 0, not "no data", before the first error),
 * and doctor and the alert rules read them by the same names.
 */
import { ERRORS, type ErrorCode } from './errors.js';

/** `type` of archon_websocket_errors_total: every catalogue code, plus socket-level events
 * that have no code of their own. */
export const SOCKET_ERROR_TYPES = ['send_failed', 'socket_error'] as const;
export type ErrorType = ErrorCode | (typeof SOCKET_ERROR_TYPES)[number];
export const ERROR_TYPES: readonly ErrorType[] = [
  ...(Object.keys(ERRORS) as ErrorCode[]),
  ...SOCKET_ERROR_TYPES,
];

/** `reason` of archon_websocket_connections_rejected_total. */
export const REJECT_REASONS = [
  'not_found',
  'bad_request',
  'draining',
  'origin',
  'capacity',
  'per_ip',
  'per_user',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

/** `result` of archon_websocket_recoveries_total. */
export const RECOVERY_RESULTS = ['recovered', 'not_recovered'] as const;
export type RecoveryResult = (typeof RECOVERY_RESULTS)[number];
