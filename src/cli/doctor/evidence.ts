/**
 * What `archon-ws doctor` gathers before it judges: RB-003 Steps 1–2 as data. Status,
 * connections and stats come from the admin API (a failure there ends the run: nothing can
 * be judged without them); the risk alerts waiting, /api/health, the WebSocket health upgrade
 * and the load balancer probe are evidence whichever way they go.
 */
import { ADMIN_READERS } from '../../protocol/admin.js';
import type { ConnectionEntry, Transport } from '../../protocol/index.js';
import { HealthAnswerSchema } from '../../protocol/probes.js';
import { adminAnswer, CliError, Exit, networkReason, parseAnswer, type Target } from '../api.js';
import { age, deliveredTo, fetchAlerts, type Alerts } from '../commands/alerts.js';
import { fetchStats, type Stats } from '../commands/stats.js';
import { fetchStatus, type Status } from '../commands/status.js';
import { Steps } from '../format.js';
import { judge, type LbReport } from '../lb-checks.js';
import { probe, probeWsHealth, testEndpointUrl } from '../lb-probe.js';

export interface ConnectionSample {
  client_id: string;
  server: string;
  user_id: string | null;
  client_version: string | null;
  queue_depth: number;
  /** Seconds since the gateway last heard from the client. */
  silent_s: number;
  state: string;
}

export interface ConnectionSummary {
  total: number;
  by_server: Record<string, number>;
  by_client_version: Record<string, number>;
  /** Connections per transport: `sse` are clients on the HTTP streaming fallback, whose
   * WebSocket upgrade did not get through (RB-003 Step 4). */
  by_transport: Record<Transport, number>;
  users: number;
  /** Users (`sub`) with a connection on the HTTP streaming fallback. */
  sse_users: number;
  /** Connections with messages waiting in their queue. */
  with_queue: number;
  /** The deepest queues, deepest first (at most 5). */
  deepest: ConnectionSample[];
  /** Connections silent for longer than the gateway's liveness allows: it should have
   * closed them itself (4009 / auth timeout), so they are dead ones it kept. WebSockets only:
   * an HTTP stream's silence says nothing (see summarizeConnections). */
  stale: number;
  stale_examples: ConnectionSample[];
  /** The silence that counts as stale, seconds (ping interval + ping timeout + 5). */
  stale_after_s: number;
  /** Whether the gateway told its ping settings (its test endpoint's welcome). When it did
   * not, stale_after_s is the most lenient the settings allow, and silent_past_default
   * counts what the defaults (30 s + 10 s) would call stale. */
  ping_settings_known: boolean;
  silent_past_default: number;
  /** The time silence is measured to: the gateway's clock from the Date header of the
   * connections answer (less a second of tolerance), or, without one, the local time that
   * answer arrived. */
  reference: Reference;
}

export interface Reference {
  at: string;
  source: 'gateway Date header' | 'local clock';
}

export interface HealthEvidence {
  http_status: number | null;
  status: string | null;
  server: string | null;
  backplane: string | null;
  error: string | null;
}

export interface WsHealthEvidence {
  ok: boolean;
  status: string | null;
  server: string | null;
  error: string | null;
}

/** One risk alert waiting, as doctor reports it. */
export interface WaitingAlert {
  channel: string;
  seq: number;
  age_seconds: number;
  /** Per user (`sub`): how often it was handed to their connections. */
  deliveries: Record<string, number>;
}

/** The risk alerts waiting for acknowledgement (GET …/alerts?state=unacked), or why they are
 * not known: `not available` is a gateway of a release before acknowledged alerts (404). */
export type AlertsEvidence =
  | {
      kind: 'read';
      unacked: number;
      oldest_unacked_seconds: number | null;
      /** The oldest ones, oldest first (at most 5). */
      oldest: WaitingAlert[];
    }
  | { kind: 'not available'; error: string }
  | { kind: 'failed'; error: string };

