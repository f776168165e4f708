/**
 * The judgement of `archon-ws doctor`: collected evidence in, findings out, each naming the
 * RB-003 fix it points to and the figures that say so. Pure (no I/O, no clock), so a unit
 * test can walk every branch with evidence shaped like a real gateway's.
 *
 * The fixes are the runbook's own (docs/runbooks/RB-003-websocket-degradation.md, Step 3):
 * Fix A restarts stale connections (cleanup), Fix B clears message queues (flush), Fix C
 * restarts the WebSocket manager (a rolling restart of the instances), Fix D scales up.
 * Load balancer problems are Step 4. A Redis backplane outage is not one of Fix A–D
 * (restarting or scaling instances does not bring Redis back): it is named as what it is.
 *
 * Ordinary situations are not faults: fewer clients than at today's peak without a drop in
 * the per-minute series (the evening), a drop explained by normal closes, a restart or an
 * operator cleanup (1000/1001/1012/4010), or one too small to judge (a small deployment).
 * Those become notes. A test endpoint too busy to probe is "not checked", not a fault.
 */
import {
  BASELINE_SHARE,
  CAPACITY_SHARE,
  ERRORS_ALERT_PER_MINUTE,
  LAG_BUSY_MS,
  LAG_STUCK_MS,
  LATENCY_ALERT_MS,
  MAX_BROADCAST_P99_MS,
  MAX_ERRORS_PER_MINUTE,
  MAX_QUEUE_DEPTH,
  QUEUE_ALERT,
  REFUSAL_CODES,
  successCriteria,
  type StatsAnswer,
  type SuccessCheck,
} from '../../protocol/index.js';
import { mb, round } from '../format.js';
import type { LbReport } from '../lb-checks.js';
import { DEFAULT_STALE_AFTER_S, type Evidence } from './evidence.js';

export type Remedy =
  | 'fix-a'
  | 'fix-b'
  | 'fix-c'
  | 'fix-d'
  | 'step-4'
  | 'backplane'
  | 'clients'
  | 'refused'
  | 'escalate';

export const REMEDIES: Record<Remedy, { title: string; commands: readonly string[] }> = {
  'fix-a': { title: 'Fix A: Restart Stale Connections', commands: ['archon-ws cleanup'] },
  'fix-b': { title: 'Fix B: Clear Message Queue', commands: ['archon-ws flush'] },
  'fix-c': {
    title: 'Fix C: Restart WebSocket Manager',
    commands: [
      'docker service update --force archon_api',
      'docker restart $(docker ps -q --filter name=archon_api.<slot>)',
    ],
  },
  'fix-d': { title: 'Fix D: Scale Up', commands: ['docker service scale archon_api=<n>'] },
  'step-4': {
    title: 'Step 4: Load Balancer Fixes',
    commands: ['archon-ws check-lb --idle 90s'],
  },
  backplane: {
    title: 'Redis backplane down (alert ArchonWebSocketBackplaneDown; not one of Fix A–D)',
    commands: ['redis-cli -u "$ARCHON_REDIS_URL" ping'],
  },
  clients: {
    title: 'Client-side errors (not a gateway fault)',
    commands: ['archon-ws connections --group-by client_version', 'archon-ws stats --minutes 60'],
  },
  refused: {
    title:
      'Hostile or broken clients refused by the gateway (docs/security.md; not a gateway fault)',
    commands: [
      'archon-ws connections --group-by addr',
      'curl -s $ARCHON_URL/metrics | grep -E "connections_(unauthenticated|rejected_total)"',
    ],
  },
  escalate: {
    title: 'Unexplained: escalate (Team Lead)',
    commands: ['archon-ws stats --minutes 60', 'archon-ws status'],
  },
};

export type Severity = 'critical' | 'warning';

export interface Finding {
  remedy: Remedy;
  title: string;
  severity: Severity;
  /** Why, with figures: one sentence per piece of evidence. */
  evidence: string[];
  /** The runbook's commands for this fix, with placeholders filled in where known. */
  commands: string[];
}

