/**
 * How hard the fuzz suite tries. `FUZZ_RUNS` (300 by default, 20 000 under `npm run fuzz`)
 * is the number of runs of an ordinary property; each property scales it by its own cost, so
 * the whole directory stays fast in `npm test` and goes deep in `npm run fuzz`.
 * `FUZZ_SEED` replays a run (fast-check prints the seed of a failure).
 */
import type { Parameters } from 'fast-check';

export const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** Runs for a property costing `scale` times an ordinary one (at least 10). */
export function runs(scale = 1): number {
  return Math.max(10, Math.round(RUNS * scale));
}

/** fast-check parameters for a property costing `scale` times an ordinary one. */
export function params<T>(scale = 1): Parameters<T> {
  return { numRuns: runs(scale), ...(SEED !== undefined && { seed: SEED }) };
}

/** A vitest timeout that grows with the runs (a guard against hangs, not a timing check). */
export const TIMEOUT = 20_000 + RUNS * 50;
