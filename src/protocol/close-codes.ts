/**
 * WebSocket close codes (docs/protocol.md#close-codes) with what a client should do on each.
 * Server and SDK share this table so they cannot disagree about the policy.
 */

export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  /** Never sent: what a client sees when the connection is cut without a close frame. */
  abnormal: 1006,
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
  { code: CloseCode.normal, name: 'normal', meaning: 'normal closure', action: 'stop' },
  {
    code: CloseCode.goingAway,
    name: 'going away',
    meaning: 'server going away',
    action: 'reconnect',
  },
  {
    code: CloseCode.abnormal,
    name: 'abnormal',
    meaning: 'connection lost without a close frame (network, crash)',
    action: 'reconnect',
  },
  {
    code: CloseCode.policy,
    name: 'policy',
    meaning: 'policy violation: origin not allowed or inbound rate limit exceeded',
    action: 'backoff',
  },
  {
    code: CloseCode.tooBig,
    name: 'too big',
    meaning: 'inbound message larger than allowed',
    action: 'stop',
  },
  {
    code: CloseCode.internal,
    name: 'internal',
    meaning: 'internal server error',
    action: 'reconnect',
  },
  {
    code: CloseCode.restarting,
    name: 'restarting',
    meaning: 'server restarting: reconnect with jitter',
    action: 'reconnect',
  },
  {
    code: CloseCode.atCapacity,
    name: 'at capacity',
    meaning: 'server at capacity: back off',
    action: 'backoff',
  },
  {
    code: CloseCode.unauthorized,
    name: 'unauthorized',
    meaning: 'token missing, invalid or expired: refresh, then reconnect',
    action: 'refresh-token',
  },
  {
    code: CloseCode.forbidden,
    name: 'forbidden',
    meaning: 'forbidden: do not retry',
    action: 'stop',
  },
  {
    code: CloseCode.slowConsumer,
    name: 'slow consumer',
    meaning: 'client could not keep up: reconnect and recover with since',
    action: 'reconnect',
  },
  {
    code: CloseCode.noPong,
    name: 'no pong',
    meaning: 'no pong within the ping timeout',
    action: 'reconnect',
  },
  {
    code: CloseCode.operatorCleanup,
    name: 'operator cleanup',
    meaning: 'closed by an operator cleanup (dead or stuck connection)',
    action: 'reconnect',
  },
  {
    code: CloseCode.protocolError,
    name: 'protocol error',
    meaning: 'protocol error: do not retry',
    action: 'stop',
  },
];

export function closeAction(code: number): CloseAction {
  return CLOSE_CODES.find((c) => c.code === code)?.action ?? 'reconnect';
}
