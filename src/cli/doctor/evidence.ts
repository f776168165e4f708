/**
 * What `archon-ws doctor` gathers before it judges: RB-003 Steps 1–2 as data. Status,
 * connections and stats come from the admin API (a failure there ends the run: nothing can
 * be judged without them); /api/health, the WebSocket health upgrade and the load balancer
 * probe are evidence whichever way they go.
 */
import type { StatsAnswer } from '../../protocol/index.js';
import {
  adminRequest,
  CliError,
  Exit,
  isObject,
  networkReason,
  numberOrNull,
  type Target,
} from '../api.js';
import { fetchStats } from '../commands/stats.js';
import { fetchStatus, type StatusSummary } from '../commands/status.js';
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
  users: number;
  /** Connections with messages waiting in their queue. */
  with_queue: number;
  /** The deepest queues, deepest first (at most 5). */
  deepest: ConnectionSample[];
  /** Connections silent for longer than the gateway's liveness allows: it should have
   * closed them itself (4009 / auth timeout), so they are dead ones it kept. */
  stale: number;
  stale_examples: ConnectionSample[];
  /** The silence that counts as stale, seconds (ping interval + ping timeout + 5). */
  stale_after_s: number;
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

export interface Evidence {
  /** The gateway the admin API was asked through. */
  url: string;
  /** The URL clients connect through (the load balancer). */
  lb_url: string;
  collected_at: string;
  minutes: number;
  status: StatusSummary;
  connections: ConnectionSummary;
  stats: StatsAnswer;
  health: HealthEvidence;
  ws_health: WsHealthEvidence;
  lb: LbReport;
  /** The same probe straight to instances (--direct), to tell the LB from the gateway. */
  direct: LbReport[];
}

/** Connections that sent nothing for longer than this past the ping deadline are stale. */
const STALE_GRACE_S = 5;
/** An unauthenticated connection is closed within WEBSOCKET_AUTH_TIMEOUT (at most 300 s). */
const MAX_AUTH_TIMEOUT_S = 300;

/** GET …/websocket/connections reduced to what the diagnosis reads. Pure. */
export function summarizeConnections(
  body: unknown,
  now: number,
  pingInterval: number,
  pingTimeout: number,
): ConnectionSummary {
  if (!Array.isArray(body))
    throw new CliError('bad answer from connections: not an array', Exit.badAnswer);
  const staleAfter = pingInterval + pingTimeout + STALE_GRACE_S;
  const byServer: Record<string, number> = {};
  const byVersion: Record<string, number> = {};
  const users = new Set<string>();
  const samples: ConnectionSample[] = [];
  const stale: ConnectionSample[] = [];
  for (const raw of body) {
    if (!isObject(raw))
      throw new CliError('bad answer from connections: an entry is not an object', Exit.badAnswer);
    const lastSeen = Date.parse(typeof raw.last_seen_at === 'string' ? raw.last_seen_at : '');
    const connectedAt = Date.parse(typeof raw.connected_at === 'string' ? raw.connected_at : '');
    const sample: ConnectionSample = {
      client_id: typeof raw.client_id === 'string' ? raw.client_id : '?',
      server: typeof raw.server === 'string' ? raw.server : '?',
      user_id: typeof raw.user_id === 'string' ? raw.user_id : null,
      client_version: typeof raw.client_version === 'string' ? raw.client_version : null,
      queue_depth: numberOrNull(raw.queue_depth) ?? 0,
      silent_s: Number.isFinite(lastSeen) ? Math.max(0, Math.round((now - lastSeen) / 1000)) : 0,
      state: typeof raw.state === 'string' ? raw.state : 'open',
    };
    byServer[sample.server] = (byServer[sample.server] ?? 0) + 1;
    const version = sample.client_version ?? '(none)';
    byVersion[version] = (byVersion[version] ?? 0) + 1;
    if (sample.user_id !== null) users.add(sample.user_id);
    samples.push(sample);
    const age = Number.isFinite(connectedAt) ? (now - connectedAt) / 1000 : 0;
    const isStale =
      sample.state === 'authenticating'
        ? age > MAX_AUTH_TIMEOUT_S + STALE_GRACE_S
        : sample.state === 'open' && sample.silent_s > staleAfter;
    if (isStale) stale.push(sample);
  }
  return {
    total: samples.length,
    by_server: byServer,
    by_client_version: byVersion,
    users: users.size,
    with_queue: samples.filter((s) => s.queue_depth > 0).length,
    deepest: samples
      .filter((s) => s.queue_depth > 0)
      .sort((a, b) => b.queue_depth - a.queue_depth)
      .slice(0, 5),
    stale: stale.length,
    stale_examples: stale.sort((a, b) => b.silent_s - a.silent_s).slice(0, 5),
    stale_after_s: staleAfter,
  };
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
    const body: unknown = await res.json().catch(() => null);
    if (isObject(body)) {
      evidence.status = typeof body.status === 'string' ? body.status : null;
      evidence.server = typeof body.server === 'string' ? body.server : null;
      evidence.backplane = typeof body.backplane === 'string' ? body.backplane : null;
    } else evidence.error = 'answer is not JSON';
  } catch (err) {
    evidence.error =
      err instanceof Error && err.name === 'TimeoutError'
        ? `no answer within ${timeoutMs / 1000} s`
        : networkReason(err);
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
  const rawConnections = await steps.run(
    'connections',
    () => adminRequest(target, 'GET', '/websocket/connections'),
    (c) => (Array.isArray(c) ? `ok (${c.length})` : 'ok'),
  );
  const stats = await steps.run(`stats of the last ${o.minutes} min`, () =>
    fetchStats(target, o.minutes),
  );
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
  const settings = [lb, ...direct].find((r) => r.ping_interval_s !== null);
  const connections = summarizeConnections(
    rawConnections,
    Date.now(),
    settings?.ping_interval_s ?? 30,
    settings?.ping_timeout_s ?? 10,
  );
  return {
    url: target.url,
    lb_url: o.lbUrl,
    collected_at: new Date().toISOString(),
    minutes: o.minutes,
    status,
    connections,
    stats,
    health,
    ws_health: wsHealth,
    lb,
    direct,
  };
}
