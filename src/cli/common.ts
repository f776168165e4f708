/** What every operator command shares: --url/--token/--json and the error-to-exit-code wrapper. */
import type { Command } from 'commander';
import { CliError, Exit, type TargetOptions } from './api.js';

export function targetOptions(cmd: Command, withToken = true): Command {
  cmd.option('--url <url>', 'gateway base URL (default: $ARCHON_URL)');
  if (withToken) cmd.option('--token <token>', 'admin token (default: $ADMIN_TOKEN)');
  return cmd.option('--json', 'print JSON for scripts instead of tables');
}

/** Runs a command body: a CliError prints one line on stderr and sets its exit code. */
export function action<A extends unknown[]>(
  body: (...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      const code = await body(...args);
      process.exitCode = code ?? Exit.ok;
    } catch (err) {
      if (err instanceof CliError) {
        process.stderr.write(`archon-ws: ${err.message}\n`);
        process.exitCode = err.exitCode;
        return;
      }
      const message = err instanceof Error ? err.message : String(err);
      process.stderr.write(`archon-ws: unexpected failure: ${message}\n`);
      process.exitCode = Exit.badAnswer;
    }
  };
}

/** Parses a whole number in [min, max]; exit 2 otherwise. */
export function intOption(name: string, raw: string, min: number, max: number): number {
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(n) || n < min || n > max)
    throw new CliError(
      `${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`,
      Exit.usage,
    );
  return n;
}

export interface DurationBounds {
  /** Smallest value allowed, ms (default 1 ms). */
  readonly minMs?: number;
  /** Largest value allowed, ms (default 1 h). */
  readonly maxMs?: number;
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration as written in a message: the largest unit that divides it. */
export function durationText(ms: number): string {
  for (const unit of ['h', 'm', 's'] as const) {
    const size = UNIT_MS[unit] ?? 1;
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Parses a duration: plain seconds, or with ms/s/m/h, within bounds (1 ms to 1 h unless
 * told otherwise: beyond that a timer would overflow or wait for ever); exit 2 otherwise.
 * Returns milliseconds.
 */
export function durationOption(name: string, raw: string, bounds: DurationBounds = {}): number {
  const { minMs = 1, maxMs = 3_600_000 } = bounds;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m)
    throw new CliError(
      `${name} must be a duration like 30s, 10m or 600 (got ${JSON.stringify(raw)})`,
      Exit.usage,
    );
  const value = Number(m[1]) * (UNIT_MS[m[2] ?? 's'] ?? 1000);
  if (!Number.isFinite(value) || value < minMs || value > maxMs)
    throw new CliError(
      `${name} must be from ${durationText(minMs)} to ${durationText(maxMs)} (got ${JSON.stringify(raw)})`,
      Exit.usage,
    );
  return value;
}

export type { TargetOptions };