export interface Onset {
  kind: 'none' | 'sudden' | 'gradual';
  /** The first abnormal minute (ISO), when there is one. */
  minute: string | null;
  description: string;
}

export interface Diagnosis {
  healthy: boolean;
  verdict: string;
  findings: Finding[];
  criteria: SuccessCheck[];
  onset: Onset;
  /** Worth knowing, not a fault (a restart in progress, assumptions made). */
  notes: string[];
  /** What could not be checked (the test endpoint busy): "no fault" does not cover it. */
  unchecked: string[];
}

/** Fix D's advice: enough instances that each is this full at most. */
const SCALE_TARGET_SHARE = 0.7;
/** Connections that grew this much over the window while some are stale: they pile up. */
const GROWTH_FACTOR = 1.5;
/** Stale connections are critical from this share of all of them. */
const STALE_CRITICAL_SHARE = 0.1;
/** An error type with at least this share of the errors gets its own reading. */
const ERROR_SHARE = 0.2;
/** A drop of connections is a fault only from this many lost, and this share of the high
 * before it: fewer is noise (a small deployment, a few people leaving). */
export const MIN_LOST = 10;
export const DROP_SHARE = 0.2;
/** Close codes that explain fewer connections without a fault: normal close, going away
 * (tabs closed, people leaving), service restart, operator cleanup (docs/errors.md). */
export const ORDINARY_CLOSES: Readonly<Record<string, string>> = {
  '1000': 'normal closes',
  '1001': 'clients going away',
  '1012': 'a restart',
  '4010': 'an operator cleanup',
};

const pct = (part: number, whole: number) => `${Math.round((part / whole) * 100)} %`;
const r1 = (v: number) => round(v, 1);
const minuteLabel = (iso: string) =>
  iso.replace(/:00(\.000)?Z$/, 'Z').replace(/^\d{4}-\d\d-\d\dT/, '');

class Findings {
  readonly list: Finding[] = [];

  add(remedy: Remedy, severity: Severity, evidence: string[], commands?: string[]): void {
    const existing = this.list.find((f) => f.remedy === remedy);
    if (existing) {
      for (const e of evidence) if (!existing.evidence.includes(e)) existing.evidence.push(e);
      if (severity === 'critical') existing.severity = 'critical';
      if (commands) existing.commands = commands;
      return;
    }
    this.list.push({
      remedy,
      title: REMEDIES[remedy].title,
      severity,
      evidence,
      commands: commands ?? [...REMEDIES[remedy].commands],
    });
  }

  has(remedy: Remedy): boolean {
    return this.list.some((f) => f.remedy === remedy);
  }
}

function fixCCommands(servers: readonly string[]): string[] {
  if (servers.length === 0) return [...REMEDIES['fix-c'].commands];
  return [
    ...servers.map(
      (s) => `docker restart $(docker ps -q --filter name=archon_api.<slot of ${s}>)  # ${s} only`,
    ),
    'docker service update --force archon_api  # every instance, one by one',
  ];
}

function failingChecks(r: LbReport): string {
  return r.checks
    .filter((c) => c.status === 'fail')
    .map((c) => `${c.name} → ${c.figure}`)
    .join('; ');
}

/** A fall of connections in the per-minute series: the first minute under BASELINE_SHARE of
 * the highest count before it (at least 5). */
export interface ConnectionDrop {
  /** Index of the first minute under the high, and of the high. */
  i: number;
  high_i: number;
  high: number;
  low: number;
  /** The minute before the fall. */
  prev: number;
  sudden: boolean;
}

export function connectionDrop(series: StatsAnswer['series']): ConnectionDrop | null {
  let peak = 0;
  let peakAt = -1;
  for (let i = 0; i < series.length; i++) {
    const m = series[i];
    if (!m) continue;
    if (peak >= 5 && m.connections < BASELINE_SHARE * peak) {
      const prev = series[i - 1]?.connections ?? peak;
      return {
        i,
        high_i: peakAt,
        high: peak,
        low: m.connections,
        prev,
        sudden: prev - m.connections >= (1 - BASELINE_SHARE) * peak,
      };
    }
    if (m.connections > peak) {
      peak = m.connections;
      peakAt = i;
    }
  }
  return null;
}

