/**
 * `archon-ws doctor` as a real process against a real gateway on port 0: a healthy gateway
 * is "no fault" (exit 0) with a Markdown incident summary on request; faults the gateway
 * really produces (a slow consumer backing up its queue, instances at capacity, the Redis
 * backplane down) are named with the runbook fix and their figures (exit 6), and so are risk
 * alerts left unacknowledged past 2 minutes; a gateway without the alerts endpoint is judged
 * on the rest; and it fails like every operator command when it cannot gather evidence.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { TEST_MAX_LONG_HOLDS } from '../../src/protocol/index.js';
import { MemoryBackplane } from '../../src/server/backplane/memory.js';
import { systemClock } from '../../src/server/clock.js';
import { bigSignals, connectionOf, publishUntilQueued } from '../support/admin.js';
import { clientId } from '../support/client.js';
import { expectOneLineError, runCli } from '../support/cli.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { ADMIN_TOKEN, admin, publish, signToken } from '../support/gateway.js';
import { CLI, ensureBuilt, NODE } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { TestStream } from '../support/sse.js';

interface DoctorJson {
  healthy: boolean;
  verdict: string;
  notes: string[];
  unchecked: string[];
  findings: {
    remedy: string;
    title: string;
    severity: string;
    evidence: string[];
    commands: string[];
  }[];
  criteria: { name: string; pass: boolean }[];
  onset: { kind: string };
  evidence: {
    status: { active_connections: number; queue_depth: number };
    alerts: { kind: string; unacked?: number; error?: string };
    lb: { ok: boolean; server: string };
    health: { status: string };
    connections: {
      total: number;
      with_queue: number;
      by_transport: { websocket: number; sse: number };
      sse_users: number;
      stale: number;
      ping_settings_known: boolean;
      reference: { source: string };
    };
  };
}

/** Opens test endpoint connections (`?hold=` when given) until `n` are open. */
async function openTests(base: string, n: number, hold?: number): Promise<WebSocket[]> {
  const url = `${base}/api/v1/ws/test${hold === undefined ? '' : `?hold=${hold}`}`;
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<WebSocket>((resolve, reject) => {
          const ws = new WebSocket(url, ['archon.v1']);
          ws.once('open', () => resolve(ws));
          ws.once('error', reject);
        }),
    ),
  );
}

/**
 * A gateway of an earlier release, as far as the admin API goes: `target`'s answers, except
 * GET /api/v1/admin/alerts, which it does not have (404 like any unknown route).
 */