export interface Evidence {
  /** The gateway the admin API was asked through. */
  url: string;
  /** The URL clients connect through (the load balancer). */
  lb_url: string;
  collected_at: string;
  minutes: number;
  status: Status;
  connections: ConnectionSummary;
  stats: Stats;
  alerts: AlertsEvidence;
  health: HealthEvidence;
  ws_health: WsHealthEvidence;
  lb: LbReport;
  /** The same probe straight to instances (--direct), to tell the LB from the gateway. */
  direct: LbReport[];
}

/** The fields of a connections answer the diagnosis reads. */
type ReadField =
  | 'client_id'
  | 'server'
  | 'user_id'
  | 'client_version'
  | 'connected_at'
  | 'last_seen_at'
  | 'queue_depth'
  | 'state'
  | 'transport';

/** Connections that sent nothing for longer than this past the ping deadline are stale. */
const STALE_GRACE_S = 5;
/** An unauthenticated connection is closed within WEBSOCKET_AUTH_TIMEOUT (at most 300 s). */
const MAX_AUTH_TIMEOUT_S = 300;
/** The gateway's defaults (WEBSOCKET_PING_INTERVAL, WEBSOCKET_PING_TIMEOUT) and the largest
 * values it accepts for them (docs/configuration.md). */
export const DEFAULT_PING = { interval: 30, timeout: 10 } as const;
export const MAX_PING = { interval: 3600, timeout: 3600 } as const;
/** What the default ping settings call stale, seconds. */
export const DEFAULT_STALE_AFTER_S = DEFAULT_PING.interval + DEFAULT_PING.timeout + STALE_GRACE_S;
/** The Date header has a resolution of one second: silence is measured to a second before. */
const DATE_TOLERANCE_MS = 1000;

/**
 * The time the connections answer describes: its Date header (the gateway's clock, so a
 * skewed local clock does not age every connection) less a second of tolerance, or the
 * local time it arrived when there is no usable Date header. Pure.
 */
export function referenceTime(date: string | null, receivedAt: number): Reference & { ms: number } {
  const header = date === null ? NaN : Date.parse(date);
  if (Number.isFinite(header)) {
    const ms = header - DATE_TOLERANCE_MS;
    return { ms, at: new Date(ms).toISOString(), source: 'gateway Date header' };
  }
  return { ms: receivedAt, at: new Date(receivedAt).toISOString(), source: 'local clock' };
}

/**
 * GET …/websocket/connections (as read) reduced to what the diagnosis reads. `now` is the time the
 * answer describes (referenceTime); the ping settings are null when the gateway did not
 * tell them, and a connection then counts as stale only past the most lenient settings
 * it accepts. Connections on the HTTP streaming fallback are counted, never judged by their
 * silence. Pure.
 */
