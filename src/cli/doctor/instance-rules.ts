/** Doctor's rules on the instances themselves: backplane, hung, capacity, queues, stale, busy. */
import {
  CAPACITY_SHARE,
  LAG_BUSY_MS,
  LAG_STUCK_MS,
  LATENCY_ALERT_MS,
  MAX_BROADCAST_P99_MS,
  MAX_QUEUE_DEPTH,
  QUEUE_ALERT,
} from '../../protocol/index.js';
import type { Instance } from '../commands/status.js';
import { mb, round } from '../format.js';
import { DEFAULT_STALE_AFTER_S } from './evidence.js';
import { fixCCommands, type Rule, type Severity } from './findings.js';

/** Fix D's advice: enough instances that each is this full at most. */
const SCALE_TARGET_SHARE = 0.7;
/** Connections that grew this much over the window while some are stale: they pile up. */
const GROWTH_FACTOR = 1.5;
/** Stale connections are critical from this share of all of them. */
const STALE_CRITICAL_SHARE = 0.1;

export const pct = (part: number, whole: number) => `${Math.round((part / whole) * 100)} %`;
export const r1 = (v: number) => round(v, 1);

/** The instances at CAPACITY_SHARE of their connection limit or more. */
export function atCapacity(live: readonly Instance[]): Instance[] {
  return live.filter(
    (i) => i.max_connections > 0 && i.active_connections >= CAPACITY_SHARE * i.max_connections,
  );
}

/** The Redis backplane down on an instance, per /api/health, or per the admin API. */
export const backplaneDown: Rule = (ev, cx) => {
  const { status, stats } = ev;
  const planeDown = cx.live.filter((i) => !i.backplane.healthy);
  if (
    planeDown.length > 0 ||
    ev.health.backplane === 'down' ||
    status.cluster_error !== undefined
  ) {
    const lines: string[] = [];
    if (planeDown.length > 0)
      lines.push(
        `backplane (${planeDown[0]?.backplane.kind ?? 'redis'}) down on ${planeDown.map((i) => i.server).join(', ')} of ${cx.live.length} instance(s)`,
      );
    if (ev.health.backplane === 'down')
      lines.push(
        `/api/health answers "${ev.health.status ?? '?'}" with backplane "down" (${ev.health.server ?? '?'}): publishes answer 503, so nothing new reaches clients`,
      );
    if (status.cluster_error !== undefined) lines.push(`admin API: ${status.cluster_error}`);
    lines.push(
      `${stats.messages_per_minute} messages/min delivered over the last ${cx.window}; clients stay connected and resume once Redis is back (docs/cluster.md)`,
    );
    cx.findings.add('backplane', 'critical', lines);
  }
};

/** Fix C: instances registered that did not answer the admin request. */
export const unansweredInstances: Rule = (_ev, cx) => {
  if (cx.missing.size > 0)
    cx.findings.add(
      'fix-c',
      'critical',
      [
        `${[...cx.missing].join(', ')} registered but did not answer the admin request (listed in missing_instances): hung or dead`,
      ],
      fixCCommands([...cx.missing]),
    );
};

/** Fix C: some instances (not all) with their event loop stuck. */
export const stuckInstances: Rule = (_ev, cx) => {
  const stuck = cx.live.filter((i) => i.event_loop_lag_p99_ms >= LAG_STUCK_MS);
  if (stuck.length > 0 && stuck.length < cx.live.length)
    cx.findings.add(
      'fix-c',
      'critical',
      stuck.map(
        (i) =>
          `${i.server}: event-loop lag p99 ${r1(i.event_loop_lag_p99_ms)} ms (others under ${LAG_STUCK_MS} ms): that instance is stuck`,
      ),
      fixCCommands(stuck.map((i) => i.server)),
    );
};

/** A note per instance draining (shutting down). */
export const drainingInstances: Rule = (_ev, cx) => {
  for (const i of cx.live.filter((x) => x.draining))
    cx.notes.push(
      `${i.server} is draining (shutting down): its clients are closed with 1012 and resume elsewhere`,
    );
};

