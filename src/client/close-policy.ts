/** What the client does after a close, from the shared table in src/protocol/close-codes.ts. */
import { closeAction, type CloseAction } from '../protocol/index.js';

/** The WebSocket layer's own protocol failures: a retry sends the same thing again. */
const FRAMING_ERRORS = new Set([1002, 1007]);

export function closePolicy(code: number): CloseAction {
  // docs/protocol.md: treat 1002 (malformed frame) and 1007 (invalid UTF-8) like 4400.
  if (FRAMING_ERRORS.has(code)) return 'stop';
  return closeAction(code);
}
