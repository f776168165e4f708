/**
 * WebSocket close codes (docs/protocol.md#close-codes) with what a client should do on each.
 * Server and SDK share this table so they cannot disagree about the policy.
 */

export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  restarting: 1012,
  atCapacity: 1013,
  unauthorized: 4001,
  forbidden: 4003,
  slowConsumer: 4008,
  noPong: 4009,
  operatorCleanup: 4010,
  protocolError: 4400,
} as const;

export type CloseCodeName = keyof typeof CloseCode;
export type CloseCodeValue = (typeof CloseCode)[CloseCodeName];

/** What the client does after a close: reconnect, refresh its token first, or stop. */
export type CloseAction = 'reconnect' | 'backoff' | 'refresh-token' | 'stop';

export interface CloseCodeInfo {
  readonly code: number;
  readonly name: string;
  readonly meaning: string;
  readonly action: CloseAction;
}

export const CLOSE_CODES: readonly CloseCodeInfo[] = [
  { code: 1000, name: 'normal', meaning: 'normal closure', action: 'stop' },
  { code: 1001, name: 'going away', meaning: 'server going away', action: 'reconnect' },
  {
    code: 1006,
    name: 'abnormal',
    meaning: 'connection lost without a close frame (network, crash)',
    action: 'reconnect',
  },
  {
    code: 1008,
    name: 'policy',
    meaning: 'policy violation: origin not allowed or inbound rate limit exceeded',
    action: 'backoff',
  },
  { code: 1009, name: 'too big', meaning: 'inbound message larger than allowed', action: 'stop' },
  { code: 1011, name: 'internal', meaning: 'internal server error', action: 'reconnect' },
  {
    code: 1012,
    name: 'restarting',
    meaning: 'server restarting: reconnect with jitter',
    action: 'reconnect',
  },
  { code: 1013, name: 'at capacity', meaning: 'server at capacity: back off', action: 'backoff' },
  {
    code: 4001,
    name: 'unauthorized',
    meaning: 'token missing, invalid or expired: refresh, then reconnect',
    action: 'refresh-token',
  },
  { code: 4003, name: 'forbidden', meaning: 'forbidden: do not retry', action: 'stop' },
  {
    code: 4008,
    name: 'slow consumer',
    meaning: 'client could not keep up: reconnect and recover with since',
    action: 'reconnect',
  },
  { code: 4009, name: 'no pong', meaning: 'no pong within the ping timeout', action: 'reconnect' },
  {
    code: 4010,
    name: 'operator cleanup',
    meaning: 'closed by an operator cleanup (dead or stuck connection)',
    action: 'reconnect',
  },
  { code: 4400, name: 'protocol error', meaning: 'protocol error: do not retry', action: 'stop' },
];

export function closeAction(code: number): CloseAction {
  return CLOSE_CODES.find((c) => c.code === code)?.action ?? 'reconnect';
}
