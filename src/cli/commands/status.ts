/** `archon-ws status`: RB-003 Step 1 at a glance, then one row per instance. */
import type { Command } from 'commander';
import { admin, resolveTarget, type AdminRead, type Target } from '../api.js';
import { action, targetOptions, type TargetOptions } from '../common.js';
import { mb, ms, out, pairs, round, table, withProgress } from '../format.js';

/** The status answer as read (docs/http-api.md#get-apiv1adminwebsocketstatus). */
export type Status = AdminRead<'/websocket/status'>;
export type Instance = Status['instances'][number];

/** GET /websocket/status, read through its schema (exit 5 when it does not fit). */
export function fetchStatus(target: Target): Promise<Status> {
  return admin(target, 'GET', '/websocket/status');
}

/** The instances that answered: cluster mode lists the missing ones too, with zeros. */
export function liveInstances(s: Status): Instance[] {
  const missing = new Set(s.missing_instances);
  return s.instances.filter((i) => !missing.has(i.server));
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
      const missing = s.missing_instances;
      const sse = s.sse_connections ?? 0;
      out(`${target.url} (${s.mode})`);
      out(
        pairs([
          ['active connections', `${s.active_connections} / ${s.max_connections} max`],
          // Shown when there are any: a sign of RB-003 Step 4 (older gateways do not send it).
          ...(sse > 0
            ? ([
                [
                  'sse connections',
                  `${sse} of ${s.active_connections}, on the HTTP streaming fallback: their WebSocket upgrade does not get through (RB-003 Step 4)`,
                ],
              ] as [string, string][])
            : []),
          ['peak today', `${s.peak_connections}${pct}`],
          ['errors last hour', String(s.errors_last_hour)],
          ['queue depth', String(s.queue_depth)],
          ['broadcast p99', ms(s.broadcast_latency_p99_ms)],
          ['memory', `${mb(s.memory.rss_bytes)} rss, ${mb(s.memory.heap_used_bytes)} heap used`],
          ['event-loop lag p99', ms(s.event_loop_lag_p99_ms)],
          ...(s.unauthenticated_connections === undefined
            ? []
            : ([
                [
                  'unauthenticated',
                  `${s.unauthenticated_connections}${s.max_unauthenticated === undefined ? '' : ` / ${s.max_unauthenticated} max`}`,
                ],
              ] as [string, string][])),
        ]),
      );
      out('');
      const sseColumn = s.instances.some((i) => (i.sse_connections ?? 0) > 0);
      out(
        table(
          ['SERVER', 'ACTIVE', ...(sseColumn ? ['SSE'] : []), 'QUEUE', 'P99 MS', 'HEALTHY'],
          s.instances.map((i) => [
            i.server,
            i.active_connections,
            ...(sseColumn ? [i.sse_connections ?? 0] : []),
            i.queue_depth,
            round(i.broadcast_latency_p99_ms),
            i.healthy ? 'yes' : 'NO',
          ]),
        ),
      );
      if (s.cluster_error !== undefined) out(`cluster: ${s.cluster_error}`);
      out(`missing instances: ${missing.length === 0 ? 'none' : missing.join(', ')}`);
    }),
  );
}
