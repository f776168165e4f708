/**
 * Logs are JSON lines: uppercase `level`, `message`, ISO `time`, the instance as `server`,
 * and context fields (docs/metrics.md#logs). Anything that looks like a token is redacted.
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

type Level = 'info' | 'warn' | 'error';

/**
 * Log lines that outside input can cause (refused upgrades, failed hellos, client errors)
 * go through this: at most `perWindow` lines of one message per window, so a flood of bad
 * input cannot turn into a flood of log writes. The next line after a window says how many
 * were left out; the metrics count every one.
 */
export class LogLimiter {
  private readonly windows = new Map<
    string,
    { start: number; count: number; suppressed: number }
  >();

  constructor(
    private readonly log: Logger,
    private readonly perWindow = 20,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  info(fields: object, message: string): void {
    this.write('info', fields, message);
  }

  warn(fields: object, message: string): void {
    this.write('warn', fields, message);
  }

  error(fields: object, message: string): void {
    this.write('error', fields, message);
  }

  private write(level: Level, fields: object, message: string): void {
    const now = this.now();
    let window = this.windows.get(message);
    if (!window || now - window.start >= this.windowMs) {
      const suppressed = window?.suppressed ?? 0;
      window = { start: now, count: 0, suppressed: 0 };
      this.windows.set(message, window);
      if (suppressed > 0) {
        this.log[level](
          { ...fields, suppressed, suppressed_window_s: this.windowMs / 1000 },
          `${message} (${suppressed} more like it were not logged)`,
        );
        window.count++;
        return;
      }
    }
    if (window.count < this.perWindow) {
      window.count++;
      this.log[level](fields, message);
    } else {
      window.suppressed++;
    }
  }
}
