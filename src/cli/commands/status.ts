/** `archon-ws status`: RB-003 Step 1 at a glance, then one row per instance. */
import type { Command } from 'commander';
import {
  adminRequest,
  CliError,
  Exit,
  expectFields,
  isObject,
  resolveTarget,
  type Target,
} from '../api.js';
import { action, targetOptions, type TargetOptions } from '../common.js';
import { mb, ms, out, pairs, round, table, withProgress } from '../format.js';

const SUMMARY = [
  'active_connections',
  'peak_connections',
  'errors_last_hour',
  'queue_depth',
  'broadcast_latency_p99_ms',
  'event_loop_lag_p99_ms',
] as const;

export interface InstanceRow {
  server: string;
  active_connections: number;
  queue_depth: number;
  broadcast_latency_p99_ms: number;
  healthy: boolean;
}

export interface StatusAnswer {
  mode: string;
  active_connections: number;
  peak_connections: number;
  errors_last_hour: number;
  queue_depth: number;
  broadcast_latency_p99_ms: number;
  event_loop_lag_p99_ms: number;
  max_connections: number | null;
  memory_rss_bytes: number | null;
  memory_heap_used_bytes: number | null;
  instances: InstanceRow[];
  missing_instances: string[];
}

/** GET /websocket/status, checked and reduced to what the operator reads. */
export async function fetchStatus(target: Target): Promise<StatusAnswer> {
  const body = await adminRequest(target, 'GET', '/websocket/status');
  const s = expectFields('status', body, SUMMARY);
  const memory = isObject(s.memory) ? s.memory : {};
  const num = (v: unknown) => (typeof v === 'number' ? v : null);
  if (!Array.isArray(s.instances))
    throw new CliError('bad answer from status: instances missing or not an array', Exit.badAnswer);
  const instances = s.instances.map((i: unknown) => {
    const inst = expectFields('status instance', i, [
      'active_connections',
      'queue_depth',
      'broadcast_latency_p99_ms',
    ] as const);
    return {
      server: typeof inst.server === 'string' ? inst.server : '?',
      active_connections: inst.active_connections,
      queue_depth: inst.queue_depth,
      broadcast_latency_p99_ms: inst.broadcast_latency_p99_ms,
      healthy: inst.healthy === true,
    };
  });
  const missing = Array.isArray(s.missing_instances)
    ? s.missing_instances.filter((m): m is string => typeof m === 'string')
    : [];
  return {
    mode: typeof s.mode === 'string' ? s.mode : 'unknown',
    active_connections: s.active_connections,
    peak_connections: s.peak_connections,
    errors_last_hour: s.errors_last_hour,
    queue_depth: s.queue_depth,
    broadcast_latency_p99_ms: s.broadcast_latency_p99_ms,
    event_loop_lag_p99_ms: s.event_loop_lag_p99_ms,
    max_connections: num(s.max_connections),
    memory_rss_bytes: num(memory.rss_bytes),
    memory_heap_used_bytes: num(memory.heap_used_bytes),
    instances,
    missing_instances: missing,
  };
}

export function registerStatus(program: Command): void {
  targetOptions(
    program
      .command('status')
      .description('RB-003 Step 1: connections vs peak, errors, queue, latency, memory, instances'),
  ).action(
    action(async (options: TargetOptions) => {
      const target = resolveTarget(options);
      const json = options.json === true;
      const s = await withProgress(`asking ${target.url}`, json, fetchStatus(target));
      if (json) {
        out(JSON.stringify(s, null, 2));
        return;
      }
      const pct =
        s.peak_connections > 0
          ? ` (${Math.round((s.active_connections / s.peak_connections) * 100)} % of peak)`
          : '';
      const memory =
        s.memory_rss_bytes === null
          ? 'unknown'
          : `${mb(s.memory_rss_bytes)} rss${s.memory_heap_used_bytes === null ? '' : `, ${mb(s.memory_heap_used_bytes)} heap used`}`;
      out(`${target.url} (${s.mode})`);
      out(
        pairs([
          [
            'active connections',
            `${s.active_connections}${s.max_connections === null ? '' : ` / ${s.max_connections} max`}`,
          ],
          ['peak today', `${s.peak_connections}${pct}`],
          ['errors last hour', String(s.errors_last_hour)],
          ['queue depth', String(s.queue_depth)],
          ['broadcast p99', ms(s.broadcast_latency_p99_ms)],
          ['memory', memory],
          ['event-loop lag p99', ms(s.event_loop_lag_p99_ms)],
        ]),
      );
      out('');
      out(
        table(
          ['SERVER', 'ACTIVE', 'QUEUE', 'P99 MS', 'HEALTHY'],
          s.instances.map((i) => [
            i.server,
            i.active_connections,
            i.queue_depth,
            round(i.broadcast_latency_p99_ms),
            i.healthy ? 'yes' : 'NO',
          ]),
        ),
      );
      out(
        `missing instances: ${s.missing_instances.length === 0 ? 'none' : s.missing_instances.join(', ')}`,
      );
    }),
  );
}
