/** Output helpers of the operator commands: aligned tables, units, progress on stderr. */

/** Left-aligned text table with a header row; numbers are right-aligned. */
export function table(
  headers: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = headers.map((h, i) =>
    Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)),
  );
  const numeric = headers.map(
    (_h, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number'),
  );
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n');
}

/** Label/value pairs, labels padded to one column. */
export function pairs(entries: readonly (readonly [string, string])[]): string {
  const width = Math.max(0, ...entries.map(([k]) => k.length));
  return entries.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n');
}

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function ms(value: number): string {
  return `${round(value)} ms`;
}

export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Writes one line to stdout. */
export function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

/**
 * Progress on stderr for work that takes more than a second: nothing if it finishes sooner,
 * a spinner on a terminal, a single line otherwise. Silent when `quiet` (--json).
 */
export async function withProgress<T>(label: string, quiet: boolean, work: Promise<T>): Promise<T> {
  if (quiet) return work;
  const tty = process.stderr.isTTY === true;
  const frames = ['|', '/', '-', '\\'];
  let frame = 0;
  let shown = false;
  let spin: NodeJS.Timeout | undefined;
  const start = setTimeout(() => {
    shown = true;
    if (!tty) {
      process.stderr.write(`${label}…\n`);
      return;
    }
    spin = setInterval(() => {
      process.stderr.write(`\r${frames[frame++ % frames.length] ?? ''} ${label}…`);
    }, 100);
  }, 1000);
  try {
    return await work;
  } finally {
    clearTimeout(start);
    if (spin) clearInterval(spin);
    if (shown && tty) process.stderr.write('\r\x1b[K');
  }
}
