/**
 * `archon-ws doctor` as a real process against a real gateway on port 0: a healthy gateway
 * is "no fault" (exit 0) with a Markdown incident summary on request; faults the gateway
 * really produces (a slow consumer backing up its queue, instances at capacity, the Redis
 * backplane down) are named with the runbook fix and their figures (exit 6); and it fails
 * like every operator command when it cannot gather evidence.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bigSignals, connectionOf, publishUntilQueued } from '../support/admin.js';
import { clientId, until } from '../support/client.js';
import { expectOneLineError, runCli } from '../support/cli.js';
import { useGateway } from '../support/fixture.js';
import { ADMIN_TOKEN, publish } from '../support/gateway.js';
import { CLI, ensureBuilt, NODE } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';

interface DoctorJson {
  healthy: boolean;
  verdict: string;
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
    lb: { ok: boolean; server: string };
    health: { status: string };
    connections: { total: number; with_queue: number };
  };
}

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
    expect(human.stderr).toBe(''); // no terminal: no progress lines
    expect(human.stdout).toMatch(/^PASS\s+connections back to baseline\s+2 of peak 2 \(100 %\)/m);
    expect(human.stdout).toMatch(/^load balancer\s+7 of 7 checks pass \(test-1\)$/m);
    expect(human.stdout).toMatch(/^ws health\s+ok \(test-1\)$/m);
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
    await until(() => !tg.gateway.backplane.healthy(), 5000, 'the backplane to notice');

    const r = await runCli(['doctor', '--json'], { ARCHON_URL: tg.http, ADMIN_TOKEN });
    expect(r.code, r.stderr).toBe(6);
    const d = JSON.parse(r.stdout) as DoctorJson;
    expect(d.findings.map((f) => f.remedy)).toEqual(['backplane']);
    const evidence = d.findings[0]?.evidence.join('\n') ?? '';
    expect(evidence).toMatch(/backplane \(redis\) down on test-1 of 1 instance/);
    expect(evidence).toMatch(/\/api\/health answers "degraded" with backplane "down"/);
    expect(evidence).toMatch(/Redis unreachable: this instance answered alone/);
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
      expect(r.stderr).toMatch(/bad answer from status: field active_connections missing/);
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
    ]) {
      const r = await runCli(args, env);
      expect(r.code, args.join(' ')).toBe(2);
      expectOneLineError(r);
    }
  });
});
