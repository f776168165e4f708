/**
 * Measurement probe preloaded into every measured server (`node --import bench/probe.ts …`;
 * Node strips its types, so nothing else is loaded into the measured process): the gateway,
 * the bare and frame-once servers and Socket.IO are measured the same way, from inside their
 * own process, without code of theirs.
 *
 * - Event-loop lag: a 10 ms timer, re-armed after each run; its lateness (actual − expected)
 *   is one sample. A fan-out turn that holds the loop for 40 ms shows as a 40 ms sample.
 * - Memory: process.memoryUsage() and the size of V8's young generation (new space).
 *
 * It answers on its own loopback port (BENCH_PROBE_PORT; without it the probe does nothing):
 *   GET /stats          → {lag: {samples, p50, p99, max} (ms), rss, heapUsed, heapTotal,
 *                          external, arrayBuffers, newSpace (bytes), spaces: {<V8 heap space>:
 *                          {size, used} (bytes)}}
 *   GET /stats?reset=1  → the same, then lag samples start again (the start of a window).
 * The timer and the listening socket are unref'd: the server exits as if the probe were absent.
 */
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout } from 'node:timers';
import v8 from 'node:v8';

const port = Number(process.env.BENCH_PROBE_PORT);
const INTERVAL_MS = 10;
/** At most 10 minutes of samples at one per 10 ms; beyond that the oldest are overwritten. */
const samples = new Float64Array(60_000);
let count = 0;

/** What GET /stats answers. */
export interface ProbeStats {
  /** Event-loop lag over the window, ms. */
  lag: { samples: number; p50: number | null; p99: number | null; max: number | null };
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  newSpace: number;
  spaces: Record<string, { size: number; used: number }>;
}

function tick(expected: number): void {
  const late = performance.now() - expected;
  samples[count++ % samples.length] = Math.max(0, late);
  arm();
}
function arm(): void {
  const expected = performance.now() + INTERVAL_MS;
  setTimeout(tick, INTERVAL_MS, expected).unref();
}

function lag(): ProbeStats['lag'] {
  const n = Math.min(count, samples.length);
  const sorted = samples.slice(0, n).sort();
  const at = (q: number): number | null =>
    n ? (sorted[Math.min(n - 1, Math.floor(n * q))] ?? null) : null;
  return { samples: n, p50: at(0.5), p99: at(0.99), max: n ? (sorted[n - 1] ?? null) : null };
}

function stats(): ProbeStats {
  const m = process.memoryUsage();
  const spaces = v8.getHeapSpaceStatistics();
  const newSpace = spaces.find((s) => s.space_name === 'new_space');
  return {
    lag: lag(),
    rss: m.rss,
    heapUsed: m.heapUsed,
    heapTotal: m.heapTotal,
    external: m.external,
    arrayBuffers: m.arrayBuffers,
    newSpace: newSpace?.space_size ?? 0,
    // Per V8 space: what it holds (size) and what is live in it (used); old space holding
    // far more than it uses is fragmentation.
    spaces: Object.fromEntries(
      spaces.map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]),
    ),
  };
}

if (Number.isInteger(port) && port > 0) {
  arm();
  const server = http.createServer((req, res) => {
    const body = JSON.stringify(stats());
    if (req.url?.includes('reset=1')) count = 0;
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  server.listen(port, '127.0.0.1');
  server.unref();
}
