/** `archon-ws status`: RB-003 Step 1 at a glance, then one row per instance. */
import type { Command } from 'commander';
import type { StatusAnswer } from '../../protocol/index.js';
import {
  adminRequest,
  CliError,
  Exit,
  expectFields,
  isObject,
  numberOrNull,
  resolveTarget,
  type Target,
} from '../api.js';
import { action, targetOptions, type TargetOptions } from '../common.js';
import { mb, ms, out, pairs, round, table, withProgress } from '../format.js';

export interface InstanceSummary {
  server: string;
  active_connections: number;
  peak_connections: number;
  /** null when the instance did not say (missing instances report 0). */
  max_connections: number | null;
  queue_depth: number;
  broadcast_latency_p99_ms: number;
  event_loop_lag_p99_ms: number;
  memory_rss_bytes: number | null;
  uptime_seconds: number | null;
  draining: boolean;
  /** null in an answer without the field. */
  backplane_healthy: boolean | null;
  backplane_kind: string | null;
  healthy: boolean;
}

/** The figures every status answer must carry (checked by parseStatus). */
const SUMMARY = [
  'active_connections',
  'peak_connections',
  'errors_last_hour',
  'queue_depth',
  'broadcast_latency_p99_ms',
  'event_loop_lag_p99_ms',
] as const;

export interface StatusSummary extends Pick<StatusAnswer, (typeof SUMMARY)[number]> {
  mode: string;
  max_connections: number | null;
  memory_rss_bytes: number | null;
  memory_heap_used_bytes: number | null;
  instances: InstanceSummary[];
  missing_instances: string[];
  cluster_error: string | null;
}

/** GET …/websocket/status, checked: every field the diagnosis reads. */
export function parseStatus(body: unknown): StatusSummary {
  const s = expectFields('status', body, SUMMARY);
  if (!Array.isArray(s.instances))
    throw new CliError('bad answer from status: instances missing or not an array', Exit.badAnswer);
  const instances = s.instances.map((raw: unknown): InstanceSummary => {
    const i = expectFields('status instance', raw, [
      'active_connections',
      'queue_depth',
      'broadcast_latency_p99_ms',
    ] as const);
    const memory = isObject(i.memory) ? i.memory : {};
    const backplane = isObject(i.backplane) ? i.backplane : null;
    return {
      server: typeof i.server === 'string' ? i.server : '?',
      active_connections: i.active_connections,
      peak_connections: numberOrNull(i.peak_connections) ?? 0,
      max_connections: numberOrNull(i.max_connections) || null,
      queue_depth: i.queue_depth,
      broadcast_latency_p99_ms: i.broadcast_latency_p99_ms,
      event_loop_lag_p99_ms: numberOrNull(i.event_loop_lag_p99_ms) ?? 0,
      memory_rss_bytes: numberOrNull(memory.rss_bytes) || null,
      uptime_seconds: numberOrNull(i.uptime_seconds),
      draining: i.draining === true,
      backplane_healthy:
        backplane && typeof backplane.healthy === 'boolean' ? backplane.healthy : null,
      backplane_kind: backplane && typeof backplane.kind === 'string' ? backplane.kind : null,
      healthy: i.healthy === true,
    };
  });
  const memory = isObject(s.memory) ? s.memory : {};
  return {
    mode: typeof s.mode === 'string' ? s.mode : 'unknown',
    active_connections: s.active_connections,
    peak_connections: s.peak_connections,
    errors_last_hour: s.errors_last_hour,
    queue_depth: s.queue_depth,
    broadcast_latency_p99_ms: s.broadcast_latency_p99_ms,
    event_loop_lag_p99_ms: s.event_loop_lag_p99_ms,
    max_connections: numberOrNull(s.max_connections) || null,
    memory_rss_bytes: numberOrNull(memory.rss_bytes) || null,
    memory_heap_used_bytes: numberOrNull(memory.heap_used_bytes) || null,
    instances,
    missing_instances: Array.isArray(s.missing_instances)
      ? s.missing_instances.filter((m): m is string => typeof m === 'string')
      : [],
    cluster_error: typeof s.cluster_error === 'string' ? s.cluster_error : null,
  };
}

/** GET /websocket/status, checked field by field. */
export async function fetchStatus(target: Target): Promise<StatusSummary> {
  return parseStatus(await adminRequest(target, 'GET', '/websocket/status'));
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