export function summarizeConnections(
  entries: readonly Pick<ConnectionEntry, ReadField>[],
  now: number,
  pingInterval: number | null,
  pingTimeout: number | null,
  source: Reference['source'] = 'gateway Date header',
): ConnectionSummary {
  const known = pingInterval !== null && pingTimeout !== null;
  const staleAfter = known
    ? pingInterval + pingTimeout + STALE_GRACE_S
    : MAX_PING.interval + MAX_PING.timeout + STALE_GRACE_S;
  let pastDefault = 0;
  const byServer: Record<string, number> = {};
  const byVersion: Record<string, number> = {};
  const byTransport: Record<Transport, number> = { websocket: 0, sse: 0 };
  const users = new Set<string>();
  const sseUsers = new Set<string>();
  const samples: ConnectionSample[] = [];
  const stale: ConnectionSample[] = [];
  for (const c of entries) {
    const lastSeen = Date.parse(c.last_seen_at);
    const connectedAt = Date.parse(c.connected_at);
    const sample: ConnectionSample = {
      client_id: c.client_id,
      server: c.server,
      user_id: c.user_id,
      client_version: c.client_version,
      queue_depth: c.queue_depth,
      silent_s: Number.isFinite(lastSeen) ? Math.max(0, Math.round((now - lastSeen) / 1000)) : 0,
      state: c.state,
    };
    byServer[sample.server] = (byServer[sample.server] ?? 0) + 1;
    const version = sample.client_version ?? '(none)';
    byVersion[version] = (byVersion[version] ?? 0) + 1;
    if (sample.user_id !== null) users.add(sample.user_id);
    byTransport[c.transport]++;
    samples.push(sample);
    if (c.transport === 'sse') {
      if (sample.user_id !== null) sseUsers.add(sample.user_id);
      // An HTTP stream is never pinged (it gets comment heartbeats, which need no answer) and
      // can only send by POSTing ops, so its last_seen_at moves only when the dashboard acts:
      // a live stream may be silent for hours. The gateway finds dead ones by a heartbeat
      // write failing or TCP keep-alive, not by silence, so silence never makes one stale
      // here (docs/protocol.md#http-streaming-fallback).
      continue;
    }
    const age = Number.isFinite(connectedAt) ? (now - connectedAt) / 1000 : 0;
    const isStale =
      sample.state === 'authenticating'
        ? age > MAX_AUTH_TIMEOUT_S + STALE_GRACE_S
        : sample.state === 'open' && sample.silent_s > staleAfter;
    if (isStale) stale.push(sample);
    if (sample.state === 'open' && sample.silent_s > DEFAULT_STALE_AFTER_S) pastDefault++;
  }
  return {
    total: samples.length,
    by_server: byServer,
    by_client_version: byVersion,
    by_transport: byTransport,
    users: users.size,
    sse_users: sseUsers.size,
    with_queue: samples.filter((s) => s.queue_depth > 0).length,
    deepest: samples
      .filter((s) => s.queue_depth > 0)
      .sort((a, b) => b.queue_depth - a.queue_depth)
      .slice(0, 5),
    stale: stale.length,
    stale_examples: stale.sort((a, b) => b.silent_s - a.silent_s).slice(0, 5),
    stale_after_s: staleAfter,
    ping_settings_known: known,
    silent_past_default: known ? 0 : pastDefault,
    reference: { at: new Date(now).toISOString(), source },
  };
}

/** GET …/alerts?state=unacked reduced to what doctor reports. Pure. */
export function summarizeAlerts(answer: Alerts): AlertsEvidence {
  return {
    kind: 'read',
    unacked: answer.unacked,
    oldest_unacked_seconds: answer.oldest_unacked_seconds,
    oldest: answer.alerts
      .filter((a) => a.state === 'unacked')
      .slice(0, 5)
      .map((a) => ({
        channel: a.channel,
        seq: a.seq,
        age_seconds: a.age_seconds,
        deliveries: a.deliveries,
      })),
  };
}

/** The alerts evidence in a few words (doctor's table, the incident summary). Pure. */
export function describeAlerts(a: AlertsEvidence): string {
  if (a.kind === 'not available') return `unavailable: ${a.error}`;
  if (a.kind === 'failed') return `FAILED: ${a.error}`;
  if (a.unacked === 0 || a.oldest_unacked_seconds === null)
    return 'none waiting for acknowledgement';
  const first = a.oldest[0];
  return `${a.unacked} waiting for acknowledgement, oldest ${age(a.oldest_unacked_seconds)}${first ? ` (${first.channel} seq ${first.seq}, delivered to ${deliveredTo(first.deliveries)})` : ''}`;
}

async function readAlerts(target: Target): Promise<AlertsEvidence> {
  try {
    return summarizeAlerts(await fetchAlerts(target, 'unacked'));
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    if (err instanceof CliError && err.httpStatus === 404)
      return {
        kind: 'not available',
        error:
          'the gateway has no GET /api/v1/admin/alerts (a release before acknowledged risk alerts)',
      };
    return { kind: 'failed', error };
  }
}

async function fetchHealth(base: string, timeoutMs: number): Promise<HealthEvidence> {
  const evidence: HealthEvidence = {
    http_status: null,
    status: null,
    server: null,
    backplane: null,
    error: null,
  };
  try {
    const res = await fetch(`${base}/api/health`, { signal: AbortSignal.timeout(timeoutMs) });
    evidence.http_status = res.status;
    const body = HealthAnswerSchema.safeParse(await res.json().catch(() => null));
    if (body.success) {
      evidence.status = body.data.status;
      evidence.server = body.data.server;
      evidence.backplane = 'backplane' in body.data ? body.data.backplane : null;
    } else evidence.error = 'answer is not a health answer';
  } catch (err) {
    evidence.error = networkReason(err, timeoutMs);
  }
  return evidence;
}

