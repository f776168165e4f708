/**
 * `archon-ws doctor`'s judgement (src/cli/doctor/diagnose.ts) on evidence shaped like what it
 * collects from a real gateway: every RB-003 fix it can point to, the load balancer, the
 * backplane, the onset reading of the per-minute series, and the incident summary; and some
 * of its rules (src/cli/doctor/rules.ts) run one at a time.
 */
import { describe, expect, it } from 'vitest';
import {
  errorsByType,
  fallbackClients,
  healthPath,
  loadBalancer,
  wsHealthPath,
} from '../../src/cli/doctor/client-rules.js';
import {
  diagnose,
  findOnset,
  ruleContext,
  type Rule,
  type RuleContext,
} from '../../src/cli/doctor/diagnose.js';
import {
  nearCapacity,
  queueBacklog,
  staleConnections,
  stuckInstances,
  unansweredInstances,
} from '../../src/cli/doctor/instance-rules.js';
import { RULES } from '../../src/cli/doctor/rules.js';
import { CliError, Exit, parseAnswer } from '../../src/cli/api.js';
import type { Instance } from '../../src/cli/commands/status.js';
import { ADMIN_READERS, StatusAnswerSchema } from '../../src/protocol/admin.js';
import {
  describeAlerts,
  referenceTime,
  summarizeAlerts,
  summarizeConnections,
  type Evidence,
} from '../../src/cli/doctor/evidence.js';
import { unacknowledgedAlerts } from '../../src/cli/doctor/alert-rules.js';
import { incidentReport } from '../../src/cli/doctor/report.js';
import { judge } from '../../src/cli/lb-checks.js';
import type { Probe } from '../../src/cli/lb-probe.js';
import type { StatsAnswer } from '../../src/protocol/index.js';
import { goodProbe } from '../support/probes.js';

const NOW = Date.parse('2026-11-27T10:45:30.000Z');

/** What a load balancer that does not forward Upgrade/Connection sends back (nginx → gateway). */
function strippedProbe(): Probe {
  return {
    url: 'ws://lb.example/api/v1/ws/test',
    requested_protocol: 'archon.v1',
    handshake: {
      status: 404,
      upgrade: null,
      connection: 'keep-alive',
      protocol: null,
      ms: 3.1,
      body: '{"error":{"code":"not_found","message":"no route GET /api/v1/ws/test"}}',
      error: 'answered HTTP 404 instead of 101',
      unreachable: false,
    },
    welcome: null,
    ping: null,
    echo: null,
    idle: null,
  };
}

/** A probe of a load balancer whose name does not resolve: no answer at all. */
function unreachableProbe(): Probe {
  return goodProbe('api-1', 'wss://lb.archon.ai/api/v1/ws/test', (p) => {
    p.handshake = {
      status: null,
      upgrade: null,
      connection: null,
      protocol: null,
      ms: null,
      body: null,
      error: 'ENOTFOUND',
      unreachable: true,
    };
    p.welcome = null;
    p.ping = null;
    p.echo = null;
  });
}

function series(
  rows: readonly [connections: number, messages: number, errors: number][],
): StatsAnswer['series'] {
  const start = Date.parse('2026-11-27T10:31:00.000Z');
  return rows.map(([connections, messages, errors], i) => ({
    minute: new Date(start + i * 60_000).toISOString(),
    connections,
    messages,
    errors,
  }));
}

/** 15 calm minutes: 120 connections, ~600 messages a minute, no errors. */
const CALM = series(Array.from({ length: 15 }, () => [120, 600, 0]));

const MB = 1024 * 1024;

function instance(server: string, over: Partial<Instance> = {}): Instance {
  return {
    server,
    active_connections: 60,
    peak_connections: 60,
    errors_last_hour: 1,
    max_connections: 10000,
    unauthenticated_connections: 0,
    max_unauthenticated: 1000,
    max_connections_per_user: 100,
    max_connections_per_ip: 1000,
    queue_depth: 0,
    broadcast_latency_p99_ms: 3.2,
    event_loop_lag_p99_ms: 11.5,
    memory: {
      rss_bytes: 96 * MB,
      heap_used_bytes: 48 * MB,
      heap_total_bytes: 64 * MB,
      external_bytes: MB,
    },
    started_at: '2026-11-26T10:52:10.000Z',
    uptime_seconds: 86_000,
    draining: false,
    backplane: { kind: 'redis', healthy: true },
    healthy: true,
    ...over,
  };
}

/** A healthy two-instance cluster, as doctor collects it; `edit` makes it sick. */
function evidence(edit: (e: Evidence) => void = () => {}): Evidence {
  const e: Evidence = {
    url: 'https://api.archon.ai',
    lb_url: 'https://api.archon.ai',
    collected_at: '2026-11-27T10:45:30.000Z',
    minutes: 15,
    status: {
      mode: 'cluster',
      active_connections: 120,
      peak_connections: 125,
      errors_last_hour: 2,
      queue_depth: 0,
      broadcast_latency_p99_ms: 3.2,
      event_loop_lag_p99_ms: 11.5,
      max_connections: 20000,
      unauthenticated_connections: 0,
      max_unauthenticated: 2000,
      max_connections_per_user: 100,
      max_connections_per_ip: 1000,
      memory: {
        rss_bytes: 192 * MB,
        heap_used_bytes: 96 * MB,
        heap_total_bytes: 128 * MB,
        external_bytes: 2 * MB,
      },
      instances: [instance('api-1'), instance('api-2')],
      missing_instances: [],
    },
    connections: summarizeConnections(
      Array.from({ length: 120 }, (_, i) => ({
        client_id: `c_${String(i).padStart(16, '0')}`,
        server: i % 2 === 0 ? 'api-1' : 'api-2',
        user_id: `user-${i % 40}`,
        remote_addr: '10.0.0.1',
        client_version: 'archon-dashboard/1.4.2',
        connected_at: '2026-11-27T08:00:00.000Z',
        last_seen_at: '2026-11-27T10:45:10.000Z',
        queue_depth: 0,
        channels: ['signals', 'positions:ACC1'],
        messages_sent: 1200,
        state: 'open',
        transport: 'websocket' as const,
      })),
      NOW,
      30,
      10,
    ),
    stats: {
      minutes: 15,
      missing_instances: [],
      errors_per_minute: 0,
      messages_per_minute: 600,
      connects_per_minute: 0.4,
      disconnects_per_minute: 0.33,
      errors_by_type: {},
      disconnects_by_code: { '1001': 5 },
      series: CALM,
    },
    alerts: { kind: 'read', unacked: 0, oldest_unacked_seconds: null, oldest: [] },
    health: { http_status: 200, status: 'ok', server: 'api-1', backplane: 'up', error: null },
    ws_health: { ok: true, status: 'ok', server: 'api-2', error: null },
    lb: judge(goodProbe()),
    direct: [],
  };
  edit(e);
  return e;
}

const remedies = (e: Evidence) => diagnose(e).findings.map((f) => f.remedy);
const finding = (e: Evidence, remedy: string) => {
  const f = diagnose(e).findings.find((x) => x.remedy === remedy);
  if (!f) throw new Error(`no ${remedy} finding`);
  return f;
};

