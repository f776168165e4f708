/**
 * What the benchmarks measure with, in every process: the wall clock, the latency histogram,
 * the CPU and memory of processes and of the machine (Linux /proc), the kernel's TCP
 * counters, and a process's own CPU and event-loop utilization over a window. The columns
 * these feed are explained in bench/README.md.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { setTimeout } from 'node:timers';

/** High-resolution wall clock in ms, comparable across processes on this machine. */
export const now = (): number => performance.timeOrigin + performance.now();
export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));
export const sleepUntil = (t: number): Promise<void> => sleep(Math.max(0, t - now()));

export type Counts = Record<string, number>;
/** Adds one to counts[key]. */
export const count = (counts: Counts, key: string): number =>
  (counts[key] = (counts[key] ?? 0) + 1);
/** The sum of several counts, key by key. */
export function mergeCounts(list: readonly (Counts | null | undefined)[]): Counts {
  const out: Counts = {};
  for (const o of list) for (const [k, v] of Object.entries(o ?? {})) out[k] = (out[k] ?? 0) + v;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: 10 µs buckets below 100 ms, 1 ms buckets from 100 ms to 60 s.
const FINE_BUCKETS = 10_000; // 0..100 ms by 10 µs
export const HIST_SIZE = FINE_BUCKETS + 59_900 + 1; // + 100 ms..60 s by 1 ms, + overflow
/** The bucket of a latency in ms (record with `hist[histIndex(ms)]++`). */
export function histIndex(ms: number): number {
  if (ms < 100) return ms <= 0 ? 0 : Math.floor(ms * 100);
  const i = FINE_BUCKETS + Math.floor(ms - 100);
  return i < HIST_SIZE - 1 ? i : HIST_SIZE - 1;
}
function histValue(i: number): number {
  return i < FINE_BUCKETS ? (i + 0.5) / 100 : 100 + (i - FINE_BUCKETS) + 0.5;
}
/** Percentiles (ms) of a merged histogram: the total, and the value at each quantile. */
export function percentiles(
  hist: Uint32Array,
  qs: readonly number[],
): { total: number } & Record<number, number | null> {
  let total = 0;
  for (const n of hist) total += n;
  const out: { total: number } & Record<number, number | null> = { total };
  for (const q of qs) {
    out[q] = null;
    if (total === 0) continue;
    const rank = Math.max(1, Math.ceil(q * total));
    let cum = 0;
    for (let i = 0; i < hist.length; i++) {
      cum += hist[i] ?? 0;
      if (cum >= rank) {
        out[q] = histValue(i);
        break;
      }
    }
  }
  return out;
}
/** The sum of the histograms `key` of the workers' results. */
export function mergeHist<K extends string>(
  results: readonly Record<K, Uint32Array>[],
  key: K,
): Uint32Array {
  const hist = new Uint32Array(HIST_SIZE);
  for (const r of results) {
    const h = r[key];
    for (let i = 0; i < HIST_SIZE; i++) hist[i] = (hist[i] ?? 0) + (h[i] ?? 0);
  }
  return hist;
}

export interface LatencyFigures {
  count: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number;
  mean: number | null;
}
/** Latency figures (ms) of a merged histogram, with the workers' latencyMax and latencySum. */
export function latencyFigures(
  hist: Uint32Array,
  results: readonly { latencyMax: number; latencySum: number }[],
): LatencyFigures {
  const p = percentiles(hist, [0.5, 0.9, 0.99, 0.999]);
  return {
    count: p.total,
    p50: p[0.5] ?? null,
    p90: p[0.9] ?? null,
    p99: p[0.99] ?? null,
    p999: p[0.999] ?? null,
    max: Math.max(...results.map((r) => r.latencyMax)),
    mean: p.total ? results.reduce((a, r) => a + r.latencySum, 0) / p.total : null,
  };
}
/** The value at quantile q of a sorted array; null when it is empty. */
export function quantile(sorted: readonly number[], q: number): number | null {
  return sorted.length
    ? (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? null)
    : null;
}

// ---------------------------------------------------------------------------------------------
// /proc sampling (Linux).
let clkTck = 0;
function clockTicks(): number {
  if (!clkTck) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

export interface CpuTimes {
  user: number;
  sys: number;
}
/** {user, sys} CPU seconds of a process (all its threads) from /proc; null if it is gone. */
export function procCpuTimes(pid: number): CpuTimes | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)" start at field 3 (state); utime is field 14, stime field 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / clockTicks(), sys: Number(f[12]) / clockTicks() };
  } catch {
    return null;
  }
}
/** utime+stime of a process (all its threads), in seconds; null if it is gone. */
export function procCpuSeconds(pid: number): number | null {
  const t = procCpuTimes(pid);
  return t ? t.user + t.sys : null;
}
/** Resident memory of a process in MB; null if it is gone. */
export function procRssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

