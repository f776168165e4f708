/**
 * Logs are JSON lines: uppercase `level`, `message`, ISO `time`, the instance as `server`,
 * and context fields (DESIGN §6). Anything that looks like a token is redacted.
 */
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export const REDACTED_PATHS = [
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'adminTokens',
  'publishTokens',
  'jwtSecret',
];

export function createLogger(
  options: { level: string; server: string },
  destination?: DestinationStream,
): Logger {
  return pino(
    {
      level: options.level,
      messageKey: 'message',
      base: { server: options.server },
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      formatters: { level: (label) => ({ level: label.toUpperCase() }) },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    },
    destination,
  );
}