function sameOrigin(a: string, b: string): boolean {
  const origin = (raw: string) => {
    try {
      const u = new URL(raw);
      if (u.protocol === 'ws:') u.protocol = 'http:';
      else if (u.protocol === 'wss:') u.protocol = 'https:';
      return u.origin;
    } catch {
      return raw;
    }
  };
  return origin(a) === origin(b);
}

/** Reads the per-minute series: when it started, and whether suddenly or gradually. Pure. */
export function findOnset(stats: StatsAnswer): Onset {
  const s = stats.series;
  type Hit = { i: number; kind: 'sudden' | 'gradual'; text: string };
  const hits: Hit[] = [];

  // Errors: the first minute at the alert rate.
  const e = s.findIndex((m) => m.errors >= ERRORS_ALERT_PER_MINUTE);
  if (e !== -1) {
    const before = e > 0 ? (s[e - 1]?.errors ?? 0) : 0;
    const at = s[e];
    if (at) {
      let from = e;
      while (from > 0 && (s[from - 1]?.errors ?? 0) >= MAX_ERRORS_PER_MINUTE) from--;
      hits.push(
        before < ERRORS_ALERT_PER_MINUTE / 2
          ? {
              i: e,
              kind: 'sudden',
              text: `errors jumped from ${before} to ${at.errors}/min at ${minuteLabel(at.minute)}`,
            }
          : {
              i: from,
              kind: 'gradual',
              text: `errors rose over ${e - from + 1} min, from ${s[from]?.errors ?? 0}/min at ${minuteLabel(s[from]?.minute ?? '')} to ${at.errors}/min at ${minuteLabel(at.minute)}`,
            },
      );
    }
  }

  // Connections: the first minute under 80 % of the highest count before it.
  const drop = connectionDrop(s);
  if (drop) {
    const m = s[drop.i];
    if (m)
      hits.push(
        drop.sudden
          ? {
              i: drop.i,
              kind: 'sudden',
              text: `connections fell from ${drop.prev} to ${m.connections} within a minute at ${minuteLabel(m.minute)}`,
            }
          : {
              i: drop.high_i + 1,
              kind: 'gradual',
              text: `connections declined over ${drop.i - drop.high_i} min, from ${drop.high} at ${minuteLabel(s[drop.high_i]?.minute ?? '')} to ${m.connections} at ${minuteLabel(m.minute)}`,
            },
      );
  }

  // Messages: delivery stopping while it used to flow (the current minute is still partial).
  let flow = 0;
  for (let i = 0; i < s.length - 1; i++) {
    const m = s[i];
    if (!m) continue;
    if (flow >= 10 && m.messages < 0.2 * flow) {
      const prev = s[i - 1]?.messages ?? flow;
      hits.push({
        i,
        kind: prev >= 0.5 * flow ? 'sudden' : 'gradual',
        text: `messages fell from ${prev}/min to ${m.messages}/min at ${minuteLabel(m.minute)}`,
      });
      break;
    }
    flow = Math.max(flow, m.messages);
  }

  hits.sort((a, b) => a.i - b.i);
  const first = hits[0];
  if (!first)
    return {
      kind: 'none',
      minute: null,
      description: `no abnormal minute in the last ${stats.minutes} min (errors under ${ERRORS_ALERT_PER_MINUTE}/min, connections within ${BASELINE_SHARE * 100} % of their high, messages flowing)`,
    };
  return {
    kind: first.kind,
    minute: s[first.i]?.minute ?? null,
    description: `${first.kind} — ${hits.map((h) => h.text).join('; ')}`,
  };
}

function dominant(counts: Record<string, number>): [string, number][] {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return Object.entries(counts)
    .filter(([, n]) => total > 0 && n / total >= ERROR_SHARE)
    .sort((a, b) => b[1] - a[1]);
}

