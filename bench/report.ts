/**
 * Reporting helpers of the benchmark scripts: fixed digits, right-aligned tables, medians,
 * the wait for a quiet machine before a run, the environment of a results file and the file
 * itself (bench/results/, gitignored).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { machineCpu, sleep } from './measure.ts';
import { BENCH, ROOT, distBuilt } from './servers.ts';

/** x with d digits, or — when there is none. */
export const fx = (x: number | null | undefined, d = 2): string =>
  x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toFixed(d);

/** A column of a table: its head, its width and its cell of a row. */
export type Column<R> = readonly [head: string, width: number, cell: (row: R) => string | number];

/** A table of right-aligned cells: one line of heads, then one per row. */
export function table<R>(columns: readonly Column<R>[], rows: readonly R[]): string {
  const line = (cells: (string | number)[]): string =>
    cells.map((c, i) => String(c).padStart(columns[i]?.[1] ?? 0)).join(' ');
  return [
    line(columns.map((c) => c[0])),
    ...rows.map((r) => line(columns.map((c) => c[2](r)))),
  ].join('\n');
}

/** Median of the finite numbers of xs; null when there is none. */
export function median(xs: readonly (number | null | undefined)[]): number | null {
  const v = xs
    .filter((x): x is number => typeof x === 'number' && Number.isFinite(x))
    .sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? (v[m] ?? null) : ((v[m - 1] ?? 0) + (v[m] ?? 0)) / 2;
}

/** How many different dist/ builds the runs of `rounds` used. */
export function buildsUsed(
  rounds: readonly { runs: Record<string, { distBuilt: string | null } | undefined> }[],
): number {
  return new Set(
    rounds.flatMap((r) => Object.values(r.runs).map((x) => x?.distBuilt)).filter(Boolean),
  ).size;
}

/**
 * Waits (at most quietWait s) until the machine is quieter than quietBelow of all cores over
 * 1 s, so that other tenants' bursts (builds, tests) disturb the runs less; null at once when
 * quietWait is 0.
 */
export async function waitQuiet(
  { quietWait: maxWait, quietBelow: below }: { quietWait: number; quietBelow: number },
  log: (line: string) => void,
): Promise<{ waitedSeconds: number; busyBefore: number | null } | null> {
  if (!(maxWait > 0)) return null;
  const t0 = Date.now();
  for (;;) {
    const a = machineCpu();
    await sleep(1000);
    const b = machineCpu();
    const busy = a && b ? (b.busy - a.busy) / Math.max(1, b.total - a.total) : null;
    const waited = (Date.now() - t0) / 1000;
    if (busy === null || busy < below || waited >= maxWait) {
      if (waited > 1.5 || (busy !== null && busy >= below)) {
        log(
          `  machine ${fx((busy ?? 0) * 100, 0)} % busy after waiting ${waited.toFixed(0)} s for quiet`,
        );
      }
      return { waitedSeconds: waited, busyBefore: busy };
    }
  }
}

/** The machine, Node, the commit and the dist/ build, for the results file; `extra` added. */
export function environment(extra: Record<string, unknown> = {}): {
  node: string;
  cpus: number;
  cpuModel: string | null;
  commit: string | null;
  [key: string]: unknown;
} {
  let commit: string | null = null;
  try {
    commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    /* no commit yet */
  }
  return {
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? null,
    loadavg: os.loadavg(),
    memGb: os.totalmem() / 2 ** 30,
    commit,
    // When the gateway under test (dist/) was built: the source may have moved on since.
    distBuilt: distBuilt(),
    ...extra,
  };
}

/** Writes `result` to bench/results/<prefix><started>.json and prints the file's path. */
export function saveResults(prefix: string, started: Date, result: unknown): void {
  const dir = path.join(BENCH, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${prefix}${started.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`results: ${path.relative(ROOT, file)}\n`);
}