export interface CollectOptions {
  target: Target;
  lbUrl: string;
  direct: readonly string[];
  minutes: number;
  timeoutMs: number;
  steps: Steps;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function lbOutcome(r: LbReport): string {
  if (r.ok) return `ok (answered by ${r.server ?? '?'})`;
  const bad = r.checks.filter((c) => c.status === 'fail');
  return `FAILED: ${bad.map((c) => `${c.name} ${c.figure}`).join('; ')}`;
}

async function probeLb(url: string, timeoutMs: number): Promise<LbReport> {
  const endpoint = testEndpointUrl(url);
  if (endpoint === null) throw new CliError(`invalid URL ${JSON.stringify(url)}`, Exit.usage);
  return judge(await probe(endpoint.toString(), { timeoutMs }));
}

/** Runs RB-003 Steps 1–2 one after the other, reporting each step as it goes. */
export async function collectEvidence(o: CollectOptions): Promise<Evidence> {
  const { target, steps } = o;
  const status = await steps.run(
    'status',
    () => fetchStatus(target),
    (s) =>
      `ok (${plural(s.instances.length, 'instance')}, ${plural(s.active_connections, 'connection')})`,
  );
  // Silence is measured to the time of this answer, not to when the probes below end (they
  // can take --timeout each).
  const connectionsAnswer = await steps.run(
    'connections',
    async () => {
      const answer = await adminAnswer(target, 'GET', '/websocket/connections');
      const entries = parseAnswer(
        'websocket/connections',
        ADMIN_READERS['/websocket/connections'],
        answer.body,
      );
      return { ...answer, entries };
    },
    (c) => {
      const sse = c.entries.filter((e) => e.transport === 'sse').length;
      return `ok (${c.entries.length}${sse > 0 ? `, ${sse} on the HTTP streaming fallback` : ''})`;
    },
  );
  const reference = referenceTime(connectionsAnswer.date, connectionsAnswer.received_at);
  const stats = await steps.run(`stats of the last ${o.minutes} min`, () =>
    fetchStats(target, o.minutes),
  );
  const alerts = await steps.run('risk alerts waiting', () => readAlerts(target), describeAlerts);
  const health = await steps.run(
    '/api/health',
    () => fetchHealth(target.url, o.timeoutMs),
    (h) =>
      h.error !== null
        ? `FAILED: ${h.error}`
        : `${h.http_status === 200 ? 'ok' : `HTTP ${h.http_status}`} (${h.status ?? '?'})`,
  );
  const wsHealth = await steps.run(
    'WebSocket health',
    async (): Promise<WsHealthEvidence> => {
      const r = await probeWsHealth(o.lbUrl, o.timeoutMs);
      return 'error' in r
        ? { ok: false, status: null, server: null, error: r.error }
        : { ok: r.status === 'ok', status: r.status, server: r.server, error: null };
    },
    (w) => (w.error !== null ? `FAILED: ${w.error}` : w.ok ? 'ok' : String(w.status)),
  );
  const lb = await steps.run(
    `load balancer upgrade (${o.lbUrl})`,
    () => probeLb(o.lbUrl, o.timeoutMs),
    lbOutcome,
  );
  const direct: LbReport[] = [];
  for (const url of o.direct)
    direct.push(
      await steps.run(`direct upgrade (${url})`, () => probeLb(url, o.timeoutMs), lbOutcome),
    );
  const settings = [lb, ...direct].find(
    (r) => r.ping_interval_s !== null && r.ping_timeout_s !== null,
  );
  const connections = summarizeConnections(
    connectionsAnswer.entries,
    reference.ms,
    settings?.ping_interval_s ?? null,
    settings?.ping_timeout_s ?? null,
    reference.source,
  );
  return {
    url: target.url,
    lb_url: o.lbUrl,
    collected_at: new Date().toISOString(),
    minutes: o.minutes,
    status,
    connections,
    stats,
    alerts,
    health,
    ws_health: wsHealth,
    lb,
    direct,
  };
}