/** Evidence in, findings out. */
export function diagnose(ev: Evidence): Diagnosis {
  const f = new Findings();
  const notes: string[] = [];
  /** Failing success criteria that a note accounts for (not a fault). */
  const explained = new Set<string>();
  const unchecked: string[] = [];
  const { status, stats, connections: conns } = ev;
  const window = `${stats.minutes} min`;
  const missing = new Set(status.missing_instances);
  const live = status.instances.filter((i) => !missing.has(i.server));
  const criteria = successCriteria({
    ...status,
    errors_per_minute: stats.errors_per_minute,
    minutes: stats.minutes,
  });
  const count = (code: string) => stats.disconnects_by_code[code] ?? 0;
  const errorsOf = (type: string) => stats.errors_by_type[type] ?? 0;

  // --- Redis backplane ------------------------------------------------------------------
  const planeDown = live.filter((i) => i.backplane_healthy === false);
  if (planeDown.length > 0 || ev.health.backplane === 'down' || status.cluster_error !== null) {
    const lines: string[] = [];
    if (planeDown.length > 0)
      lines.push(
        `backplane (${planeDown[0]?.backplane_kind ?? 'redis'}) down on ${planeDown.map((i) => i.server).join(', ')} of ${live.length} instance(s)`,
      );
    if (ev.health.backplane === 'down')
      lines.push(
        `/api/health answers "${ev.health.status ?? '?'}" with backplane "down" (${ev.health.server ?? '?'}): publishes answer 503, so nothing new reaches clients`,
      );
    if (status.cluster_error !== null) lines.push(`admin API: ${status.cluster_error}`);
    lines.push(
      `${stats.messages_per_minute} messages/min delivered over the last ${window}; clients stay connected and resume once Redis is back (docs/cluster.md)`,
    );
    f.add('backplane', 'critical', lines);
  }

  // --- instances that do not answer, or are stuck ----------------------------------------
  if (missing.size > 0)
    f.add(
      'fix-c',
      'critical',
      [
        `${[...missing].join(', ')} registered but did not answer the admin request (listed in missing_instances): hung or dead`,
      ],
      fixCCommands([...missing]),
    );
  const stuck = live.filter((i) => i.event_loop_lag_p99_ms >= LAG_STUCK_MS);
  const busy = live.filter((i) => i.event_loop_lag_p99_ms >= LAG_BUSY_MS);
  if (stuck.length > 0 && stuck.length < live.length)
    f.add(
      'fix-c',
      'critical',
      stuck.map(
        (i) =>
          `${i.server}: event-loop lag p99 ${r1(i.event_loop_lag_p99_ms)} ms (others under ${LAG_STUCK_MS} ms): that instance is stuck`,
      ),
      fixCCommands(stuck.map((i) => i.server)),
    );
  for (const i of live.filter((x) => x.draining))
    notes.push(
      `${i.server} is draining (shutting down): its clients are closed with 1012 and resume elsewhere`,
    );

  // --- capacity ---------------------------------------------------------------------------
  const full = live.filter(
    (i) => i.max_connections !== null && i.active_connections >= CAPACITY_SHARE * i.max_connections,
  );
  if (full.length > 0) {
    const perInstance = full[0]?.max_connections ?? 1;
    const wanted = Math.max(
      live.length + 1,
      Math.ceil(status.active_connections / (SCALE_TARGET_SHARE * perInstance)),
    );
    f.add(
      'fix-d',
      'critical',
      [
        ...full.map(
          (i) =>
            `${i.server}: ${i.active_connections} of ${i.max_connections} connections (${pct(i.active_connections, i.max_connections ?? 1)}, WEBSOCKET_MAX_CONNECTIONS): new clients get 503 at_capacity / 1013`,
        ),
        `${status.active_connections} connections on ${live.length} instance(s); at 70 % per instance that needs ${wanted}`,
      ],
      [`docker service scale archon_api=${wanted}`],
    );
  }

  // --- queues -------------------------------------------------------------------------------
  if (status.queue_depth >= MAX_QUEUE_DEPTH) {
    const lines = [
      `queue depth ${status.queue_depth} (success criterion < ${MAX_QUEUE_DEPTH}, alert > ${QUEUE_ALERT}) in ${conns.with_queue} client queue(s)`,
    ];
    const queued = live.filter((i) => i.queue_depth > 0);
    if (live.length > 1 && queued.length > 0)
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
    const slow = errorsOf('slow_consumer');
    if (slow > 0 || count('4008') > 0)
      lines.push(
        `${slow} slow_consumer error(s), ${count('4008')} disconnect(s) with 4008 in the last ${window}`,
      );
    f.add(
      'fix-b',
      status.queue_depth > QUEUE_ALERT || status.broadcast_latency_p99_ms >= MAX_BROADCAST_P99_MS
        ? 'critical'
        : 'warning',
      lines,
    );
  }

  // --- dead connections the gateway kept --------------------------------------------------
  const staleRule = conns.ping_settings_known
    ? 'ping interval + ping timeout + 5 s'
    : 'the longest ping interval + ping timeout the gateway accepts, + 5 s: its own settings could not be read';
  if (!conns.ping_settings_known && conns.silent_past_default > 0)
    notes.push(
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
        `connections grew from ${firstWith.connections} to ${last.connections} over the last ${window} (${stats.connects_per_minute} connects/min vs ${stats.disconnects_per_minute} disconnects/min)`,
      );
    if (status.memory_rss_bytes !== null && status.active_connections > 0)
      lines.push(
        `memory ${mb(status.memory_rss_bytes)} rss for ${status.active_connections} connections (${Math.round(status.memory_rss_bytes / status.active_connections / 1024)} KB each)`,
      );
    const critical = conns.stale >= STALE_CRITICAL_SHARE * Math.max(1, conns.total);
    f.add('fix-a', critical ? 'critical' : 'warning', lines);
  }

  // --- the load balancer ------------------------------------------------------------------
  const lb = ev.lb;
  const sameUrl = sameOrigin(ev.lb_url, ev.url);
  if (lb.verdict === 'incomplete') {
    // The test endpoint turned the probe away (its own slots, not the clients'): nothing is
    // known about the load balancer, and nothing here calls for a restart or more instances.
    unchecked.push(`the load balancer (${lb.busy ?? 'its checks could not run'})`);
    notes.push(
      `load balancer not checked: ${lb.busy ?? 'its checks could not run'}. That is the test endpoint's own limit, not the clients': ${full.length > 0 ? 'the instances are at capacity too (see Fix D)' : `the status answer shows room for clients (${status.active_connections} connected${status.max_connections === null ? '' : ` of ${status.max_connections}`})`}`,
    );
  } else if (lb.verdict === 'fail') {
    const lbLine = `WebSocket upgrade through ${lb.url}: ${failingChecks(lb) || 'failed'}`;
    const healthLine = ev.ws_health.ok
      ? []
      : [
          `the upgrade to /api/v1/ws/health fails too (${ev.ws_health.error ?? ev.ws_health.status ?? '?'})`,
        ];
    const directOk = ev.direct.filter((d) => d.verdict === 'pass');
    const directBad = ev.direct.filter((d) => d.verdict === 'fail');
    const directText = directOk
      .map((d) => `${d.url.replace(/\/api\/v1\/ws\/test.*$/, '')} (${d.server ?? '?'})`)
      .join(', ');
    const nginx =
      'nginx: proxy_http_version 1.1, proxy_set_header Upgrade $http_upgrade, proxy_set_header Connection $connection_upgrade (deploy/nginx/archon-ws.conf)';
    const check = (name: string) => lb.checks.find((c) => c.name === name);
    const upgraded = check('HTTP 101')?.status === 'pass';
    const welcome = check('welcome names the server');
    const noWelcome = upgraded && welcome?.status === 'fail';
    if (lb.unreachable) {
      f.add('step-4', 'critical', [
        `cannot reach the load balancer at ${ev.lb_url}: ${check('HTTP 101')?.figure.replace(/^no answer: /, '') ?? 'no answer'}`,
        sameUrl
          ? `the admin API answered through the same URL, so it is up: the WebSocket port or path does not answer (a firewall, a listener missing on the load balancer)`
          : `the admin API answered at ${ev.url}: the load balancer itself, its DNS name or a firewall in between is at fault, and clients cannot connect at all`,
        ...(directOk.length > 0
          ? [`the same check straight to ${directText} passes: the instances are fine`]
          : []),
      ]);
    } else if (lb.refusal !== null) {
      // The gateway itself answered: not the load balancer.
      if (lb.refusal.code === 'draining')
        f.add('fix-c', 'warning', [
          `${lbLine}: the instance answering is draining; a restart in progress ends by itself within WEBSOCKET_SHUTDOWN_TIMEOUT, one that does not is stuck`,
        ]);
      else
        f.add('fix-c', 'critical', [
          `${lbLine}: the gateway refused the upgrade itself (${lb.refusal.code})`,
        ]);
    } else if (directOk.length > 0) {
      f.add('step-4', 'critical', [
        lbLine,
        ...healthLine,
        `the same check straight to ${directText} passes: the load balancer is at fault`,
        ...(noWelcome ? [] : [nginx]),
      ]);
    } else if (directBad.length > 0) {
      f.add(
        'fix-c',
        'critical',
        [
          lbLine,
          `straight to the instances too: ${directBad.map((d) => `${d.url}: ${failingChecks(d)}`).join('; ')}: the gateway's WebSocket side is failing`,
        ],
        fixCCommands([]),
      );
    } else if (noWelcome) {
      f.add('step-4', 'critical', [
        lbLine,
        ...healthLine,
        `the upgrade was answered with 101 but no welcome followed (${welcome.figure}): the gateway sends one at once, so something in between holds back or drops WebSocket data after the handshake, or the instance that answered is stuck (check with --direct <instance URL> to tell which)`,
      ]);
    } else if (sameUrl) {
      f.add('step-4', 'critical', [
        lbLine,
        ...healthLine,
        `plain HTTP through the same URL reaches the gateway (the admin API answered${ev.health.http_status === 200 ? ', /api/health 200' : ''}), only the upgrade fails: the load balancer does not pass WebSocket upgrades (check with --direct <instance URL> to be sure)`,
        nginx,
      ]);
    } else {
      f.add('step-4', 'critical', [
        lbLine,
        ...healthLine,
        `the admin API answered at ${ev.url}, another URL than the one probed (${ev.lb_url}): the upgrade through ${ev.lb_url} fails; check with --direct <instance URL> whether the instances pass it`,
        nginx,
      ]);
    }
  }
  if (!ev.ws_health.ok && lb.verdict === 'pass')
    f.add('step-4', 'warning', [
      `the upgrade to /api/v1/ws/health fails (${ev.ws_health.error ?? ev.ws_health.status ?? '?'}) while /api/v1/ws/test passes: the health location of the load balancer is set up differently`,
    ]);
  if (ev.health.status === 'draining')
    notes.push(`/api/health through ${ev.url} answers draining (${ev.health.server ?? '?'})`);
  else if (
    ev.health.error !== null ||
    (ev.health.http_status !== null && ev.health.http_status !== 200)
  )
    f.add('step-4', 'warning', [
      `the load balancer health check path /api/health does not answer 200 through ${ev.url} (${ev.health.error ?? `HTTP ${ev.health.http_status}`})`,
    ]);

  // --- errors -------------------------------------------------------------------------------
  if (stats.errors_per_minute >= MAX_ERRORS_PER_MINUTE) {
    const severity: Severity =
      stats.errors_per_minute >= ERRORS_ALERT_PER_MINUTE ? 'critical' : 'warning';
    const rate = `${stats.errors_per_minute} errors/min over the last ${window}`;
    for (const [type, n] of dominant(stats.errors_by_type)) {
      const line = `${rate}, ${n} of them ${type}`;
      if (type === 'slow_consumer') {
        if (f.has('fix-b')) f.add('fix-b', severity, [line]);
        else
          f.add('clients', severity, [
            `${line}: those clients' networks cannot keep up (closed with 4008, they recover on reconnect); queues are not backed up now (depth ${status.queue_depth}), so there is nothing to flush`,
          ]);
      } else if (
        ['unauthorized', 'token_expired', 'auth_timeout', 'not_authenticated'].includes(type)
      )
        f.add('clients', severity, [
          `${line}: clients' tokens or sign-in (4001): check the identity provider and the JWT key (ARCHON_JWT_*)`,
        ]);
      else if (type === 'ping_timeout' || type === 'send_failed')
        f.add('step-4', severity, [
          `${line}: connections dying silently in the network or a proxy in between`,
        ]);
      else if (type === 'at_capacity') f.add('fix-d', severity, [`${line}: clients turned away`]);
      else if ((REFUSAL_CODES as readonly string[]).includes(type))
        f.add('refused', 'warning', [
          `${line}: clients refused by the gateway's limits (sockets that never authenticate, too much before hello, too many connections per user, replay loops); the gateway kept serving the others: find the sources in the logs and the connections by address`,
        ]);
      else if (type === 'internal') f.add('fix-c', severity, [`${line}: internal errors (1011)`]);
      else
        f.add('clients', severity, [
          `${line}: clients sending bad requests (${type}); see which client versions`,
        ]);
    }
  }

  // --- connections below baseline ---------------------------------------------------------
  // Fewer clients than at today's peak is a fault only when the per-minute series shows them
  // dropping, by enough to matter, for a reason the gateway recorded that is not ordinary.
  const baseline = criteria[0];
  if (baseline && !baseline.pass) {
    const disconnects = Object.entries(stats.disconnects_by_code).sort((a, b) => b[1] - a[1]);
    const total = disconnects.reduce((n, [, c]) => n + c, 0);
    const drop = `${baseline.figure}; disconnects in the last ${window}: ${
      total === 0 ? 'none' : disconnects.map(([c, n]) => `${c} ×${n}`).join(', ')
    }`;
    const fall = connectionDrop(stats.series);
    const active = status.active_connections;
    const lost = fall === null ? 0 : fall.high - active;
    const ordinary = disconnects.filter(([c]) => c in ORDINARY_CLOSES);
    const ordinaryCount = ordinary.reduce((n, [, c]) => n + c, 0);
    const top = disconnects[0]?.[0];
    const topCount = disconnects[0]?.[1] ?? 0;
    if (fall === null || lost < MIN_LOST || lost < DROP_SHARE * fall.high) {
      explained.add(baseline.name);
      notes.push(
        fall === null
          ? `${drop}: no drop in the per-minute series of the last ${window}, so fewer clients than at today's peak, not a loss (as in the evening, or after clients moved to other instances): not a fault`
          : `${drop}: ${Math.max(0, lost)} fewer than the ${fall.high} of ${minuteLabel(stats.series[fall.high_i]?.minute ?? '')}, under ${MIN_LOST} connections or ${DROP_SHARE * 100} % of them: too few to call a fault`,
      );
      const current = stats.series[stats.series.length - 1]?.connections ?? 0;
      if (current - active >= MIN_LOST && active < BASELINE_SHARE * current)
        notes.push(
          `${active} connected now against ${current} earlier this minute: a drop may be under way that the per-minute series does not show yet; run doctor again in a minute`,
        );
    } else if (total > 0 && ordinaryCount * 2 >= total) {
      explained.add(baseline.name);
      notes.push(
        `${drop}: explained by ${ordinary.map(([c, n]) => `${ORDINARY_CLOSES[c] ?? c} (${c} ×${n})`).join(', ')}; not a fault (clients closed by a restart or a cleanup reconnect by themselves)`,
      );
    } else if (top === '1006' || top === '4009')
      f.add('step-4', topCount >= MIN_LOST ? 'critical' : 'warning', [
        `${drop}: ${top === '1006' ? 'cut without a close frame' : 'no pong in time'}, the network or a proxy in between is dropping connections (try check-lb --idle 90s)`,
      ]);
    else if (top === '4008')
      f.add(f.has('fix-b') ? 'fix-b' : 'clients', 'warning', [
        `${drop}: slow consumers closed by the gateway`,
      ]);
    else if (top === '1013')
      // 1013 closes are admission refusals (at_capacity itself is an HTTP 503 at the
      // handshake, never a close): a full instance shows in the capacity check above.
      f.add('refused', 'warning', [
        `${drop}: closed by the gateway's admission limits (1013: sockets that never authenticated, evicted to make room, or users over WEBSOCKET_MAX_CONNECTIONS_PER_USER); the peak counted those sockets`,
      ]);
    else if (top === '4001') f.add('clients', 'critical', [`${drop}: tokens refused`]);
    else if (f.list.length === 0)
      f.add('escalate', 'warning', [
        `${drop}: the gateway saw no reason of its own; clients may not reach it at all (DNS, firewall, load balancer: run check-lb from the clients' network)`,
      ]);
  }

  // --- slow broadcasts, busy instances ----------------------------------------------------
  // Judged on its own: a backlog (Fix B) and a busy instance (Fix C/D) can both be true.
  const slowBroadcasts = status.broadcast_latency_p99_ms >= MAX_BROADCAST_P99_MS;
  if (slowBroadcasts || status.queue_depth >= MAX_QUEUE_DEPTH) {
    const line = `broadcast p99 ${r1(status.broadcast_latency_p99_ms)} ms (criterion < ${MAX_BROADCAST_P99_MS} ms, alert > ${LATENCY_ALERT_MS} ms) with queue depth ${status.queue_depth}`;
    const severity: Severity =
      status.broadcast_latency_p99_ms >= LATENCY_ALERT_MS ? 'critical' : 'warning';
    if (busy.length > 0 && busy.length < live.length)
      f.add(
        'fix-c',
        severity,
        [
          `${line}; event-loop lag p99 high on ${busy.map((i) => `${i.server} ${r1(i.event_loop_lag_p99_ms)} ms`).join(', ')} only`,
        ],
        fixCCommands(busy.map((i) => i.server)),
      );
    else if (busy.length > 0)
      f.add('fix-d', severity, [
        `${line}; event-loop lag p99 ${live.map((i) => `${i.server} ${r1(i.event_loop_lag_p99_ms)} ms`).join(', ')}: the instances are overloaded`,
      ]);
    else if (slowBroadcasts && !f.has('fix-b')) {
      // No backlog and no lag: nothing is slow now. The p99 covers the last 2048 deliveries,
      // not a time window, so it still holds slow ones from before (a backlog since flushed,
      // slow consumers since closed) until fresh deliveries replace them.
      notes.push(
        `${line} but no backlog and event-loop lag p99 under ${LAG_BUSY_MS} ms: the p99 covers the last 2048 deliveries and still holds slow ones from before; it falls as new messages are delivered (archon-ws verify --watch)`,
      );
      explained.add('broadcast latency p99');
    }
  }

  // Anything the success criteria flag that nothing above explains.
  const failing = criteria.filter((c) => !c.pass && !explained.has(c.name));
  if (failing.length > 0 && f.list.length === 0)
    f.add(
      'escalate',
      'warning',
      failing.map((c) => `${c.name}: ${c.figure} (${c.threshold})`),
    );

  const onset = findOnset(stats);
  const findings = f.list.sort((a, b) =>
    a.severity === b.severity ? 0 : a.severity === 'critical' ? -1 : 1,
  );
  const healthy = findings.length === 0;
  const explainedText = [...explained]
    .map((name) =>
      name === baseline?.name
        ? "connections below today's peak with no fault behind it"
        : `${name} still above target with no current cause`,
    )
    .join('; ');
  const lbText =
    lb.verdict === 'pass'
      ? `the load balancer upgrades and echoes (${lb.server ?? '?'} answered)`
      : `the load balancer was not checked: ${lb.busy ?? 'its checks could not run'}`;
  return {
    healthy,
    verdict: healthy
      ? `no fault found: ${failing.length === 0 && explained.size === 0 ? `all ${criteria.length} success criteria pass` : `${explainedText} (see notes)`}, ${lbText}, ${live.length} instance(s) healthy`
      : `${findings.length} finding(s): ${findings.map((x) => x.title.replace(/ \(.*$/, '')).join('; ')}`,
    findings,
    criteria,
    onset,
    notes,
    unchecked,
  };
}
