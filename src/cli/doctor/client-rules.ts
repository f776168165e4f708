/** Doctor's rules on the way to the clients and what they saw: load balancer, errors, drops. */
import {
  BASELINE_SHARE,
  ERRORS_ALERT_PER_MINUTE,
  MAX_ERRORS_PER_MINUTE,
  REFUSAL_CODES,
} from '../../protocol/index.js';
import type { LbReport } from '../lb-checks.js';
import { fixCCommands, type Rule, type Severity } from './findings.js';
import { atCapacity } from './instance-rules.js';
import { connectionDrop, minuteLabel } from './onset.js';

/** An error type with at least this share of the errors gets its own reading. */
const ERROR_SHARE = 0.2;
/** Error types of clients' tokens or sign-in (4001). */
const AUTH_ERRORS: readonly string[] = [
  'unauthorized',
  'token_expired',
  'auth_timeout',
  'not_authenticated',
];
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

/** What the upgrade needs from nginx (deploy/nginx/archon-ws.conf, RB-003 Step 4). */
const NGINX_UPGRADE =
  'nginx: proxy_http_version 1.1, proxy_set_header Upgrade $http_upgrade, proxy_set_header Connection $connection_upgrade (deploy/nginx/archon-ws.conf)';

/** The failed checks of a probe, with their figures. */
function failingChecks(r: LbReport): string {
  return r.checks
    .filter((c) => c.status === 'fail')
    .map((c) => `${c.name} → ${c.figure}`)
    .join('; ');
}

/** Whether two URLs reach the same origin (ws: as http:, wss: as https:). */
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

/** The error types with ERROR_SHARE of the errors or more, most first. */
function dominant(counts: Record<string, number>): [string, number][] {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return Object.entries(counts)
    .filter(([, n]) => total > 0 && n / total >= ERROR_SHARE)
    .sort((a, b) => b[1] - a[1]);
}

/** Step 4 (or Fix C when the gateway itself fails the upgrade): the WebSocket check through
 * the load balancer failed; a note and "not checked" when the test endpoint turned it away. */