describe('doctor diagnosis', () => {
  it('finds no fault on a healthy cluster', () => {
    const d = diagnose(evidence());
    expect(d.healthy).toBe(true);
    expect(d.findings).toEqual([]);
    expect(d.verdict).toBe(
      'no fault found: all 4 success criteria pass, the load balancer upgrades and echoes (api-1 answered), 2 instance(s) healthy',
    );
    expect(d.onset.kind).toBe('none');
  });

  it('points to Fix A when connections the gateway should have closed are still open', () => {
    const raw = Array.from({ length: 40 }, (_, i) => ({
      client_id: `c_${i}`,
      server: 'api-1',
      user_id: `user-${i}`,
      client_version: 'archon-dashboard/1.4.2',
      connected_at: '2026-11-27T09:00:00.000Z',
      // 12 have not been heard from for 10 minutes: the ping deadline is 40 s.
      last_seen_at: i < 12 ? '2026-11-27T10:35:30.000Z' : '2026-11-27T10:45:20.000Z',
      queue_depth: 0,
      state: 'open',
      transport: 'websocket' as const,
    }));
    const e = evidence((x) => {
      x.connections = summarizeConnections(raw, NOW, 30, 10);
      x.stats.series = series(Array.from({ length: 15 }, (_, i) => [20 + i * 2, 600, 0]));
      x.stats.connects_per_minute = 2;
      x.stats.disconnects_per_minute = 0;
    });
    const f = finding(e, 'fix-a');
    expect(remedies(e)).toEqual(['fix-a']);
    expect(f.title).toBe('Fix A: Restart Stale Connections');
    expect(f.severity).toBe('critical');
    expect(f.commands).toEqual(['archon-ws cleanup']);
    expect(f.evidence[0]).toMatch(/^12 of 40 connections silent for more than 45 s/);
    expect(f.evidence[1]).toMatch(/^longest silent: c_0 \(user-0, open, on api-1\) 600 s/);
    expect(f.evidence).toContain(
      'connections grew from 20 to 48 over the last 15 min (2 connects/min vs 0 disconnects/min)',
    );
    expect(f.evidence.at(-1)).toMatch(
      /^memory 192\.0 MB rss for 120 connections \(1638 KB each\)$/,
    );
  });

  it('points to Fix B when client queues are backed up', () => {
    const raw = Array.from({ length: 120 }, (_, i) => ({
      client_id: `c_${i}`,
      server: i < 3 ? 'api-2' : 'api-1',
      user_id: `user-${i}`,
      client_version: i < 3 ? 'archon-dashboard/1.3.0' : 'archon-dashboard/1.4.2',
      connected_at: '2026-11-27T09:00:00.000Z',
      last_seen_at: '2026-11-27T10:45:20.000Z',
      queue_depth: i < 3 ? [812, 300, 128][i]! : 0,
      state: 'open',
      transport: 'websocket' as const,
    }));
    const e = evidence((x) => {
      x.connections = summarizeConnections(raw, NOW, 30, 10);
      x.status.queue_depth = 1240;
      x.status.broadcast_latency_p99_ms = 1830;
      x.status.instances[1] = instance('api-2', {
        queue_depth: 1240,
        broadcast_latency_p99_ms: 1830,
      });
      x.stats.errors_per_minute = 0.4;
      x.stats.errors_by_type = { slow_consumer: 6 };
      x.stats.disconnects_by_code = { '4008': 6 };
    });
    const f = finding(e, 'fix-b');
    expect(remedies(e)).toEqual(['fix-b']);
    expect(f).toMatchObject({
      title: 'Fix B: Clear Message Queue',
      severity: 'critical',
      commands: ['archon-ws flush'],
    });
    expect(f.evidence).toEqual([
      'queue depth 1240 (success criterion < 100, alert > 1000) in 3 client queue(s)',
      'per instance: api-2 1240',
      'deepest: c_0 (user-0, archon-dashboard/1.3.0, on api-2) 812; c_1 (user-1, archon-dashboard/1.3.0, on api-2) 300; c_2 (user-2, archon-dashboard/1.3.0, on api-2) 128',
      'broadcast p99 1830 ms (criterion < 500 ms)',
      '6 slow_consumer error(s), 6 disconnect(s) with 4008 in the last 15 min',
    ]);
  });

  it('points to Fix C for an instance that registered but does not answer', () => {
    const e = evidence((x) => {
      x.status.instances.push({ ...instance('api-3'), active_connections: 0, healthy: false });
      x.status.missing_instances = ['api-3'];
    });
    const f = finding(e, 'fix-c');
    expect(remedies(e)).toEqual(['fix-c']);
    expect(f.title).toBe('Fix C: Restart WebSocket Manager');
    expect(f.evidence[0]).toMatch(/^api-3 registered but did not answer the admin request/);
    expect(f.commands[0]).toBe(
      'docker restart $(docker ps -q --filter name=archon_api.<slot of api-3>)  # api-3 only',
    );
  });

  it('points to Fix C for one instance whose event loop is stuck', () => {
    const e = evidence((x) => {
      x.status.instances[0] = instance('api-1', { event_loop_lag_p99_ms: 2400 });
    });
    expect(remedies(e)).toEqual(['fix-c']);
    expect(finding(e, 'fix-c').evidence).toEqual([
      'api-1: event-loop lag p99 2400 ms (others under 1000 ms): that instance is stuck',
    ]);
  });

  it('points to Fix C when upgrades fail straight to the instances as well', () => {
    const e = evidence((x) => {
      x.lb = judge(strippedProbe());
      const direct = strippedProbe();
      direct.url = 'ws://10.0.1.11:8000/api/v1/ws/test';
      x.direct = [judge(direct)];
    });
    expect(remedies(e)).toEqual(['fix-c']);
    expect(finding(e, 'fix-c').evidence[1]).toMatch(
      /^straight to the instances too: ws:\/\/10\.0\.1\.11:8000\/api\/v1\/ws\/test: HTTP 101 → 404/,
    );
  });

  it('points to Fix D when an instance is near its connection limit, with how many to scale to', () => {
    const e = evidence((x) => {
      x.status.active_connections = 18_900;
      x.status.peak_connections = 18_900;
      x.status.instances = [
        instance('api-1', { active_connections: 9_500, peak_connections: 9_500 }),
        instance('api-2', { active_connections: 9_400, peak_connections: 9_400 }),
      ];
    });
    const f = finding(e, 'fix-d');
    expect(remedies(e)).toEqual(['fix-d']);
    expect(f.title).toBe('Fix D: Scale Up');
    expect(f.evidence).toEqual([
      'api-1: 9500 of 10000 connections (95 %, WEBSOCKET_MAX_CONNECTIONS): new clients get 503 at_capacity / 1013',
      'api-2: 9400 of 10000 connections (94 %, WEBSOCKET_MAX_CONNECTIONS): new clients get 503 at_capacity / 1013',
      '18900 connections on 2 instance(s); at 70 % per instance that needs 3',
    ]);
    expect(f.commands).toEqual(['docker service scale archon_api=3']);
  });

  it('points to Fix D when broadcasts are slow and every instance is busy', () => {
    const e = evidence((x) => {
      x.status.broadcast_latency_p99_ms = 1450;
      x.status.instances = [
        instance('api-1', { event_loop_lag_p99_ms: 380 }),
        instance('api-2', { event_loop_lag_p99_ms: 420 }),
      ];
    });
    expect(remedies(e)).toEqual(['fix-d']);
    expect(finding(e, 'fix-d').evidence[0]).toBe(
      'broadcast p99 1450 ms (criterion < 500 ms, alert > 1000 ms) with queue depth 0; event-loop lag p99 api-1 380 ms, api-2 420 ms: the instances are overloaded',
    );
  });

  it('points to Step 4 when the upgrade fails through the load balancer but passes direct', () => {
    const e = evidence((x) => {
      x.lb = judge(strippedProbe());
      x.ws_health = {
        ok: false,
        status: null,
        server: null,
        error: 'answered HTTP 404 instead of 101',
      };
      x.direct = [judge(goodProbe('api-1', 'ws://10.0.1.11:8000/api/v1/ws/test'))];
    });
    const f = finding(e, 'step-4');
    expect(remedies(e)).toEqual(['step-4']);
    expect(f.title).toBe('Step 4: Load Balancer Fixes');
    expect(f.evidence[0]).toBe(
      'WebSocket upgrade through ws://lb.example/api/v1/ws/test: HTTP 101 → 404: the gateway got a plain GET, the load balancer did not pass the upgrade on; Upgrade: websocket → missing; Connection: upgrade → Connection: keep-alive',
    );
    expect(f.evidence[1]).toBe(
      'the upgrade to /api/v1/ws/health fails too (answered HTTP 404 instead of 101)',
    );
    expect(f.evidence[2]).toBe(
      'the same check straight to ws://10.0.1.11:8000 (api-1) passes: the load balancer is at fault',
    );
    expect(f.commands).toEqual(['archon-ws check-lb --idle 90s']);
  });

  it('points to Step 4 from HTTP passing and the upgrade failing through one URL', () => {
    const e = evidence((x) => {
      x.lb = judge(strippedProbe());
    });
    expect(finding(e, 'step-4').evidence[1]).toMatch(
      /^plain HTTP through the same URL reaches the gateway \(the admin API answered, \/api\/health 200\), only the upgrade fails/,
    );
  });

  it('points to Step 4 when connections dropped with 1006, cut without a close frame', () => {
    const e = evidence((x) => {
      x.status.active_connections = 40;
      x.stats.disconnects_by_code = { '1006': 82, '1001': 3 };
      x.stats.disconnects_per_minute = 5.67;
      x.stats.series = series([
        ...Array.from({ length: 10 }, (): [number, number, number] => [120, 600, 0]),
        [40, 210, 0],
        [40, 200, 0],
        [40, 200, 0],
        [40, 200, 0],
        [40, 90, 0],
      ]);
    });
    const d = diagnose(e);
    expect(d.findings.map((f) => f.remedy)).toEqual(['step-4']);
    expect(d.findings[0]?.evidence[0]).toBe(
      '40 of peak 125 (32 %); disconnects in the last 15 min: 1006 ×82, 1001 ×3: cut without a close frame, the network or a proxy in between is dropping connections (try check-lb --idle 90s)',
    );
    expect(d.onset).toEqual({
      kind: 'sudden',
      minute: '2026-11-27T10:41:00.000Z',
      description: 'sudden — connections fell from 120 to 40 within a minute at 10:41Z',
    });
  });

  it('names a Redis backplane outage as what it is, not one of Fix A–D', () => {
    const e = evidence((x) => {
      x.status.instances = [
        instance('api-1', { backplane: { kind: 'redis', healthy: false }, healthy: false }),
        instance('api-2', { backplane: { kind: 'redis', healthy: false }, healthy: false }),
      ];
      x.status.cluster_error = 'Redis unreachable: this instance answered alone';
      x.health = {
        http_status: 200,
        status: 'degraded',
        server: 'api-1',
        backplane: 'down',
        error: null,
      };
      x.stats.messages_per_minute = 120;
      x.stats.series = series([
        ...Array.from({ length: 12 }, (): [number, number, number] => [120, 600, 0]),
        [120, 0, 0],
        [120, 0, 0],
        [120, 0, 0],
      ]);
    });
    const d = diagnose(e);
    expect(d.findings.map((f) => f.remedy)).toEqual(['backplane']);
    expect(d.findings[0]?.title).toBe(
      'Redis backplane down (alert ArchonWebSocketBackplaneDown; not one of Fix A–D)',
    );
    expect(d.findings[0]?.evidence).toEqual([
      'backplane (redis) down on api-1, api-2 of 2 instance(s)',
      '/api/health answers "degraded" with backplane "down" (api-1): publishes answer 503, so nothing new reaches clients',
      'admin API: Redis unreachable: this instance answered alone',
      '120 messages/min delivered over the last 15 min; clients stay connected and resume once Redis is back (docs/cluster.md)',
    ]);
    expect(d.onset.description).toBe('sudden — messages fell from 600/min to 0/min at 10:43Z');
  });

  it('reads a fall of connections closed with 1013 as admission refusals, not a full instance', () => {
    const e = evidence((x) => {
      x.status.active_connections = 5;
      x.status.peak_connections = 1500;
      x.stats.disconnects_by_code = { '1013': 1450 };
      x.stats.series = series(
        Array.from({ length: 15 }, (_, i): [number, number, number] => [i < 10 ? 1500 : 5, 600, 0]),
      );
    });
    const d = diagnose(e);
    expect(d.findings.map((f) => f.remedy)).toEqual(['refused']);
    expect(d.findings[0]?.evidence[0]).toContain("closed by the gateway's admission limits (1013");
  });

  it('reads a flood of refused sockets as hostile or broken clients the gateway turned away', () => {
    const e = evidence((x) => {
      x.stats.errors_per_minute = 4200;
      x.stats.errors_by_type = { unauthenticated_evicted: 57000, unauthenticated_limit: 2100 };
    });
    const d = diagnose(e);
    expect(d.findings.map((f) => f.remedy)).toEqual(['refused']);
    expect(d.findings[0]?.severity).toBe('warning');
    expect(d.findings[0]?.evidence[0]).toContain('57000 of them unauthenticated_evicted');
    expect(d.findings[0]?.commands).toContain('archon-ws connections --group-by addr');
  });

  it('reads rejected tokens as a client-side problem', () => {
    const e = evidence((x) => {
      x.stats.errors_per_minute = 14.2;
      x.stats.errors_by_type = { token_expired: 190, unauthorized: 23 };
      // Tokens expiring one after another: 2, 4, 6 … errors a minute.
      x.stats.series = series(
        Array.from({ length: 15 }, (_, i): [number, number, number] => [120, 600, 2 * (i + 1)]),
      );
    });
    const d = diagnose(e);
    expect(d.findings.map((f) => f.remedy)).toEqual(['clients']);
    expect(d.findings[0]?.severity).toBe('critical');
    expect(d.findings[0]?.evidence[0]).toBe(
      "14.2 errors/min over the last 15 min, 190 of them token_expired: clients' tokens or sign-in (4001): check the identity provider and the JWT key (ARCHON_JWT_*)",
    );
    expect(d.onset.kind).toBe('gradual');
    expect(d.onset).toEqual({
      kind: 'gradual',
      minute: '2026-11-27T10:31:00.000Z',
      description: 'gradual — errors rose over 5 min, from 2/min at 10:31Z to 10/min at 10:35Z',
    });
  });

  it('escalates a drop it cannot explain', () => {
    // The per-minute series shows the fall (a shortfall against today's peak alone is not a
    // drop), and the gateway recorded no close of its own for it.
    const e = evidence((x) => {
      x.status.active_connections = 30;
      x.stats.disconnects_by_code = {};
      x.stats.series = series([
        ...Array.from({ length: 10 }, (): [number, number, number] => [120, 600, 0]),
        ...Array.from({ length: 5 }, (): [number, number, number] => [30, 150, 0]),
      ]);
    });
    expect(remedies(e)).toEqual(['escalate']);
    expect(finding(e, 'escalate').evidence[0]).toMatch(
      /^30 of peak 125 \(24 %\); disconnects in the last 15 min: none: the gateway saw no reason of its own/,
    );
  });

  it('calls a high broadcast p99 with no backlog and no lag history, not a fault', () => {
    const e = evidence((x) => {
      x.status.broadcast_latency_p99_ms = 2648;
    });
    const d = diagnose(e);
    expect(d.healthy).toBe(true);
    expect(d.criteria.find((c) => c.name === 'broadcast latency p99')?.pass).toBe(false);
    expect(d.notes[0]).toMatch(/the p99 covers the last 2048 deliveries/);
    expect(d.verdict).toMatch(/^no fault found: broadcast latency p99 still above target/);
  });

  it('lists every finding, critical first', () => {
    const e = evidence((x) => {
      x.status.queue_depth = 150;
      x.status.missing_instances = ['api-3'];
      x.status.instances.push({ ...instance('api-3'), healthy: false });
    });
    expect(diagnose(e).findings.map((f) => [f.remedy, f.severity])).toEqual([
      ['fix-c', 'critical'],
      ['fix-b', 'warning'],
    ]);
  });
});