/** Fix D: instances near their connection limit, with how many instances to scale to. */
export const nearCapacity: Rule = (ev, cx) => {
  const { status } = ev;
  const full = atCapacity(cx.live);
  if (full.length > 0) {
    const perInstance = full[0]?.max_connections ?? 1;
    const wanted = Math.max(
      cx.live.length + 1,
      Math.ceil(status.active_connections / (SCALE_TARGET_SHARE * perInstance)),
    );
    cx.findings.add(
      'fix-d',
      'critical',
      [
        ...full.map(
          (i) =>
            `${i.server}: ${i.active_connections} of ${i.max_connections} connections (${pct(i.active_connections, i.max_connections)}, WEBSOCKET_MAX_CONNECTIONS): new clients get 503 at_capacity / 1013`,
        ),
        `${status.active_connections} connections on ${cx.live.length} instance(s); at 70 % per instance that needs ${wanted}`,
      ],
      [`docker service scale archon_api=${wanted}`],
    );
  }
};

/** Fix B: client queues backed up (queue depth at the success criterion or more). */
export const queueBacklog: Rule = (ev, cx) => {
  const { status, stats, connections: conns } = ev;
  if (status.queue_depth >= MAX_QUEUE_DEPTH) {
    const lines = [
      `queue depth ${status.queue_depth} (success criterion < ${MAX_QUEUE_DEPTH}, alert > ${QUEUE_ALERT}) in ${conns.with_queue} client queue(s)`,
    ];
    const queued = cx.live.filter((i) => i.queue_depth > 0);
    if (cx.live.length > 1 && queued.length > 0)
      lines.push(`per instance: ${queued.map((i) => `${i.server} ${i.queue_depth}`).join(', ')}`);
    if (conns.deepest.length > 0)
      lines.push(
        `deepest: ${conns.deepest
          .slice(0, 3)
          .map(
            (c) =>
              `${c.client_id} (${c.user_id ?? 'unauthenticated'}, ${c.client_version ?? 'no version'}, on ${c.server}) ${c.queue_depth}`,
          )
          .join('; ')}`,
      );
    lines.push(
      `broadcast p99 ${r1(status.broadcast_latency_p99_ms)} ms (criterion < ${MAX_BROADCAST_P99_MS} ms)`,
    );
    const slow = stats.errors_by_type['slow_consumer'] ?? 0;
    const closed = stats.disconnects_by_code['4008'] ?? 0;
    if (slow > 0 || closed > 0)
      lines.push(
        `${slow} slow_consumer error(s), ${closed} disconnect(s) with 4008 in the last ${cx.window}`,
      );
    cx.findings.add(
      'fix-b',
      status.queue_depth > QUEUE_ALERT || status.broadcast_latency_p99_ms >= MAX_BROADCAST_P99_MS
        ? 'critical'
        : 'warning',
      lines,
    );
  }
};

/** Fix A: dead connections the gateway kept (silent past its own liveness check); a note
 * instead when the stale threshold is only a guess. */