export const loadBalancer: Rule = (ev, cx) => {
  const { status, lb } = ev;
  const sameUrl = sameOrigin(ev.lb_url, ev.url);
  if (lb.verdict === 'incomplete') {
    // The test endpoint turned the probe away (its own slots, not the clients'): nothing is
    // known about the load balancer, and nothing here calls for a restart or more instances.
    cx.unchecked.push(`the load balancer (${lb.busy ?? 'its checks could not run'})`);
    cx.notes.push(
      `load balancer not checked: ${lb.busy ?? 'its checks could not run'}. That is the test endpoint's own limit, not the clients': ${atCapacity(cx.live).length > 0 ? 'the instances are at capacity too (see Fix D)' : `the status answer shows room for clients (${status.active_connections} connected${` of ${status.max_connections}`})`}`,
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
    const check = (name: string) => lb.checks.find((c) => c.name === name);
    const upgraded = check('HTTP 101')?.status === 'pass';
    const welcome = check('welcome names the server');
    const noWelcome = upgraded && welcome?.status === 'fail';
    if (lb.unreachable) {
      cx.findings.add('step-4', 'critical', [
        `cannot reach the load balancer at ${ev.lb_url}: ${check('HTTP 101')?.figure.replace(/^no answer: /, '') ?? 'no answer'}`,
        sameUrl
          ? `the admin API answered through the same URL, so it is up: the WebSocket port or path does not answer (a firewall, a listener missing on the load balancer)`
          : `the admin API answered at ${ev.url}: the load balancer itself, its DNS name or a firewall in between is at fault${ev.connections.by_transport.sse > 0 ? '' : ', and clients cannot connect at all'}`,
        ...(directOk.length > 0
          ? [`the same check straight to ${directText} passes: the instances are fine`]
          : []),
      ]);
    } else if (lb.refusal !== null) {
      // The gateway itself answered: not the load balancer.
      if (lb.refusal.code === 'draining')
        cx.findings.add('fix-c', 'warning', [
          `${lbLine}: the instance answering is draining; a restart in progress ends by itself within WEBSOCKET_SHUTDOWN_TIMEOUT, one that does not is stuck`,
        ]);
      else
        cx.findings.add('fix-c', 'critical', [
          `${lbLine}: the gateway refused the upgrade itself (${lb.refusal.code})`,
        ]);
    } else if (directOk.length > 0) {
      cx.findings.add('step-4', 'critical', [
        lbLine,
        ...healthLine,
        `the same check straight to ${directText} passes: the load balancer is at fault`,
        ...(noWelcome ? [] : [NGINX_UPGRADE]),
      ]);
    } else if (directBad.length > 0) {
      cx.findings.add(
        'fix-c',
        'critical',
        [
          lbLine,
          `straight to the instances too: ${directBad.map((d) => `${d.url}: ${failingChecks(d)}`).join('; ')}: the gateway's WebSocket side is failing`,
        ],
        fixCCommands([]),
      );
    } else if (noWelcome) {
      cx.findings.add('step-4', 'critical', [
        lbLine,
        ...healthLine,
        `the upgrade was answered with 101 but no welcome followed (${welcome.figure}): the gateway sends one at once, so something in between holds back or drops WebSocket data after the handshake, or the instance that answered is stuck (check with --direct <instance URL> to tell which)`,
      ]);
    } else if (sameUrl) {
      cx.findings.add('step-4', 'critical', [
        lbLine,
        ...healthLine,
        `plain HTTP through the same URL reaches the gateway (the admin API answered${ev.health.http_status === 200 ? ', /api/health 200' : ''}), only the upgrade fails: the load balancer does not pass WebSocket upgrades (check with --direct <instance URL> to be sure)`,
        NGINX_UPGRADE,
      ]);
    } else {
      cx.findings.add('step-4', 'critical', [
        lbLine,
        ...healthLine,
        `the admin API answered at ${ev.url}, another URL than the one probed (${ev.lb_url}): the upgrade through ${ev.lb_url} fails; check with --direct <instance URL> whether the instances pass it`,
        NGINX_UPGRADE,
      ]);
    }
  }
};

/** Step 4: the WebSocket health location fails while the test location passes. */
export const wsHealthPath: Rule = (ev, cx) => {
  if (!ev.ws_health.ok && ev.lb.verdict === 'pass')
    cx.findings.add('step-4', 'warning', [
      `the upgrade to /api/v1/ws/health fails (${ev.ws_health.error ?? ev.ws_health.status ?? '?'}) while /api/v1/ws/test passes: the health location of the load balancer is set up differently`,
    ]);
};

/** Step 4: the health check path /api/health does not answer 200 (a note when draining). */
export const healthPath: Rule = (ev, cx) => {
  if (ev.health.status === 'draining')
    cx.notes.push(`/api/health through ${ev.url} answers draining (${ev.health.server ?? '?'})`);
  else if (
    ev.health.error !== null ||
    (ev.health.http_status !== null && ev.health.http_status !== 200)
  )
    cx.findings.add('step-4', 'warning', [
      `the load balancer health check path /api/health does not answer 200 through ${ev.url} (${ev.health.error ?? `HTTP ${ev.health.http_status}`})`,
    ]);
};

/** The error types that make up ERROR_SHARE of the errors or more, each read for its remedy
 * (Fix B rather than the clients for slow consumers when a backlog was found). */
export const errorsByType: Rule = (ev, cx) => {
  const { status, stats } = ev;
  if (stats.errors_per_minute >= MAX_ERRORS_PER_MINUTE) {
    const severity: Severity =
      stats.errors_per_minute >= ERRORS_ALERT_PER_MINUTE ? 'critical' : 'warning';
    const rate = `${stats.errors_per_minute} errors/min over the last ${cx.window}`;
    for (const [type, n] of dominant(stats.errors_by_type)) {
      const line = `${rate}, ${n} of them ${type}`;
      if (type === 'slow_consumer') {
        if (cx.findings.has('fix-b')) cx.findings.add('fix-b', severity, [line]);
        else
          cx.findings.add('clients', severity, [
            `${line}: those clients' networks cannot keep up (closed with 4008, they recover on reconnect); queues are not backed up now (depth ${status.queue_depth}), so there is nothing to flush`,
          ]);
      } else if (AUTH_ERRORS.includes(type))
        cx.findings.add('clients', severity, [
          `${line}: clients' tokens or sign-in (4001): check the identity provider and the JWT key (ARCHON_JWT_*)`,
        ]);
      else if (type === 'ping_timeout' || type === 'send_failed')
        cx.findings.add('step-4', severity, [
          `${line}: connections dying silently in the network or a proxy in between`,
        ]);
      else if (type === 'at_capacity')
        cx.findings.add('fix-d', severity, [`${line}: clients turned away`]);
      else if ((REFUSAL_CODES as readonly string[]).includes(type))
        cx.findings.add('refused', 'warning', [
          `${line}: clients refused by the gateway's limits (sockets that never authenticate, too much before hello, too many connections per user, replay loops); the gateway kept serving the others: find the sources in the logs and the connections by address`,
        ]);
      else if (type === 'internal')
        cx.findings.add('fix-c', severity, [`${line}: internal errors (1011)`]);
      else
        cx.findings.add('clients', severity, [
          `${line}: clients sending bad requests (${type}); see which client versions`,
        ]);
    }
  }
};

/** Connections below the baseline: a fault only when the per-minute series shows them
 * dropping, by enough to matter, for a reason the gateway recorded that is not ordinary. */
export const belowBaseline: Rule = (ev, cx) => {
  const { status, stats } = ev;
  const baseline = cx.criteria[0];
  if (baseline && !baseline.pass) {
    const disconnects = Object.entries(stats.disconnects_by_code).sort((a, b) => b[1] - a[1]);
    const total = disconnects.reduce((n, [, c]) => n + c, 0);
    const drop = `${baseline.figure}; disconnects in the last ${cx.window}: ${
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
      cx.explained.add(baseline.name);
      cx.notes.push(
        fall === null
          ? `${drop}: no drop in the per-minute series of the last ${cx.window}, so fewer clients than at today's peak, not a loss (as in the evening, or after clients moved to other instances): not a fault`
          : `${drop}: ${Math.max(0, lost)} fewer than the ${fall.high} of ${minuteLabel(stats.series[fall.high_i]?.minute ?? '')}, under ${MIN_LOST} connections or ${DROP_SHARE * 100} % of them: too few to call a fault`,
      );
      const current = stats.series[stats.series.length - 1]?.connections ?? 0;
      if (current - active >= MIN_LOST && active < BASELINE_SHARE * current)
        cx.notes.push(
          `${active} connected now against ${current} earlier this minute: a drop may be under way that the per-minute series does not show yet; run doctor again in a minute`,
        );
    } else if (total > 0 && ordinaryCount * 2 >= total) {
      cx.explained.add(baseline.name);
      cx.notes.push(
        `${drop}: explained by ${ordinary.map(([c, n]) => `${ORDINARY_CLOSES[c] ?? c} (${c} ×${n})`).join(', ')}; not a fault (clients closed by a restart or a cleanup reconnect by themselves)`,
      );
    } else if (top === '1006' || top === '4009')
      cx.findings.add('step-4', topCount >= MIN_LOST ? 'critical' : 'warning', [
        `${drop}: ${top === '1006' ? 'cut without a close frame' : 'no pong in time'}, the network or a proxy in between is dropping connections (try check-lb --idle 90s)`,
      ]);
    else if (top === '4008')
      cx.findings.add(cx.findings.has('fix-b') ? 'fix-b' : 'clients', 'warning', [
        `${drop}: slow consumers closed by the gateway`,
      ]);
    else if (top === '1013')
      // 1013 closes are admission refusals (at_capacity itself is an HTTP 503 at the
      // handshake, never a close): a full instance shows in nearCapacity, run before.
      cx.findings.add('refused', 'warning', [
        `${drop}: closed by the gateway's admission limits (1013: sockets that never authenticated, evicted to make room, or users over WEBSOCKET_MAX_CONNECTIONS_PER_USER); the peak counted those sockets`,
      ]);
    else if (top === '4001') cx.findings.add('clients', 'critical', [`${drop}: tokens refused`]);
    else if (cx.findings.list.length === 0)
      cx.findings.add('escalate', 'warning', [
        `${drop}: the gateway saw no reason of its own; clients may not reach it at all (DNS, firewall, load balancer: run check-lb from the clients' network)`,
      ]);
  }
};