/** The gateway's own refusal of the test endpoint upgrade: its JSON error with a 503. */
function refusedProbe(code: string, message: string): Probe {
  return goodProbe('api-1', 'ws://lb.example/api/v1/ws/test', (p) => {
    p.handshake = {
      status: 503,
      upgrade: null,
      connection: 'close',
      protocol: null,
      ms: 2.4,
      body: JSON.stringify({ error: { code, message } }),
      error: 'answered HTTP 503 instead of 101',
      unreachable: false,
    };
    p.welcome = null;
    p.ping = null;
    p.echo = null;
  });
}

describe('doctor diagnosis: ordinary situations are not faults', () => {
  it('calls a drop explained by a rolling restart (1012) a note, not an escalation', () => {
    // api-1 restarted 5 min ago, api-2 2.5 min ago: each instance's peak saw clients of the
    // other one, so the summed peak is above anything the cluster had at once.
    const e = evidence((x) => {
      x.status.active_connections = 70;
      x.status.peak_connections = 180;
      x.status.instances = [
        instance('api-1', { active_connections: 40, peak_connections: 120, uptime_seconds: 300 }),
        instance('api-2', { active_connections: 30, peak_connections: 60, uptime_seconds: 150 }),
      ];
      x.stats.disconnects_by_code = { '1012': 118, '1001': 2, '1006': 1 };
      x.stats.series = series([
        ...Array.from({ length: 10 }, (): [number, number, number] => [120, 600, 0]),
        [50, 250, 0],
        [60, 300, 0],
        [65, 330, 0],
        [70, 350, 0],
        [70, 350, 0],
      ]);
    });
    const d = diagnose(e);
    expect(d.findings).toEqual([]);
    expect(d.healthy).toBe(true);
    expect(d.notes.join('\n')).toMatch(
      /^70 of peak 180 \(39 %\); disconnects in the last 15 min: 1012 ×118, 1001 ×2, 1006 ×1: explained by a restart \(1012 ×118\), clients going away \(1001 ×2\); not a fault/m,
    );
    expect(d.verdict).toMatch(
      /^no fault found: connections below today's peak with no fault behind it \(see notes\)/,
    );
  });

  it('calls the evening (fewer clients than at the peak, closed normally) no fault', () => {
    const declining = series(
      Array.from({ length: 15 }, (_, i): [number, number, number] => [400 - i * 6, 2000, 0]),
    );
    const e = evidence((x) => {
      x.status.active_connections = 316;
      x.status.peak_connections = 900;
      x.stats.disconnects_by_code = { '1000': 40, '1001': 55, '1006': 2 };
      x.stats.series = declining;
    });
    const d = diagnose(e);
    expect(d.findings).toEqual([]);
    expect(d.notes.join('\n')).toMatch(
      /explained by clients going away \(1001 ×55\), normal closes \(1000 ×40\)/,
    );

    // Flat at the evening level: no drop at all in the window.
    const flat = evidence((x) => {
      x.status.active_connections = 310;
      x.status.peak_connections = 900;
      x.stats.disconnects_by_code = { '1001': 12 };
      x.stats.series = series(Array.from({ length: 15 }, () => [310, 1500, 0]));
    });
    const f = diagnose(flat);
    expect(f.findings).toEqual([]);
    expect(f.notes.join('\n')).toMatch(/no drop in the per-minute series of the last 15 min/);
  });

  it('does not call one lost connection of a small deployment a load balancer fault', () => {
    const e = evidence((x) => {
      x.status.mode = 'embedded';
      x.status.active_connections = 3;
      x.status.peak_connections = 4;
      x.status.instances = [instance('api-1', { active_connections: 3, peak_connections: 4 })];
      x.stats.disconnects_by_code = { '1006': 1 };
      x.stats.series = series([
        ...Array.from({ length: 12 }, (): [number, number, number] => [4, 20, 0]),
        [3, 15, 0],
        [3, 15, 0],
        [3, 15, 0],
      ]);
    });
    const d = diagnose(e);
    expect(d.findings).toEqual([]);
    expect(d.healthy).toBe(true);
  });

  it('still names Step 4 for a large drop by 1006', () => {
    const cut = evidence((x) => {
      x.status.active_connections = 60;
      x.stats.disconnects_by_code = { '1006': 58, '1012': 4 };
      x.stats.series = series([
        ...Array.from({ length: 12 }, (): [number, number, number] => [120, 600, 0]),
        [62, 300, 0],
        [60, 300, 0],
        [60, 300, 0],
      ]);
    });
    expect(diagnose(cut).findings.map((f) => [f.remedy, f.severity])).toEqual([
      ['step-4', 'critical'],
    ]);
  });
});