export const staleConnections: Rule = (ev, cx) => {
  const { status, stats, connections: conns } = ev;
  const staleRule = conns.ping_settings_known
    ? 'ping interval + ping timeout + 5 s'
    : 'the longest ping interval + ping timeout the gateway accepts, + 5 s: its own settings could not be read';
  if (!conns.ping_settings_known && conns.silent_past_default > 0)
    cx.notes.push(
      `${conns.silent_past_default} of ${conns.total} connections silent for more than ${DEFAULT_STALE_AFTER_S} s, which is stale only with the default ping settings (30 s + 10 s): the gateway's own could not be read (its test endpoint's welcome never came), so the stale threshold is a guess and Fix A is not judged from it`,
    );
  if (conns.stale > 0) {
    const lines = [
      `${conns.stale} of ${conns.total} connections silent for more than ${conns.stale_after_s} s (${staleRule}): the gateway's own liveness check should have closed them (4009), so they are dead connections it kept`,
      `longest silent: ${conns.stale_examples
        .slice(0, 3)
        .map(
          (c) =>
            `${c.client_id} (${c.user_id ?? 'unauthenticated'}, ${c.state}, on ${c.server}) ${c.silent_s} s`,
        )
        .join('; ')}`,
      `silence measured to ${conns.reference.at} (${conns.reference.source === 'gateway Date header' ? "the gateway's clock: the Date header of its connections answer, less a second" : 'the local clock when the connections answer arrived: it had no Date header'})`,
    ];
    const s = stats.series;
    const firstWith = s.find((m) => m.connections > 0);
    const last = s[s.length - 1];
    if (firstWith && last && last.connections >= GROWTH_FACTOR * firstWith.connections)
      lines.push(
        `connections grew from ${firstWith.connections} to ${last.connections} over the last ${cx.window} (${stats.connects_per_minute} connects/min vs ${stats.disconnects_per_minute} disconnects/min)`,
      );
    if (status.memory.rss_bytes > 0 && status.active_connections > 0)
      lines.push(
        `memory ${mb(status.memory.rss_bytes)} rss for ${status.active_connections} connections (${Math.round(status.memory.rss_bytes / status.active_connections / 1024)} KB each)`,
      );
    const critical = conns.stale >= STALE_CRITICAL_SHARE * Math.max(1, conns.total);
    cx.findings.add('fix-a', critical ? 'critical' : 'warning', lines);
  }
};

/** Slow broadcasts or a backlog, read against event-loop lag: some instances busy (Fix C),
 * all of them (Fix D), or none and no backlog (a note: the p99 remembers older deliveries).
 * Judged on its own: a backlog (Fix B) and a busy instance can both be true. */
export const slowBroadcasts: Rule = (ev, cx) => {
  const { status } = ev;
  const { live } = cx;
  const busy = live.filter((i) => i.event_loop_lag_p99_ms >= LAG_BUSY_MS);
  const slow = status.broadcast_latency_p99_ms >= MAX_BROADCAST_P99_MS;
  if (slow || status.queue_depth >= MAX_QUEUE_DEPTH) {
    const line = `broadcast p99 ${r1(status.broadcast_latency_p99_ms)} ms (criterion < ${MAX_BROADCAST_P99_MS} ms, alert > ${LATENCY_ALERT_MS} ms) with queue depth ${status.queue_depth}`;
    const severity: Severity =
      status.broadcast_latency_p99_ms >= LATENCY_ALERT_MS ? 'critical' : 'warning';
    if (busy.length > 0 && busy.length < live.length)
      cx.findings.add(
        'fix-c',
        severity,
        [
          `${line}; event-loop lag p99 high on ${busy.map((i) => `${i.server} ${r1(i.event_loop_lag_p99_ms)} ms`).join(', ')} only`,
        ],
        fixCCommands(busy.map((i) => i.server)),
      );
    else if (busy.length > 0)
      cx.findings.add('fix-d', severity, [
        `${line}; event-loop lag p99 ${live.map((i) => `${i.server} ${r1(i.event_loop_lag_p99_ms)} ms`).join(', ')}: the instances are overloaded`,
      ]);
    else if (slow && !cx.findings.has('fix-b')) {
      // No backlog and no lag: nothing is slow now. The p99 covers the last 2048 deliveries,
      // not a time window, so it still holds slow ones from before (a backlog since flushed,
      // slow consumers since closed) until fresh deliveries replace them.
      cx.notes.push(
        `${line} but no backlog and event-loop lag p99 under ${LAG_BUSY_MS} ms: the p99 covers the last 2048 deliveries and still holds slow ones from before; it falls as new messages are delivered (archon-ws verify --watch)`,
      );
      cx.explained.add('broadcast latency p99');
    }
  }
};