export interface MachineCpu {
  busy: number;
  softirq: number;
  steal: number;
  total: number;
}
/** Whole-machine CPU jiffies {busy, softirq, steal, total} from /proc/stat. */
export function machineCpu(): MachineCpu | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    // user nice system idle iowait irq softirq steal
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] =
      line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = user + nice + system + idle + iowait + irq + softirq + steal;
    return { busy: total - idle - iowait, softirq: irq + softirq, steal, total };
  } catch {
    return null;
  }
}

export interface MachineWindow {
  busy: number | null;
  cores: number;
  irqCores: number | null;
  stealCores: number | null;
  selfCores: number;
  otherCores: number | null;
  contended: boolean;
}
/** A sample of the machine and of this process's own CPU, at one end of a window. */
export interface MachineSample {
  machine: MachineCpu | null;
  self: NodeJS.CpuUsage;
}
/**
 * The machine over the window between samples sA and sB: busy fraction; interrupt (softirq),
 * steal and this process's CPU in cores; `otherCores`, CPU used by anything but those, this
 * process and the `measuredCores` (other tenants, kernel threads; approximate: the kernel
 * counts the machine and the processes differently); `contended` when other > 0.25 core or
 * the machine > 95 % busy.
 */
export function machineWindow(
  sA: MachineSample,
  sB: MachineSample,
  windowSeconds: number,
  measuredCores: number,
): MachineWindow {
  const cores = os.cpus().length;
  const a = sA.machine;
  const b = sB.machine;
  const share = (key: keyof MachineCpu): number | null =>
    a && b ? (b[key] - a[key]) / Math.max(1, b.total - a.total) : null;
  const busy = share('busy');
  const irqCores = busy === null ? null : (share('softirq') ?? 0) * cores;
  const stealCores = busy === null ? null : (share('steal') ?? 0) * cores;
  const selfCores =
    (sB.self.user - sA.self.user + sB.self.system - sA.self.system) / 1e6 / windowSeconds;
  const otherCores =
    busy === null
      ? null
      : busy * cores - (irqCores ?? 0) - (stealCores ?? 0) - measuredCores - selfCores;
  const contended = (otherCores !== null && otherCores > 0.25) || (busy !== null && busy > 0.95);
  return { busy, cores, irqCores, stealCores, selfCores, otherCores, contended };
}

export interface TcpCounters {
  listenOverflows: number | null;
  listenDrops: number | null;
  synRetrans: number | null;
}
/**
 * Machine-wide TCP counters (/proc/net/netstat TcpExt) that explain stalled connects: a full
 * listen queue drops SYNs, and the client retries after 1 s, 3 s, 7 s…
 */
export function tcpExt(): TcpCounters | null {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('TcpExt:'));
    const keys = (lines[0] ?? '').split(/\s+/);
    const values = (lines[1] ?? '').split(/\s+/).map(Number);
    const get = (k: string): number | null => values[keys.indexOf(k)] ?? null;
    return {
      listenOverflows: get('ListenOverflows'),
      listenDrops: get('ListenDrops'),
      synRetrans: get('TCPSynRetrans'),
    };
  } catch {
    return null;
  }
}
/** b − a, counter by counter; null unless both were read. */
export function tcpDelta(a: TcpCounters | null, b: TcpCounters | null): TcpCounters | null {
  if (!a || !b) return null;
  const d = (k: keyof TcpCounters): number | null => {
    const x = a[k];
    const y = b[k];
    return x === null || y === null ? null : y - x;
  };
  return {
    listenOverflows: d('listenOverflows'),
    listenDrops: d('listenDrops'),
    synRetrans: d('synRetrans'),
  };
}

// ---------------------------------------------------------------------------------------------
export interface WindowStats {
  elu: number;
  cpuCores: number;
  sysShare: number;
}
/** CPU (cores, system share) and event-loop utilization of this process over a window. */
export function windowMarks(): { stats: WindowStats | null; start(): void; end(): void } {
  let mark: {
    elu: ReturnType<typeof performance.eventLoopUtilization>;
    cpu: NodeJS.CpuUsage;
    t: number;
  } | null = null;
  const marks = {
    stats: null as WindowStats | null,
    start() {
      mark = { elu: performance.eventLoopUtilization(), cpu: process.cpuUsage(), t: now() };
    },
    end() {
      if (!mark) return;
      const secs = (now() - mark.t) / 1000;
      const cpu = process.cpuUsage(mark.cpu);
      marks.stats = {
        elu: performance.eventLoopUtilization(mark.elu).utilization,
        cpuCores: (cpu.user + cpu.system) / 1e6 / secs,
        sysShare: cpu.system / Math.max(1, cpu.user + cpu.system),
      };
    },
  };
  return marks;
}