describe('doctor diagnosis: stale connections measured right', () => {
  const raw = (lastSeen: (i: number) => string) =>
    Array.from({ length: 40 }, (_, i) => ({
      client_id: `c_${i}`,
      server: 'api-1',
      user_id: `user-${i}`,
      client_version: 'archon-dashboard/1.4.2',
      connected_at: '2026-11-27T09:00:00.000Z',
      last_seen_at: lastSeen(i),
      queue_depth: 0,
      state: 'open',
      transport: 'websocket' as const,
    }));

  it("takes the time from the gateway's Date header, not a skewed local clock read after the probes", () => {
    // Every client answered a ping 20 s before the gateway answered (ping deadline 45 s);
    // the local clock is 2 min ahead and was read after 30 s of probes.
    const answered = raw(() => '2026-11-27T10:45:10.000Z');
    const localAfterProbes = NOW + 120_000 + 30_000;
    const ref = referenceTime(new Date(NOW).toUTCString(), localAfterProbes);
    expect(ref).toEqual({
      ms: NOW - 1000,
      at: '2026-11-27T10:45:29.000Z',
      source: 'gateway Date header',
    });
    const c = summarizeConnections(answered, ref.ms, 30, 10, ref.source);
    expect(c.stale).toBe(0);
    expect(c.reference).toEqual({ at: '2026-11-27T10:45:29.000Z', source: 'gateway Date header' });
    // What the local clock would have said: every healthy client stale.
    expect(summarizeConnections(answered, localAfterProbes, 30, 10).stale).toBe(40);
    expect(
      remedies(
        evidence((x) => {
          x.connections = c;
        }),
      ),
    ).toEqual([]);
  });

  it('falls back to the local time the answer arrived when it has no Date header', () => {
    expect(referenceTime(null, NOW)).toEqual({
      ms: NOW,
      at: '2026-11-27T10:45:30.000Z',
      source: 'local clock',
    });
    expect(referenceTime('not a date', NOW).source).toBe('local clock');
  });

  it('does not flag Fix A from a guessed threshold when the ping settings could not be read', () => {
    // 12 silent for 2 min: stale with the default 30 s + 10 s, not with a 300 s interval.
    const c = summarizeConnections(
      raw((i) => (i < 12 ? '2026-11-27T10:43:30.000Z' : '2026-11-27T10:45:20.000Z')),
      NOW,
      null,
      null,
    );
    expect(c).toMatchObject({
      stale: 0,
      stale_after_s: 7205,
      ping_settings_known: false,
      silent_past_default: 12,
    });
    const e = evidence((x) => {
      x.connections = c;
      x.lb = judge(strippedProbe());
    });
    const d = diagnose(e);
    expect(d.findings.map((f) => f.remedy)).toEqual(['step-4']);
    expect(d.notes.join('\n')).toMatch(
      /12 of 40 connections silent for more than 45 s, which is stale only with the default ping settings .* the stale threshold is a guess and Fix A is not judged from it/,
    );
  });
});

