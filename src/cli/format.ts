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

/** Breaks prose into lines of at most `width` characters (words longer than that stay whole). */
export function wrap(text: string, width = 96, indent = ''): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    if (line.length > 0 && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else line = line.length > 0 ? `${line} ${word}` : word;
  }
  if (line.length > 0) lines.push(indent + line);
  return lines.join('\n');
}

/** Writes one line to stdout. */
export function out(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Where progress goes: stderr, or a stand-in in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressOptions {
  /** On a terminal, text shown after the label and recomputed as time passes (a countdown). */
  readonly tick?: (elapsedMs: number) => string;
  readonly stream?: ProgressStream;
}

/**
 * Progress on stderr for work that takes more than a second: nothing if it finishes sooner,
 * a spinner on a terminal (with `tick`'s text, so a countdown moves every second), a single
 * line otherwise. Silent when `quiet` (--json).
 */
export async function withProgress<T>(
  label: string,
  quiet: boolean,
  work: Promise<T>,
  options: ProgressOptions = {},
): Promise<T> {
  if (quiet) return work;
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const frames = ['|', '/', '-', '\\'];
  const began = Date.now();
  let frame = 0;
  let shown = false;
  let spin: NodeJS.Timeout | undefined;
  const draw = () => {
    const extra = options.tick ? ` ${options.tick(Date.now() - began)}` : '';
    stream.write(`\r\x1b[K${frames[frame++ % frames.length] ?? ''} ${label}…${extra}`);
  };
  const start = setTimeout(() => {
    shown = true;
    if (!tty) {
      stream.write(`${label}…\n`);
      return;
    }
    draw();
    spin = setInterval(draw, 100);
  }, 1000);
  try {
    return await work;
  } finally {
    clearTimeout(start);
    if (spin) clearInterval(spin);
    if (shown && tty) stream.write('\r\x1b[K');
  }
}

/**
 * One line per step, for a command that runs several: `checking status… ok`. On a terminal
 * the label shows while the step runs and the outcome is added when it ends; elsewhere (logs,
 * pipes) the whole line is written when the step ends, so lines never interleave, and a step
 * that fails writes nothing (the command's one-line error says why). Nothing when `quiet`.
 */
export class Steps {
  private readonly stream: ProgressStream;
  private readonly quiet: boolean;
  private readonly tty: boolean;

  constructor(quiet: boolean, stream: ProgressStream = process.stderr) {
    this.stream = stream;
    this.quiet = quiet;
    this.tty = stream.isTTY === true;
  }

  /** Runs one step; `outcome` turns its result into the word after the dots (default ok). */
  async run<T>(label: string, work: () => Promise<T>, outcome?: (value: T) => string): Promise<T> {
    if (this.quiet) return work();
    if (this.tty) this.stream.write(`checking ${label}… `);
    try {
      const value = await work();
      const text = `${outcome ? outcome(value) : 'ok'}\n`;
      this.stream.write(this.tty ? text : `checking ${label}… ${text}`);
      return value;
    } catch (err) {
      if (this.tty) this.stream.write('failed\n');
      throw err;
    }
  }
}