async function withoutAlerts(target: string): Promise<Server> {
  const server = createServer((req, res) => {
    if ((req.url ?? '').startsWith('/api/v1/admin/alerts')) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          error: { code: 'not_found', message: 'no route GET /api/v1/admin/alerts' },
        }),
      );
      return;
    }
    const upstream = request(
      `${target}${req.url ?? '/'}`,
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.once('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** The default history limits (docs/configuration.md), for a backplane made by the test. */
const LIMITS = { streamSize: 1000, streamTtlMs: 300_000, alertSize: 10_000, alertTtlMs: 3_600_000 };

const dir = mkdtempSync(join(tmpdir(), 'archon-doctor-'));

/** util-linux `script` gives a command a pseudo-terminal, so progress shows as to a person. */
const hasScript = spawnSync('script', ['--version']).status === 0;

/** The CLI on a terminal: what the person sees (stdout and stderr together). */
function onTerminal(args: string[], env: Record<string, string>): Promise<string> {
  const command = [NODE, CLI, ...args].map((a) => `'${a}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      env: { PATH: process.env.PATH ?? '', TERM: 'xterm', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (text += c));
    child.once('error', reject);
    child.once('close', () => resolve(text));
  });
}
beforeAll(() => ensureBuilt(), 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('archon-ws doctor', () => {
  const fx = useGateway();
  const env = () => ({ ARCHON_URL: fx.tg.http, ADMIN_TOKEN });
  const doctor = async (args: string[] = []) => {
    const r = await runCli(['doctor', ...args, '--json'], env());
    expect(r.stderr).toBe('');
    return { code: r.code, d: JSON.parse(r.stdout) as DoctorJson };
  };

  it('finds no fault on a healthy gateway, exits 0 and writes the incident summary', async () => {
    await fx.start();
    await fx.authed({ sub: 'alice' }, { client: 'dash/2.0' });
    await fx.authed({ sub: 'bob' }, { client: 'dash/2.0' });

    const report = join(dir, 'healthy.md');
    const human = await runCli(['doctor', '--report', report], env());
    expect(human.code, human.stdout + human.stderr).toBe(0);
    // No terminal: one whole line per step as it ends, for logs.
    const progress = human.stderr.trim().split('\n');
    expect(progress[0]).toBe('checking status… ok (1 instance, 2 connections)');
    expect(progress).toContain('checking connections… ok (2)');
    expect(progress.at(-1)).toMatch(
      /^checking load balancer upgrade \(http:\/\/127\.0\.0\.1:\d+\)… ok \(answered by test-1\)$/,
    );
    expect(progress).toContain('checking risk alerts waiting… none waiting for acknowledgement');
    expect(progress).toHaveLength(7);
    expect(human.stdout).toMatch(/^PASS\s+connections back to baseline\s+2 of peak 2 \(100 %\)/m);
    expect(human.stdout).toMatch(/^load balancer\s+7 of 7 checks pass \(test-1\)$/m);
    expect(human.stdout).toMatch(/^ws health\s+ok \(test-1\)$/m);
    expect(human.stdout).toMatch(/^risk alerts\s+none waiting for acknowledgement$/m);
    expect(human.stdout).toMatch(/^onset: no abnormal minute in the last 15 min/m);
    expect(human.stdout).toMatch(/^no fault found: all 4 success criteria pass/m);
    expect(human.stdout).toMatch(new RegExp(`^incident summary written to ${report}$`, 'm'));

    const md = readFileSync(report, 'utf8');
    expect(md).toMatch(/^# Incident: WebSocket degradation \(RB-003\), \d{4}-\d\d-\d\d$/m);
    expect(md).toMatch(/^\| Verdict \| no fault found/m);
    expect(md).toMatch(/^## Timeline$/m);
    expect(md.match(/^\| \d{4}-\d\d-\d\dT\d\d:\d\dZ \| \d+ \| \d+ \| \d+ \|/gm)).toHaveLength(15);
    expect(md).toMatch(/^## Findings\n\nNo fault found\.$/m);
    expect(md).toMatch(/^\| PASS \| subprotocol archon\.v1 \| archon\.v1 echoed \|$/m);
    expect(md).toMatch(/^- 2 connection\(s\) of 2 user\(s\); by server: test-1 ×2$/m);
    for (const blank of ['Impact', 'Root cause', 'What was done, when', 'Follow-ups'])
      expect(md).toContain(`### ${blank}\n\n<!--`);

    const { code, d } = await doctor(['--minutes', '5']);
    expect(code).toBe(0);
    expect(d.healthy).toBe(true);
    expect(d.findings).toEqual([]);
    expect(d.criteria.every((c) => c.pass)).toBe(true);
    expect(d.evidence.lb).toMatchObject({ ok: true, server: 'test-1' });
    expect(d.evidence.status.active_connections).toBe(2);
    expect(d.evidence.health.status).toBe('ok');
  });

  it('names Fix B when a slow consumer backs its queue up, and finds no fault after the flush', async () => {
    // The gateway's own safety nets (4008 on a full queue or an old message) held back, so
    // the backlog stays for the operator to find.
    const tg = await fx.start({
      WEBSOCKET_BROADCAST_TIMEOUT: '600',
      WEBSOCKET_MESSAGE_QUEUE_SIZE: '100000',
      WEBSOCKET_MESSAGE_QUEUE_BYTES: String(1 << 30),
    });
    const slow = await fx.authed({ sub: 'slowpoke' }, { client: 'dash/1.0' });
    await slow.subscribe('signals');
    slow.ws.pause();
    const id = clientId(slow);
    let published = await publishUntilQueued(tg, id);
    while (((await connectionOf(tg, id))?.queue_depth ?? 0) < 150) {
      expect((await publish(tg, { events: bigSignals(published) })).status).toBe(200);
      published += 40;
    }

    const { code, d } = await doctor();
    expect(code).toBe(6);
    expect(d.healthy).toBe(false);
    expect(d.findings.map((f) => f.remedy)).toEqual(['fix-b']);
    const fixB = d.findings[0];
    expect(fixB?.title).toBe('Fix B: Clear Message Queue');
    expect(fixB?.commands).toEqual(['archon-ws flush']);
    const depth = d.evidence.status.queue_depth;
    expect(depth).toBeGreaterThanOrEqual(150);
    expect(fixB?.evidence[0]).toBe(
      `queue depth ${depth} (success criterion < 100, alert > 1000) in 1 client queue(s)`,
    );
    expect(fixB?.evidence.join('\n')).toMatch(
      new RegExp(`deepest: ${id} \\(slowpoke, dash/1\\.0, on test-1\\) ${depth}`),
    );

    const human = await runCli(['doctor'], env());
    expect(human.code).toBe(6);
    expect(human.stdout).toMatch(/^FAIL\s+queue depth\s+\d+\s+< 100$/m);
    expect(human.stdout).toMatch(/^1\. Fix B: Clear Message Queue \[(warning|critical)\]$/m);
    expect(human.stdout).toMatch(/^ {3}run: archon-ws flush$/m);
    expect(human.stdout).toMatch(/^1 finding\(s\): Fix B: Clear Message Queue$/m);

    // The runbook's fix, then the check again.
    expect((await runCli(['flush'], env())).code).toBe(0);
    const after = await doctor();
    expect(after.d.findings).toEqual([]);
    expect(after.code).toBe(0);
    slow.ws.resume();
  });

  it('names Fix D when the instance is at its connection limit', async () => {
    await fx.start({ WEBSOCKET_MAX_CONNECTIONS: '2' });
    await fx.authed({ sub: 'alice' });
    await fx.authed({ sub: 'bob' });
    const { code, d } = await doctor();
    expect(code).toBe(6);
    expect(d.findings.map((f) => f.remedy)).toEqual(['fix-d']);
    expect(d.findings[0]?.title).toBe('Fix D: Scale Up');
    expect(d.findings[0]?.evidence[0]).toMatch(
      /^test-1: 2 of 2 connections \(100 %, WEBSOCKET_MAX_CONNECTIONS\)/,
    );
    expect(d.findings[0]?.commands).toEqual(['docker service scale archon_api=2']);
  });

  it('names risk alerts unacknowledged past 2 minutes with whose dashboards they reached, and no fault once acknowledged', async () => {
    // The backplane's clock runs 150 s behind: what it stores now is 150 s old to the
    // gateway's listing, as an alert published two and a half minutes ago would be.
    const behind = new MemoryBackplane(LIMITS, () => Date.now() - 150_000);
    const tg = await fx.start({}, { backplane: behind });
    const published: { epoch: string; seq: number }[] = [];
    for (const account of ['ACC1', 'ACC2']) {
      const r = await publish(tg, {
        channel: `risk:${account}`,
        data: { level: 'critical', message: `Margin level 95% on ${account}` },
      });
      expect(r.status).toBe(200);
      published.push((r.body as { results: { epoch: string; seq: number }[] }).results[0]!);
    }
    // trader-7's dashboard opens on ACC1 only: the alert reaches it in the unacked list.
    const trader = await fx.authed({ sub: 'trader-7', accounts: ['ACC1', 'ACC2'] });
    await trader.subscribe('risk:ACC1');
    expect((await trader.type('unacked')).alerts).toHaveLength(1);
    await eventually(async () => {
      const { body } = await admin(tg, 'GET', '/alerts?state=unacked');
      const alerts = (body as { alerts: { deliveries: Record<string, number> }[] }).alerts;
      return alerts[0]?.deliveries['trader-7'] === 1;
    }, 'the delivery to be counted');

    const { code, d } = await doctor();
    expect(code).toBe(6);
    expect(d.findings.map((f) => f.remedy)).toEqual(['alerts']);
    expect(d.evidence.alerts).toMatchObject({ kind: 'read', unacked: 2 });
    const [summary, acc1, acc2] = d.findings[0]?.evidence ?? [];
    expect(summary).toMatch(
      /^2 risk alert\(s\) waiting for acknowledgement, the oldest for 1\d\d s \(ArchonRiskAlertUnacknowledged fires past 120 s\)$/,
    );
    expect(acc1).toMatch(
      /^risk:ACC1 seq 1, 1\d\d s old: delivered to trader-7 ×1, not acknowledged$/,
    );
    expect(acc2).toMatch(
      /^risk:ACC2 seq 1, 1\d\d s old: delivered to nobody: no dashboard of ACC2 is open \(it waits for the next sign-in\)$/,
    );
    expect(d.findings[0]?.commands[0]).toBe('archon-ws alerts');

    const human = await runCli(['doctor'], env());
    expect(human.code).toBe(6);
    expect(human.stdout).toMatch(
      /^risk alerts\s+2 waiting for acknowledgement, oldest 1\d\d s \(risk:ACC1 seq 1, delivered to trader-7 ×1\)$/m,
    );
    expect(human.stdout).toMatch(
      /^1\. Risk alerts waiting for acknowledgement \(alert ArchonRiskAlertUnacknowledged; call the desk, not a gateway fault\) \[critical\]$/m,
    );
    expect(human.stdout).toMatch(/^ {3}run: archon-ws alerts$/m);

    // The trader acknowledges both (the token covers ACC2 too): nothing waits any more.
    for (const [i, account] of ['ACC1', 'ACC2'].entries()) {
      const { epoch, seq } = published[i]!;
      trader.send({ op: 'ack', id: `k${i}`, channel: `risk:${account}`, epoch, seq });
      await trader.next((m) => m.type === 'acked' && m.id === `k${i}`);
    }
    const after = await doctor();
    expect(after.code).toBe(0);
    expect(after.d.findings).toEqual([]);
    expect(after.d.evidence.alerts).toMatchObject({ kind: 'read', unacked: 0 });
  });

  it('counts clients on the HTTP streaming fallback, never as stale, and names Step 4 as a warning', async () => {
    // The sessions' clock runs 10 minutes behind the gateway's Date header, so every
    // connection looks silent for 10 minutes, far past the ping deadline (30 s + 10 s + 5 s):
    // as a WebSocket that stopped answering would, and as a stream that has POSTed nothing
    // since it opened does, live as it is (it is never pinged).
    await fx.start({}, { clock: { ...systemClock, now: () => Date.now() - 600_000 } });
    const ws = await fx.authed({ sub: 'alice' }, { client: 'dash/3.0' });
    const streams = await Promise.all(
      ['carol', 'carol', 'dave'].map(async (sub) =>
        TestStream.welcomed(fx.tg.http, {
          token: await signToken({ sub }),
          query: { channels: 'signals', client: 'dash/3.0' },
        }),
      ),
    );
    try {
      const { code, d } = await doctor();
      expect(code).toBe(6);
      expect(d.evidence.connections).toMatchObject({
        total: 4,
        by_transport: { websocket: 1, sse: 3 },
        sse_users: 2,
        // The WebSocket only.
        stale: 1,
        ping_settings_known: true,
      });
      expect(d.findings.map((f) => [f.remedy, f.severity])).toEqual([
        ['fix-a', 'critical'],
        ['step-4', 'warning'],
      ]);
      expect(d.findings[0]?.evidence[0]).toMatch(/^1 of 4 connections silent for more than 45 s /);
      expect(d.findings[0]?.evidence[1]).toMatch(
        new RegExp(`^longest silent: ${clientId(ws)} \\(alice, open, on test-1\\) (59|60)\\d s$`),
      );
      expect(d.findings[1]?.evidence).toEqual([
        `3 of 4 clients (2 users) are on the HTTP streaming fallback: their WebSocket upgrade does not get through a proxy or load balancer (RB-003 Step 4). They are live. The upgrade through ${fx.tg.http} passes from here, so it is lost on those clients' own way in (a proxy of their network, or another entry point: archon-ws connections --group-by addr shows where they connect from); once it gets through they move back to WebSocket by themselves`,
      ]);

      const human = await runCli(['doctor'], env());
      expect(human.code).toBe(6);
      expect(human.stderr).toMatch(
        /^checking connections… ok \(4, 3 on the HTTP streaming fallback\)$/m,
      );
      expect(human.stdout).toMatch(
        /^connections\s+4 \(websocket 1, sse 3\), 0 with a queue, 1 stale$/m,
      );
      expect(human.stdout).toMatch(/^2\. Step 4: Load Balancer Fixes \[warning\]$/m);
      expect(human.stdout).toMatch(/^ {3}- 3 of 4 clients \(2 users\) are on the HTTP streaming/m);
      expect(human.stdout).toMatch(/^ {3}run: archon-ws check-lb --idle 90s$/m);
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('judges a gateway without the alerts endpoint (an earlier release) on the rest, saying the alerts are unavailable', async () => {
    const tg = await fx.start();
    await fx.authed({ sub: 'alice' });
    const older = await withoutAlerts(tg.http);
    try {
      const port = (older.address() as AddressInfo).port;
      const olderEnv = { ARCHON_URL: `http://127.0.0.1:${port}`, ADMIN_TOKEN };
      const r = await runCli(['doctor', '--json', '--lb', tg.http], olderEnv);
      expect(r.code, r.stderr).toBe(0);
      const d = JSON.parse(r.stdout) as DoctorJson;
      expect(d.healthy).toBe(true);
      expect(d.unchecked).toEqual([]);
      expect(d.evidence.alerts).toEqual({
        kind: 'not available',
        error:
          'the gateway has no GET /api/v1/admin/alerts (a release before acknowledged risk alerts)',
      });
      const human = await runCli(['doctor', '--lb', tg.http], olderEnv);
      expect(human.code).toBe(0);
      expect(human.stdout).toMatch(
        /^risk alerts\s+unavailable: the gateway has no GET \/api\/v1\/admin\/alerts/m,
      );

      const alerts = await runCli(['alerts'], olderEnv);
      expect(alerts.code).toBe(4);
      expectOneLineError(alerts);
      expect(alerts.stderr).toMatch(
        /GET \/api\/v1\/admin\/alerts not found at .* \(404\): the gateway predates acknowledged risk alerts, or its admin API is off/,
      );
    } finally {
      older.closeAllConnections();
      older.close();
    }
  });

  it.skipIf(!hasScript)(
    'shows one line per step on a terminal, and a countdown during an idle hold',
    async () => {
      await fx.start();
      const doctorTty = await onTerminal(['doctor'], env());
      expect(doctorTty).toMatch(/^checking status… ok \(1 instance, 0 connections\)\r?$/m);
      expect(doctorTty).toMatch(/^checking stats of the last 15 min… ok\r?$/m);
      expect(doctorTty).toMatch(/^checking WebSocket health… ok\r?$/m);
      expect(doctorTty).toMatch(
        /^checking load balancer upgrade \(http:\/\/127\.0\.0\.1:\d+\)… ok \(answered by test-1\)\r?$/m,
      );
      const checkLbTty = await onTerminal(['check-lb', '--idle', '3s'], env());
      expect(checkLbTty).toMatch(/check-lb: idle hold of 3 s… 1 s of 3 s, 2 s left/);
      expect(checkLbTty).toMatch(/check-lb: idle hold of 3 s… 2 s of 3 s, 1 s left/);
      expect(checkLbTty).toMatch(/^all load balancer checks pass\r?$/m);
    },
  );

  it('measures silence to the connections answer, not to the end of slow probes', async () => {
    // Clients answer a ping every second (deadline 1 s + 1 s + 5 s = 7 s); a --direct
    // instance that never answers makes the probes take 8 s more. Measured after the probes,
    // every live client would look silent for 8 s or more: stale.
    await fx.start({ WEBSOCKET_PING_INTERVAL: '1', WEBSOCKET_PING_TIMEOUT: '1' });
    for (const sub of ['alice', 'bob', 'carol']) {
      const c = await fx.authed({ sub });
      c.ws.on('message', (data: Buffer) => {
        if ((JSON.parse(data.toString('utf8')) as { type?: string }).type === 'ping')
          c.send({ op: 'pong' });
      });
    }
    const sockets: Socket[] = [];
    const silent = createTcpServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const r = await runCli(
        ['doctor', '--json', '--timeout', '8s', '--direct', `http://127.0.0.1:${port}`],
        env(),
      );
      const d = JSON.parse(r.stdout) as DoctorJson;
      expect(d.evidence.connections).toMatchObject({
        total: 3,
        stale: 0,
        ping_settings_known: true,
        reference: { source: 'gateway Date header' },
      });
      expect(d.findings.map((f) => f.remedy)).not.toContain('fix-a');
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
    }
  }, 30_000);

  it('says the test endpoint is full, recommends no restart, and exits 7', async () => {
    await fx.start();
    await fx.authed({ sub: 'alice' });
    // Every one of the endpoint's test connection slots in use.
    const tests = await openTests(fx.tg.ws, 100);
    try {
      const r = await runCli(['doctor', '--json'], env());
      expect(r.code, r.stderr).toBe(7);
      const d = JSON.parse(r.stdout) as DoctorJson;
      expect(d.findings).toEqual([]);
      expect(d.unchecked).toHaveLength(1);
      expect(d.notes.join('\n')).toMatch(
        /load balancer not checked: the test endpoint is full \(at_capacity: all its test connections are in use\): check-lb could not run; try again later/,
      );
      expect(d.verdict).toMatch(/the load balancer was not checked: the test endpoint is full/);

      const human = await runCli(['doctor'], env());
      expect(human.code).toBe(7);
      expect(human.stdout).toMatch(/^load balancer\s+NOT RUN: the test endpoint is full/m);
      expect(human.stdout).not.toMatch(/Fix C|Fix D|restart/);

      const lb = await runCli(['check-lb'], env());
      expect(lb.code, lb.stdout).toBe(7);
      expect(lb.stdout).toMatch(/^-\s+HTTP 101\s+503 from the gateway: the test endpoint is full/m);
      // The fallback's check does not go through the test endpoint: it still runs.
      expect(lb.stdout).toMatch(/^PASS\s+HTTP streaming fallback \(GET \/api\/v1\/sse\)/m);
      expect(lb.stdout).toMatch(/^7 of 8 checks did not run, none failed/m);
    } finally {
      for (const ws of tests) ws.terminate();
    }
  });

  it('check-lb says the test endpoint is busy with long holds, and exits 7', async () => {
    await fx.start();
    const holds = await openTests(fx.tg.ws, TEST_MAX_LONG_HOLDS, 120);
    try {
      const r = await runCli(['check-lb', '--idle', '90s'], env());
      expect(r.code, r.stdout + r.stderr).toBe(7);
      expect(r.stdout).toMatch(/^the test endpoint is busy \(test_endpoint_busy: /m);
      expect(r.stdout).toMatch(/check-lb could not run; try again, or without --idle/);
      // Without --idle (no long hold) the endpoint has room.
      expect((await runCli(['check-lb'], env())).code).toBe(0);
    } finally {
      for (const ws of holds) ws.terminate();
    }
  });

  it('takes --lb as a ws:// URL like check-lb does', async () => {
    await fx.start();
    const r = await runCli(['doctor', '--json', '--lb', fx.tg.ws], env());
    expect(r.code, r.stderr).toBe(0);
    const d = JSON.parse(r.stdout) as DoctorJson;
    expect(d.evidence.lb).toMatchObject({ ok: true, server: 'test-1' });
  });

  it('--report: refuses to overwrite without --force, and prints the diagnosis when the write fails', async () => {
    await fx.start();
    const report = join(dir, 'again.md');
    writeFileSync(report, 'the last incident');
    const refused = await runCli(['doctor', '--report', report], env());
    expect(refused.code).toBe(2);
    expectOneLineError(refused);
    expect(refused.stderr).toMatch(/already exists: pass --force to overwrite it/);
    expect(readFileSync(report, 'utf8')).toBe('the last incident');

    const forced = await runCli(['doctor', '--report', report, '--force'], env());
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(report, 'utf8')).toMatch(/^# Incident: WebSocket degradation/);

    // /dev/full takes the open and fails the write (ENOSPC): the diagnosis still comes out.
    if (existsSync('/dev/full')) {
      const full = await runCli(['doctor', '--json', '--report', '/dev/full', '--force'], env());
      expect(full.code).toBe(2);
      expect((JSON.parse(full.stdout) as DoctorJson).healthy).toBe(true);
      expect(full.stderr).toBe('archon-ws: cannot write --report /dev/full: ENOSPC\n');
      const human = await runCli(['doctor', '--report', '/dev/full', '--force'], env());
      expect(human.code).toBe(2);
      expect(human.stdout).toMatch(/^no fault found/m);
      expect(human.stdout).not.toMatch(/incident summary written/);
      expect(human.stderr.trim().split('\n').at(-1)).toBe(
        'archon-ws: cannot write --report /dev/full: ENOSPC',
      );
    }
  });

  it('exits 4 with one line for a wrong token', async () => {
    await fx.start();
    const r = await runCli(['doctor'], { ARCHON_URL: fx.tg.http, ADMIN_TOKEN: 'wrong' });
    expect(r.code).toBe(4);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/admin token refused .*401/);
  });
});

describe('archon-ws doctor with the Redis backplane down', () => {
  const fx = useGateway();
  let redis: TestRedis | undefined;
  afterAll(async () => {
    await redis?.stop();
  });

  it('names the backplane (not one of Fix A–D) when Redis is gone', async () => {
    redis = await startRedis();
    const tg = await fx.start({ ARCHON_REDIS_URL: redis.url });
    await fx.authed();
    await redis.stop();
    await eventually(() => !tg.gateway.backplane.healthy(), 'the backplane to notice');

    const r = await runCli(['doctor', '--json'], { ARCHON_URL: tg.http, ADMIN_TOKEN });
    expect(r.code, r.stderr).toBe(6);
    const d = JSON.parse(r.stdout) as DoctorJson;
    expect(d.findings.map((f) => f.remedy)).toEqual(['backplane']);
    const evidence = d.findings[0]?.evidence.join('\n') ?? '';
    expect(evidence).toMatch(/backplane \(redis\) down on test-1 of 1 instance/);
    expect(evidence).toMatch(/\/api\/health answers "degraded" with backplane "down"/);
    expect(evidence).toMatch(/Redis unreachable: this instance answered alone/);
    // The alerts live in Redis too: not readable, so not checked (the exit is 6 anyway).
    expect(d.evidence.alerts.kind).toBe('failed');
    expect(d.unchecked.join('\n')).toMatch(/^the risk alerts waiting \(/m);
    // The WebSocket side still works: clients stay connected.
    expect(d.evidence.lb.ok).toBe(true);
  });
});

describe('archon-ws doctor errors', () => {
  it('exits 3 with one line when the gateway is unreachable', async () => {
    const r = await runCli(['doctor'], { ARCHON_URL: 'http://127.0.0.1:9', ADMIN_TOKEN });
    expect(r.code).toBe(3);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:9/);
  });

  it('exits 5 with one line when the admin API answers something else', async () => {
    const server: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end('{"hello":"world"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const r = await runCli(['doctor'], { ARCHON_URL: `http://127.0.0.1:${port}`, ADMIN_TOKEN });
      expect(r.code).toBe(5);
      expectOneLineError(r);
      expect(r.stderr).toMatch(
        /bad answer from websocket\/status: active_connections: .*expected number, received undefined/,
      );
    } finally {
      server.close();
    }
  });

  it('exits 2 for bad flags', async () => {
    const env = { ARCHON_URL: 'http://127.0.0.1:9', ADMIN_TOKEN };
    for (const args of [
      ['doctor', '--minutes', '0'],
      ['doctor', '--minutes', '61'],
      ['doctor', '--timeout', 'soon'],
      ['doctor', '--direct', 'ftp://x'],
      ['doctor', '--lb', 'ftp://x'],
    ]) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expectOneLineError(r);
    }
  });

  it('exits 2 naming the flag, the value and the range for a timeout out of range', async () => {
    const env = { ARCHON_URL: 'http://127.0.0.1:9', ADMIN_TOKEN };
    for (const [command, value] of [
      ['doctor', '0.0001ms'],
      ['doctor', '1000h'],
      ['check-lb', '1000h'],
      ['test-connect', '0ms'],
    ] as const) {
      const r = await runCli([command, '--timeout', value], env);
      expect(r.code, `${command} ${value}`).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toBe(`archon-ws: --timeout must be from 1ms to 1h (got "${value}")\n`);
    }
  });

  it('checks --report before gathering any evidence', async () => {
    const env = { ARCHON_URL: 'http://127.0.0.1:9', ADMIN_TOKEN };
    const existing = join(dir, 'existing.md');
    writeFileSync(existing, 'x');
    for (const [file, message] of [
      [existing, /already exists: pass --force/],
      [join(dir, 'missing', 'incident.md'), /directory .*missing does not exist$/],
    ] as const) {
      const r = await runCli(['doctor', '--report', file], env);
      // Exit 2 for the report, not 3 for the unreachable gateway: nothing was asked yet.
      expect(r.code).toBe(2);
      expectOneLineError(r);
      expect(r.stderr.trim()).toMatch(message);
    }
  });

  it('gives up on the admin API after --timeout', async () => {
    const server: Server = createServer(() => {
      // never answers
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const began = Date.now();
      const r = await runCli(['doctor', '--timeout', '1s'], {
        ARCHON_URL: `http://127.0.0.1:${port}`,
        ADMIN_TOKEN,
      });
      expect(Date.now() - began).toBeLessThan(6000);
      expect(r.code).toBe(3);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+: no answer within 1 s$/m);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