describe('doctor diagnosis: the test endpoint busy or full', () => {
  it('says the load balancer was not checked, and recommends no restart', () => {
    const e = evidence((x) => {
      x.lb = judge(refusedProbe('at_capacity', 'server at capacity'));
    });
    expect(e.lb.verdict).toBe('incomplete');
    const d = diagnose(e);
    expect(d.findings).toEqual([]);
    expect(d.healthy).toBe(true);
    expect(d.unchecked).toHaveLength(1);
    expect(d.notes[0]).toMatch(
      /^load balancer not checked: the test endpoint is full \(at_capacity: all its test connections are in use\): check-lb could not run; try again later\. That is the test endpoint's own limit, not the clients': the status answer shows room for clients \(120 connected of 20000\)$/,
    );
    expect(d.verdict).toMatch(/the load balancer was not checked: the test endpoint is full/);
  });

  it('names Fix D only from the status answer, never a restart', () => {
    const e = evidence((x) => {
      x.lb = judge(refusedProbe('test_endpoint_busy', '10 test connections held longer …'));
      x.status.active_connections = 18_900;
      x.status.peak_connections = 18_900;
      x.status.instances = [
        instance('api-1', { active_connections: 9_500, peak_connections: 9_500 }),
        instance('api-2', { active_connections: 9_400, peak_connections: 9_400 }),
      ];
    });
    const d = diagnose(e);
    expect(d.findings.map((f) => f.remedy)).toEqual(['fix-d']);
    expect(d.notes[0]).toMatch(/the test endpoint is busy \(test_endpoint_busy: 10 test/);
    expect(d.notes[0]).toMatch(/the instances are at capacity too \(see Fix D\)$/);
  });
});

describe('doctor diagnosis: Step 4 says what was seen', () => {
  const says = (e: Evidence) => finding(e, 'step-4').evidence.join('\n');

  it('claims plain HTTP reaches the gateway only through the same URL', () => {
    const e = evidence((x) => {
      x.lb_url = 'https://lb.archon.ai';
      x.lb = judge(strippedProbe());
    });
    expect(says(e)).not.toMatch(/plain HTTP through the same URL/);
    expect(says(e)).toMatch(
      /the admin API answered at https:\/\/api\.archon\.ai, another URL than the one probed \(https:\/\/lb\.archon\.ai\)/,
    );
    // ws:// and http:// of one host and port are the same URL.
    const same = evidence((x) => {
      x.lb_url = 'wss://api.archon.ai';
      x.lb = judge(strippedProbe());
    });
    expect(says(same)).toMatch(/plain HTTP through the same URL reaches the gateway/);
  });

  it('reports a load balancer that does not answer as unreachable', () => {
    const e = evidence((x) => {
      x.lb_url = 'https://lb.archon.ai';
      x.lb = judge(unreachableProbe());
    });
    const f = finding(e, 'step-4');
    expect(f.evidence[0]).toBe('cannot reach the load balancer at https://lb.archon.ai: ENOTFOUND');
    expect(says(e)).not.toMatch(/does not pass WebSocket upgrades/);
  });

  it('describes a 101 with no welcome after it as that', () => {
    const e = evidence((x) => {
      x.lb = judge(
        goodProbe('api-1', undefined, (p) => {
          p.welcome = { error: 'no welcome in time' };
          p.ping = null;
          p.echo = null;
        }),
      );
    });
    expect(says(e)).toMatch(
      /the upgrade was answered with 101 but no welcome followed \(no welcome in time\)/,
    );
    expect(says(e)).not.toMatch(/does not pass WebSocket upgrades/);
  });
});

describe('doctor diagnosis: clients on the HTTP streaming fallback', () => {
  /** 120 connections of 40 users; the first `sse` of them streams over the fallback and has
   * POSTed nothing since it connected at 08:00 (2 h 45 min of silence, never pinged). */
  const onFallback = (sse: number) =>
    summarizeConnections(
      Array.from({ length: 120 }, (_, i) => ({
        client_id: `c_${i}`,
        server: i % 2 === 0 ? 'api-1' : 'api-2',
        user_id: `user-${i % 40}`,
        client_version: 'archon-dashboard/1.5.0',
        connected_at: '2026-11-27T08:00:00.000Z',
        last_seen_at: i < sse ? '2026-11-27T08:00:00.000Z' : '2026-11-27T10:45:10.000Z',
        queue_depth: 0,
        state: 'open',
        transport: i < sse ? ('sse' as const) : ('websocket' as const),
      })),
      NOW,
      30,
      10,
    );

  it('never counts a stream as stale, however long it has been silent, and counts it by transport', () => {
    const c = onFallback(3);
    expect(c).toMatchObject({
      total: 120,
      by_transport: { websocket: 117, sse: 3 },
      users: 40,
      sse_users: 3,
      stale: 0,
      stale_examples: [],
    });
    // Without the gateway's ping settings, nor past the defaults.
    expect(summarizeConnections([], NOW, null, null).by_transport).toEqual({
      websocket: 0,
      sse: 0,
    });
    const guessed = summarizeConnections(
      [
        {
          client_id: 'c_1',
          server: 'api-1',
          user_id: 'user-1',
          client_version: null,
          connected_at: '2026-11-27T08:00:00.000Z',
          last_seen_at: '2026-11-27T08:00:00.000Z',
          queue_depth: 0,
          state: 'open',
          transport: 'sse',
        },
      ],
      NOW,
      null,
      null,
    );
    expect(guessed).toMatchObject({ stale: 0, silent_past_default: 0, sse_users: 1 });
    expect(remedies(evidence((x) => (x.connections = c)))).not.toContain('fix-a');
  });

  it("names Step 4 as a warning while the upgrade passes from here: lost on those clients' own way in", () => {
    const e = evidence((x) => {
      x.connections = onFallback(3);
    });
    const d = diagnose(e);
    expect(d.healthy).toBe(false);
    expect(d.findings).toEqual([
      {
        remedy: 'step-4',
        title: 'Step 4: Load Balancer Fixes',
        severity: 'warning',
        evidence: [
          "3 of 120 clients (3 users) are on the HTTP streaming fallback: their WebSocket upgrade does not get through a proxy or load balancer (RB-003 Step 4). They are live. The upgrade through https://api.archon.ai passes from here, so it is lost on those clients' own way in (a proxy of their network, or another entry point: archon-ws connections --group-by addr shows where they connect from); once it gets through they move back to WebSocket by themselves",
        ],
        commands: ['archon-ws check-lb --idle 90s'],
      },
    ]);
    expect(d.verdict).toBe('1 finding(s): Step 4: Load Balancer Fixes');
  });

  it('adds them to the Step 4 finding of an upgrade failing through the load balancer, which stays critical', () => {
    const e = evidence((x) => {
      x.connections = onFallback(120);
      x.lb = judge(strippedProbe());
    });
    expect(remedies(e)).toEqual(['step-4']);
    const f = finding(e, 'step-4');
    expect(f.severity).toBe('critical');
    expect(f.evidence[0]).toMatch(
      /^WebSocket upgrade through ws:\/\/lb\.example\/api\/v1\/ws\/test: /,
    );
    expect(f.evidence.at(-1)).toBe(
      '120 of 120 clients (40 users) are on the HTTP streaming fallback: their WebSocket upgrade does not get through a proxy or load balancer (RB-003 Step 4), as the failed upgrade through https://api.archon.ai shows. They are live; fix the upgrade path and they move back to WebSocket by themselves',
    );
    // A load balancer the probe cannot reach: clients on the fallback do connect somehow.
    const unreachable = (sse: number) =>
      finding(
        evidence((x) => {
          x.connections = onFallback(sse);
          x.lb_url = 'https://lb.archon.ai';
          x.lb = judge(unreachableProbe());
        }),
        'step-4',
      ).evidence.join('\n');
    expect(unreachable(0)).toMatch(/is at fault, and clients cannot connect at all$/m);
    expect(unreachable(120)).not.toMatch(/clients cannot connect at all/);
    expect(unreachable(120)).toMatch(
      /as the failed upgrade through https:\/\/lb\.archon\.ai shows/,
    );
  });

  it('says what the upgrade needs when the load balancer could not be checked', () => {
    const e = evidence((x) => {
      x.connections = onFallback(1);
      x.lb = judge(refusedProbe('test_endpoint_busy', 'busy'));
    });
    const cx = ruleContext(e);
    fallbackClients(e, cx);
    expect(cx.findings.list.map((f) => [f.remedy, f.severity])).toEqual([['step-4', 'warning']]);
    expect(cx.findings.list[0]?.evidence).toEqual([
      '1 of 120 clients (1 user) is on the HTTP streaming fallback: their WebSocket upgrade does not get through a proxy or load balancer (RB-003 Step 4). They are live; fix the upgrade path (nginx: proxy_http_version 1.1, proxy_set_header Upgrade $http_upgrade, proxy_set_header Connection $connection_upgrade (deploy/nginx/archon-ws.conf)) and they move back to WebSocket by themselves',
    ]);
    const none = ruleContext(evidence());
    fallbackClients(evidence(), none);
    expect(none.findings.list).toEqual([]);
  });

  it('lets an unexplained failing criterion still escalate beside them', () => {
    const e = evidence((x) => {
      x.connections = onFallback(2);
      x.stats.errors_per_minute = 4;
    });
    expect(remedies(e)).toEqual(['escalate', 'step-4']);
  });

  it('puts the count by transport in the incident summary', () => {
    const e = evidence((x) => {
      x.connections = onFallback(3);
    });
    const md = incidentReport(e, diagnose(e));
    expect(md).toContain(
      '- by transport: websocket ×117, sse ×3 (3 user(s) on the HTTP streaming fallback: their WebSocket upgrade does not get through, RB-003 Step 4)',
    );
    expect(md).toContain(
      '- 0 with messages queued; 0 silent for more than 45 s (WebSockets only: a stream is never pinged, its silence says nothing)',
    );
    expect(md).toContain('### 1. Step 4: Load Balancer Fixes (warning)');
    expect(incidentReport(evidence(), diagnose(evidence()))).toContain(
      '- by transport: websocket ×120, sse ×0\n',
    );
  });
});

describe('doctor diagnosis: findings judged on their own', () => {
  it('names a busy instance (Fix C) beside a queue backlog (Fix B)', () => {
    const e = evidence((x) => {
      x.status.queue_depth = 1240;
      x.status.broadcast_latency_p99_ms = 1830;
      x.status.instances[1] = instance('api-2', {
        queue_depth: 1240,
        broadcast_latency_p99_ms: 1830,
        event_loop_lag_p99_ms: 450,
      });
    });
    expect(remedies(e).sort()).toEqual(['fix-b', 'fix-c']);
    expect(finding(e, 'fix-c').evidence[0]).toMatch(
      /event-loop lag p99 high on api-2 450 ms only$/,
    );
    expect(finding(e, 'fix-c').commands[0]).toMatch(/<slot of api-2>/);
  });
});

describe('doctor rules, one at a time', () => {
  /** One rule on a fresh context (or one `before` prepared as earlier rules would). */
  const run = (rule: Rule, e: Evidence, before: (cx: RuleContext) => void = () => {}) => {
    const cx = ruleContext(e);
    before(cx);
    rule(e, cx);
    return cx;
  };
  /** 12 of 40 connections not heard from for 10 minutes: the ping deadline is 40 s. */
  const stale = () =>
    summarizeConnections(
      Array.from({ length: 40 }, (_, i) => ({
        client_id: `c_${i}`,
        server: 'api-1',
        user_id: `user-${i}`,
        client_version: 'archon-dashboard/1.4.2',
        connected_at: '2026-11-27T09:00:00.000Z',
        last_seen_at: i < 12 ? '2026-11-27T10:35:30.000Z' : '2026-11-27T10:45:20.000Z',
        queue_depth: 0,
        state: 'open',
        transport: 'websocket' as const,
      })),
      NOW,
      30,
      10,
    );

  it('runs every rule once, in the order the runbook sections are read', () => {
    expect(RULES.map((r) => r.name)).toEqual([
      'backplaneDown',
      'unansweredInstances',
      'stuckInstances',
      'drainingInstances',
      'nearCapacity',
      'queueBacklog',
      'staleConnections',
      'loadBalancer',
      'wsHealthPath',
      'healthPath',
      'errorsByType',
      'belowBaseline',
      'slowBroadcasts',
      'unexplainedCriteria',
      'fallbackClients',
      'unacknowledgedAlerts',
    ]);
  });

  it('queueBacklog finds Fix B in a backlog; staleConnections has nothing to say about it', () => {
    const e = evidence((x) => {
      x.status.queue_depth = 640;
    });
    const cx = run(queueBacklog, e);
    expect(cx.findings.list).toEqual([
      {
        remedy: 'fix-b',
        title: 'Fix B: Clear Message Queue',
        severity: 'warning',
        evidence: [
          'queue depth 640 (success criterion < 100, alert > 1000) in 0 client queue(s)',
          'broadcast p99 3.2 ms (criterion < 500 ms)',
        ],
        commands: ['archon-ws flush'],
      },
    ]);
    expect(cx.notes).toEqual([]);
    const quiet = run(staleConnections, e);
    expect(quiet.findings.list).toEqual([]);
    expect(quiet.notes).toEqual([]);
  });

  it('staleConnections finds Fix A in connections kept past the ping deadline; queueBacklog does not', () => {
    const e = evidence((x) => {
      x.connections = stale();
    });
    const cx = run(staleConnections, e);
    expect(cx.findings.list.map((f) => [f.remedy, f.severity])).toEqual([['fix-a', 'critical']]);
    expect(cx.findings.list[0]?.evidence[0]).toMatch(
      /^12 of 40 connections silent for more than 45 s \(ping interval \+ ping timeout \+ 5 s\)/,
    );
    expect(run(queueBacklog, e).findings.list).toEqual([]);
    expect(run(nearCapacity, e).findings.list).toEqual([]);
  });

  it('nearCapacity finds Fix D on full instances; stuckInstances stays quiet on them', () => {
    const e = evidence((x) => {
      x.status.active_connections = 18_900;
      x.status.instances = [
        instance('api-1', { active_connections: 9_500 }),
        instance('api-2', { active_connections: 9_400 }),
      ];
    });
    const cx = run(nearCapacity, e);
    expect(cx.findings.list.map((f) => f.remedy)).toEqual(['fix-d']);
    expect(cx.findings.list[0]?.commands).toEqual(['docker service scale archon_api=3']);
    expect(run(stuckInstances, e).findings.list).toEqual([]);
    expect(run(unansweredInstances, e).findings.list).toEqual([]);
  });

  it('errorsByType reads slow consumers as the clients, or as Fix B once a backlog was found', () => {
    const e = evidence((x) => {
      x.stats.errors_per_minute = 5;
      x.stats.errors_by_type = { slow_consumer: 75 };
    });
    const alone = run(errorsByType, e);
    expect(alone.findings.list.map((f) => [f.remedy, f.severity])).toEqual([
      ['clients', 'warning'],
    ]);
    expect(alone.findings.list[0]?.evidence[0]).toMatch(
      /^5 errors\/min over the last 15 min, 75 of them slow_consumer: those clients' networks cannot keep up/,
    );
    const afterBacklog = run(errorsByType, e, (cx) =>
      cx.findings.add('fix-b', 'warning', ['queue depth 640']),
    );
    expect(afterBacklog.findings.list.map((f) => f.remedy)).toEqual(['fix-b']);
    expect(afterBacklog.findings.list[0]?.evidence).toEqual([
      'queue depth 640',
      '5 errors/min over the last 15 min, 75 of them slow_consumer',
    ]);
    expect(run(wsHealthPath, e).findings.list).toEqual([]);
  });

  it('loadBalancer marks a busy test endpoint not checked, not a fault; healthPath stays quiet', () => {
    const e = evidence((x) => {
      x.lb = judge(refusedProbe('test_endpoint_busy', 'busy'));
    });
    const cx = run(loadBalancer, e);
    expect(cx.findings.list).toEqual([]);
    expect(cx.unchecked).toHaveLength(1);
    expect(cx.notes[0]).toMatch(/^load balancer not checked: the test endpoint is busy/);
    const quiet = run(healthPath, e);
    expect([quiet.findings.list, quiet.notes, quiet.unchecked]).toEqual([[], [], []]);
  });
});

describe('doctor evidence parsing', () => {
  /** A status answer of a gateway released before the admission limits (docs/security.md). */
  const olderStatus = () => {
    const older: Record<string, unknown> = { ...instance('api-1') };
    for (const added of [
      'unauthenticated_connections',
      'max_unauthenticated',
      'max_connections_per_user',
      'max_connections_per_ip',
    ])
      delete older[added];
    return { ...older, mode: 'embedded', instances: [older] };
  };
  const read = (body: unknown) =>
    parseAnswer('websocket/status', ADMIN_READERS['/websocket/status'], body);

  it("reads an older gateway's status answer, which the current schema would refuse", () => {
    const older = olderStatus();
    expect(StatusAnswerSchema.safeParse(older).success).toBe(false);
    const s = read(older);
    expect(s.instances[0]).toMatchObject({ server: 'api-1', backplane: { healthy: true } });
    expect(s.unauthenticated_connections).toBeUndefined();
    // A newer gateway's extra fields are ignored, not refused.
    expect(read({ ...older, added_later: 1 }).active_connections).toBe(60);
  });

  it('refuses an answer that is not a status answer, naming the first field that is wrong', () => {
    const wrong = (body: unknown) => {
      try {
        read(body);
      } catch (err) {
        expect(err).toBeInstanceOf(CliError);
        expect((err as CliError).exitCode).toBe(Exit.badAnswer);
        return (err as Error).message;
      }
      throw new Error('read() accepted the answer');
    };
    expect(wrong({ hello: 'world' })).toMatch(
      /^bad answer from websocket\/status: active_connections: .*expected number, received undefined/,
    );
    expect(wrong({ ...olderStatus(), queue_depth: 'many' })).toMatch(
      /^bad answer from websocket\/status: queue_depth: .*expected number/i,
    );
    expect(wrong({ ...olderStatus(), instances: [{ server: 'api-1' }] })).toMatch(
      /^bad answer from websocket\/status: instances\.0\.active_connections: /,
    );
    expect(wrong('<html>502 Bad Gateway</html>')).toMatch(/^bad answer from websocket\/status: /);
  });

  it('counts an unauthenticated connection older than any auth timeout as stale', () => {
    const c = summarizeConnections(
      [
        {
          client_id: 'c_1',
          server: 'api-1',
          user_id: null,
          client_version: null,
          connected_at: '2026-11-27T10:30:00.000Z',
          last_seen_at: '2026-11-27T10:30:00.000Z',
          state: 'authenticating',
          transport: 'websocket' as const,
          queue_depth: 0,
        },
        {
          client_id: 'c_2',
          server: 'api-1',
          user_id: null,
          client_version: null,
          connected_at: '2026-11-27T10:45:28.000Z',
          last_seen_at: '2026-11-27T10:45:28.000Z',
          state: 'authenticating',
          transport: 'websocket' as const,
          queue_depth: 0,
        },
      ],
      NOW,
      30,
      10,
    );
    expect(c.stale).toBe(1);
    expect(c.stale_examples[0]?.client_id).toBe('c_1');
  });
});

describe('onset', () => {
  const stats = (rows: [number, number, number][]): StatsAnswer => ({
    minutes: rows.length,
    errors_per_minute: 0,
    messages_per_minute: 0,
    connects_per_minute: 0,
    disconnects_per_minute: 0,
    errors_by_type: {},
    disconnects_by_code: {},
    series: series(rows),
  });

  it('calls an errors jump sudden, at its minute', () => {
    const o = findOnset(
      stats([
        [50, 300, 0],
        [50, 300, 0],
        [50, 280, 57],
        [50, 250, 60],
      ]),
    );
    expect(o).toEqual({
      kind: 'sudden',
      minute: '2026-11-27T10:33:00.000Z',
      description: 'sudden — errors jumped from 0 to 57/min at 10:33Z',
    });
  });

  it('calls a slow decline of connections gradual, from its peak', () => {
    const o = findOnset(
      stats([
        [100, 500, 0],
        [95, 500, 0],
        [90, 480, 0],
        [85, 470, 0],
        [78, 460, 0],
        [70, 450, 0],
      ]),
    );
    expect(o.kind).toBe('gradual');
    // The first minute under the peak.
    expect(o.minute).toBe('2026-11-27T10:32:00.000Z');
    expect(o.description).toBe(
      'gradual — connections declined over 4 min, from 100 at 10:31Z to 78 at 10:35Z',
    );
  });
});

describe('doctor diagnosis: risk alerts waiting for acknowledgement', () => {
  /** Two alerts waiting on ACC1 (the oldest 301 s, reached trader-7's dashboards) and one on
   * ACC2 (184 s, reached nobody), one of a minute. */
  const waiting = (x: Evidence) => {
    x.alerts = {
      kind: 'read',
      unacked: 3,
      oldest_unacked_seconds: 301.4,
      oldest: [
        {
          channel: 'risk:ACC1',
          seq: 7,
          age_seconds: 301.4,
          deliveries: { 'trader-7': 3, 'risk-desk': 1 },
        },
        { channel: 'risk:ACC2', seq: 2, age_seconds: 184, deliveries: {} },
        { channel: 'risk:ACC1', seq: 8, age_seconds: 61, deliveries: { 'trader-7': 2 } },
      ],
    };
  };

  it('names alerts waiting past ArchonRiskAlertUnacknowledged, and whose dashboards each reached', () => {
    const e = evidence(waiting);
    const d = diagnose(e);
    expect(d.healthy).toBe(false);
    expect(remedies(e)).toEqual(['alerts']);
    expect(finding(e, 'alerts')).toEqual({
      remedy: 'alerts',
      title:
        'Risk alerts waiting for acknowledgement (alert ArchonRiskAlertUnacknowledged; call the desk, not a gateway fault)',
      severity: 'critical',
      evidence: [
        '3 risk alert(s) waiting for acknowledgement, the oldest for 301 s (ArchonRiskAlertUnacknowledged fires past 120 s)',
        'risk:ACC1 seq 7, 301 s old: delivered to trader-7 ×3, risk-desk ×1, not acknowledged',
        'risk:ACC2 seq 2, 184 s old: delivered to nobody: no dashboard of ACC2 is open (it waits for the next sign-in)',
      ],
      commands: [
        'archon-ws alerts',
        'curl -s "$ARCHON_URL/api/v1/admin/alerts?state=unacked" -H "Authorization: Bearer $ADMIN_TOKEN"',
      ],
    });
    expect(d.verdict).toBe('1 finding(s): Risk alerts waiting for acknowledgement');
    expect(describeAlerts(e.alerts)).toBe(
      '3 waiting for acknowledgement, oldest 301 s (risk:ACC1 seq 7, delivered to trader-7 ×3, risk-desk ×1)',
    );
  });

  it("lists the alerts beside the gateway's own findings (critical first), and lets an unexplained failure still escalate", () => {
    const backlog = evidence((x) => {
      waiting(x);
      x.status.queue_depth = 1240;
    });
    expect(remedies(backlog)).toEqual(['fix-b', 'alerts']);
    const unexplained = evidence((x) => {
      waiting(x);
      x.stats.errors_per_minute = 4;
    });
    expect(remedies(unexplained)).toEqual(['alerts', 'escalate']);
  });

  it('says nothing of alerts that have waited less than the alert allows', () => {
    const e = evidence((x) => {
      x.alerts = {
        kind: 'read',
        unacked: 1,
        oldest_unacked_seconds: 120,
        oldest: [{ channel: 'risk:ACC1', seq: 9, age_seconds: 120, deliveries: {} }],
      };
    });
    const d = diagnose(e);
    expect(d.healthy).toBe(true);
    expect(d.unchecked).toEqual([]);
    expect(describeAlerts(e.alerts)).toBe(
      '1 waiting for acknowledgement, oldest 120 s (risk:ACC1 seq 9, delivered to nobody)',
    );
  });

  it('has nothing to check on a gateway older than acknowledged alerts (404)', () => {
    const e = evidence((x) => {
      x.alerts = { kind: 'not available', error: 'the gateway has no GET /api/v1/admin/alerts' };
    });
    const d = diagnose(e);
    expect(d.healthy).toBe(true);
    expect(d.unchecked).toEqual([]);
    expect(describeAlerts(e.alerts)).toBe(
      'unavailable: the gateway has no GET /api/v1/admin/alerts',
    );
  });

  it('marks the alerts not checked when they could not be read', () => {
    const e = evidence((x) => {
      x.alerts = { kind: 'failed', error: 'GET /alerts?state=unacked failed with HTTP 503' };
    });
    const cx = ruleContext(e);
    unacknowledgedAlerts(e, cx);
    expect(cx.findings.list).toEqual([]);
    expect(cx.unchecked).toEqual([
      'the risk alerts waiting (GET /alerts?state=unacked failed with HTTP 503)',
    ]);
    expect(diagnose(e).healthy).toBe(true);
  });

  it('keeps the five oldest alerts waiting from the admin answer', () => {
    const entry = (seq: number, state: 'unacked' | 'acked') => ({
      channel: 'risk:ACC1',
      account: 'ACC1',
      epoch: 'e1',
      seq,
      key: null,
      ts: 0,
      age_seconds: 600 - seq,
      data: { message: `alert ${seq}` },
      expires_at: null,
      state,
      acked_by: state === 'acked' ? 'trader-7' : null,
      acked_at: state === 'acked' ? 1 : null,
      deliveries: { 'trader-7': 1 },
      delivered: 1,
    });
    const a = summarizeAlerts({
      state: 'unacked',
      unacked: 7,
      oldest_unacked_seconds: 599,
      alerts: [1, 2, 3, 4, 5, 6, 7].map((seq) => entry(seq, 'unacked')),
    });
    expect(a).toMatchObject({ kind: 'read', unacked: 7, oldest_unacked_seconds: 599 });
    expect(a.kind === 'read' && a.oldest.map((x) => x.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('puts the alerts waiting in the incident summary', () => {
    const e = evidence(waiting);
    const md = incidentReport(e, diagnose(e));
    expect(md).toContain(
      '### Risk alerts\n\n- 3 waiting for acknowledgement, oldest 301 s (risk:ACC1 seq 7, delivered to trader-7 ×3, risk-desk ×1)',
    );
    expect(md).toContain('```bash\narchon-ws alerts\ncurl -s');
  });
});

describe('incident summary', () => {
  it('has the header, the timeline with the onset marked, findings with commands and blanks', () => {
    const e = evidence((x) => {
      x.status.queue_depth = 1240;
      x.stats.errors_per_minute = 12;
      x.stats.errors_by_type = { slow_consumer: 180 };
      x.stats.series = series([
        ...Array.from({ length: 10 }, (): [number, number, number] => [120, 600, 0]),
        [120, 600, 36],
        [120, 600, 40],
        [120, 600, 38],
        [120, 600, 36],
        [120, 300, 30],
      ]);
    });
    const md = incidentReport(e, diagnose(e));
    expect(md.split('\n')[0]).toBe('# Incident: WebSocket degradation (RB-003), 2026-11-27');
    expect(md).toContain('| Window | last 15 min |');
    expect(md).toContain('| 2026-11-27T10:41Z | 120 | 600 | 36 | ← sudden onset |');
    expect(md).toContain('Onset: sudden — errors jumped from 0 to 36/min at 10:41Z.');
    expect(md).toContain('### 1. Fix B: Clear Message Queue (critical)');
    expect(md).toContain('```bash\narchon-ws flush\n```');
    expect(md).toContain(
      '- [ ] `archon-ws flush` (Fix B: Clear Message Queue) — run at: ____ result: ____',
    );
    expect(md).toContain('| FAIL | queue depth | 1240 | < 100 |');
    expect(md).toContain(
      '| api-1 | 60 | 10000 | 0 | 3.2 ms | 11.5 ms | 96.0 MB | redis up | yes |',
    );
    expect(md).toContain('## To be completed by the responder');
    for (const blank of ['Impact', 'Root cause', 'What was done, when', 'Follow-ups'])
      expect(md).toContain(`### ${blank}\n\n<!--`);
  });

  it('marks the minutes before the oldest instance started as not running, not as zeros', () => {
    // Collected at 10:45:30, up for 3.5 min: started 10:42:00, so 10:31..10:41 held nothing.
    const e = evidence((x) => {
      for (const i of x.status.instances) i.uptime_seconds = 210;
    });
    const md = incidentReport(e, diagnose(e));
    expect(md).toContain('| 2026-11-27T10:41Z | 120 | 600 | 0 | no instance running yet |');
    expect(md).toContain('| 2026-11-27T10:42Z | 120 | 600 | 0 |  |');
  });

  it('escapes pipes in table cells', () => {
    const e = evidence((x) => {
      x.lb.checks[0] = { name: 'HTTP 101', status: 'fail', figure: '502 [a | b]' };
    });
    expect(incidentReport(e, diagnose(e))).toContain('| FAIL | HTTP 101 | 502 [a \\| b] |');
  });
});