/**
 * Step 4: clients on the HTTP streaming fallback. They fall back to it when their WebSocket
 * upgrade does not get through, so any of them are a sign of RB-003 Step 4 even when they
 * are live. Read beside the load balancer probe: failing too, it is the cause; passing from
 * here, the upgrade is lost on those clients' own way in. A warning: nobody is cut off.
 */
export const fallbackClients: Rule = (ev, cx) => {
  const { by_transport: transports, total, sse_users: users } = ev.connections;
  const sse = transports.sse;
  if (sse === 0) return;
  const lb = ev.lb;
  const who = `${sse} of ${total} clients (${users} user${users === 1 ? '' : 's'}) ${sse === 1 ? 'is' : 'are'} on the HTTP streaming fallback: their WebSocket upgrade does not get through a proxy or load balancer (RB-003 Step 4)`;
  const back = 'they move back to WebSocket by themselves';
  cx.findings.add('step-4', 'warning', [
    lb.verdict === 'pass'
      ? `${who}. They are live. The upgrade through ${ev.lb_url} passes from here, so it is lost on those clients' own way in (a proxy of their network, or another entry point: archon-ws connections --group-by addr shows where they connect from); once it gets through ${back}`
      : lb.verdict === 'fail' && lb.refusal === null
        ? `${who}, as the failed upgrade through ${ev.lb_url} shows. They are live; fix the upgrade path and ${back}`
        : `${who}. They are live; fix the upgrade path (${NGINX_UPGRADE}) and ${back}`,
  ]);
};
