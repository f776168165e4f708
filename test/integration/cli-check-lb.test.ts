/**
 * `archon-ws check-lb` and `archon-ws doctor` through real nginx in front of two real
 * `archon-ws serve` processes: the shipped deploy/nginx/archon-ws.conf passes every check
 * (the HTTP streaming fallback's among them) and an idle hold; the same file with a short
 * proxy_read_timeout is caught by --idle; with the upgrade headers left out, check-lb fails
 * the handshake but finds the fallback open, and doctor names the load balancer (RB-003
 * Step 4), proving it with a direct check of an instance; without a route for /api/v1/sse,
 * the fallback's check fails on its own and names the location block to add.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectOneLineError, runCli } from '../support/cli.js';
import { ADMIN_TOKEN } from '../support/gateway.js';
import {
  ensureBuilt,
  killAll,
  startInstance,
  startNginx,
  stopNginx,
  type Instance,
  type Nginx,
} from '../support/processes.js';

interface CheckJson {
  ok: boolean;
  verdict: string;
  websocket: string;
  fallback: { url: string; status: string; figure: string; explanation: string | null };
  server: string | null;
  checks: { name: string; status: string; figure: string }[];
  idle: {
    outcome: string;
    idle_s: number;
    close_code: number | null;
    ping_interval_s: number | null;
    explanation: string;
  } | null;
}

let instances: Instance[] = [];
let nginx: Nginx | undefined;

beforeAll(async () => {
  ensureBuilt();
  instances = await Promise.all([startInstance('api-1'), startInstance('api-2')]);
}, 120_000);

afterEach(async () => {
  await stopNginx(nginx);
  nginx = undefined;
});

afterAll(() => killAll());

const ports = () => instances.map((i) => i.port);

describe('archon-ws check-lb through nginx', () => {
  it('passes every check and a 3 s idle hold through the shipped nginx config', async () => {
    nginx = await startNginx(ports());
    const r = await runCli(['check-lb', nginx.url, '--idle', '3s']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^PASS\s+HTTP 101\s+101 in [\d.]+ ms$/m);
    expect(r.stdout).toMatch(/^PASS\s+Upgrade: websocket\s+Upgrade: websocket$/im);
    expect(r.stdout).toMatch(/^PASS\s+Connection: upgrade\s+Connection: upgrade$/im);
    expect(r.stdout).toMatch(/^PASS\s+subprotocol archon\.v1\s+archon\.v1 echoed$/m);
    expect(r.stdout).toMatch(/^PASS\s+welcome names the server\s+api-[12]$/m);
    expect(r.stdout).toMatch(/^PASS\s+ping → pong\s+[\d.]+ ms$/m);
    expect(r.stdout).toMatch(/^PASS\s+echo round trip\s+[\d.]+ ms$/m);
    expect(r.stdout).toMatch(/^PASS\s+idle 3 s\s+survived 3\.0 s idle, echo after it/m);
    expect(r.stdout).toMatch(
      /^PASS\s+HTTP streaming fallback \(GET \/api\/v1\/sse\)\s+401 unauthorized from the gateway in [\d.]+ ms$/m,
    );
    expect(r.stdout).toMatch(/^all load balancer checks pass$/m);
  });

  it('catches a proxy_read_timeout shorter than the idle hold as a cut without a close frame', async () => {
    nginx = await startNginx(ports(), {
      edit: (conf) => conf.replace('proxy_read_timeout 3600s;', 'proxy_read_timeout 2s;'),
    });
    const json = await runCli(['check-lb', nginx.url, '--idle', '5', '--json']);
    expect(json.code, json.stderr).toBe(1);
    expect(json.stderr).toBe('');
    const report = JSON.parse(json.stdout) as CheckJson;
    expect(report.ok).toBe(false);
    expect(report.checks.filter((c) => c.status !== 'pass').map((c) => c.name)).toEqual([
      'idle 5 s',
    ]);
    expect(report.idle).toMatchObject({
      outcome: 'cut',
      close_code: 1006,
      ping_interval_s: 30,
    });
    // nginx cut it at its 2 s timeout, well before the 5 s asked for.
    expect(report.idle?.idle_s).toBeGreaterThanOrEqual(1.5);
    expect(report.idle?.idle_s).toBeLessThan(5);
    expect(report.idle?.explanation).toMatch(/timeout of about 2 s/);
    expect(report.idle?.explanation).toMatch(/ping interval \(30 s, WEBSOCKET_PING_INTERVAL\)/);

    const human = await runCli(['check-lb', nginx.url, '--idle', '5']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(
      /^FAIL\s+idle 5 s\s+cut after [\d.]+ s idle without a close frame \(code 1006\)$/m,
    );
    expect(human.stdout).toMatch(/Raise it to at least 3600 s/);
    expect(human.stdout).toMatch(/^1 of 9 checks fail or did not run$/m);
  });

  it('gives up on an idle hold at once when the proxy drops the query string (exit 7)', async () => {
    // proxy_pass with $uri forwards the path only: ?hold= never reaches the instance.
    nginx = await startNginx(ports(), {
      edit: (conf) =>
        conf.replace(/(location \/api\/v1\/ws \{\s*proxy_pass http:\/\/archon_ws);/, '$1$uri;'),
    });
    const began = Date.now();
    const r = await runCli(['check-lb', nginx.url, '--idle', '90s']);
    expect(Date.now() - began).toBeLessThan(10_000);
    expect(r.code, r.stdout + r.stderr).toBe(7);
    expect(r.stdout).toMatch(
      /^-\s+idle 90 s\s+not run: asked the gateway to keep it 100 s \(\?hold=100\), it keeps it 60 s$/m,
    );
    expect(r.stdout).toMatch(/^PASS\s+echo round trip/m);
    expect(r.stdout).toMatch(/dropped\s+the query string/);
    expect(r.stdout).toMatch(/^1 of 9 checks did not run, none failed/m);
  });

  describe('with the upgrade headers left out of the nginx config', () => {
    const stripUpgrade = (conf: string) =>
      conf
        .replace(/^\s*proxy_set_header Upgrade \$http_upgrade;$/gm, '')
        .replace(/^\s*proxy_set_header Connection \$connection_upgrade\w*;$/gm, '');

    it('check-lb fails the handshake, says why, and finds the fallback open to clients meanwhile', async () => {
      nginx = await startNginx(ports(), { edit: stripUpgrade });
      const r = await runCli(['check-lb', '--url', nginx.url]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toMatch(
        /^FAIL\s+HTTP 101\s+404: the gateway got a plain GET, the load balancer did not pass the upgrade on/m,
      );
      expect(r.stdout).toMatch(/^-\s+echo round trip\s+no WebSocket$/m);
      expect(r.stdout).toMatch(
        /^PASS\s+HTTP streaming fallback \(GET \/api\/v1\/sse\)\s+401 unauthorized from the gateway/m,
      );
      expect(r.stdout.replace(/\s+/g, ' ')).toContain(
        'The WebSocket checks fail, but GET /api/v1/sse reaches the gateway: clients on the archon-ws SDK stay live over the HTTP streaming fallback while the upgrade is fixed (RB-003 Step 4), and move back to WebSocket by themselves once it gets through.',
      );
      const json = JSON.parse(
        (await runCli(['check-lb', nginx.url, '--json'])).stdout,
      ) as CheckJson;
      expect([json.verdict, json.websocket, json.fallback.status]).toEqual([
        'fail',
        'fail',
        'pass',
      ]);
    });

    it('doctor points to Step 4 (load balancer), confirmed by a direct check of an instance', async () => {
      nginx = await startNginx(ports(), { edit: stripUpgrade });
      const env = { ARCHON_URL: nginx.url, ADMIN_TOKEN };
      const direct = instances[0]?.http ?? '';
      const r = await runCli(['doctor', '--direct', direct, '--json'], env);
      expect(r.code, r.stderr).toBe(6);
      const d = JSON.parse(r.stdout) as {
        healthy: boolean;
        findings: { remedy: string; evidence: string[]; commands: string[] }[];
      };
      expect(d.healthy).toBe(false);
      expect(d.findings.map((f) => f.remedy)).toEqual(['step-4']);
      const evidence = d.findings[0]?.evidence.join('\n') ?? '';
      expect(evidence).toMatch(/HTTP 101 → 404: the gateway got a plain GET/);
      expect(evidence).toMatch(/the upgrade to \/api\/v1\/ws\/health fails too/);
      const directWs = direct.replace(/^http/, 'ws');
      expect(evidence).toMatch(new RegExp(`straight to ${directWs} \\(api-1\\) passes`));

      const human = await runCli(['doctor'], env);
      expect(human.code).toBe(6);
      expect(human.stdout).toMatch(/^1\. Step 4: Load Balancer Fixes \[critical\]$/m);
      expect(human.stdout).toMatch(/plain HTTP through the same URL reaches the gateway/);
      expect(human.stdout).toMatch(/^ {3}run: archon-ws check-lb --idle 90s$/m);
    });
  });
});

describe('archon-ws check-lb through nginx without a route for the HTTP streaming fallback', () => {
  // A load balancer that routes only the WebSocket and API paths: /api/v1/sse gets its 404.
  const noFallback = (conf: string) =>
    conf.replace(
      /location \/api\/v1\/sse \{[\s\S]*?\n {4}\}/,
      'location /api/v1/sse {\n        return 404;\n    }',
    );

  it('fails the fallback check alone (exit 1) and names the location block to add', async () => {
    nginx = await startNginx(ports(), { edit: noFallback });
    const r = await runCli(['check-lb', nginx.url]);
    expect(r.code, r.stdout + r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^PASS\s+echo round trip\s+[\d.]+ ms$/m);
    expect(r.stdout).toMatch(
      /^FAIL\s+HTTP streaming fallback \(GET \/api\/v1\/sse\)\s+404: an HTML page, not the gateway \[<html> <head><title>404 Not Found/m,
    );
    expect(r.stdout.replace(/\s+/g, ' ')).toContain(
      `GET /api/v1/sse does not reach a gateway through ${nginx.url} (HTTP 404, an HTML page, not the gateway): the load balancer does not route the HTTP streaming fallback. Route it to the instances: the \`location /api/v1/sse\` block of deploy/nginx/archon-ws.conf (proxy_pass to the archon_ws upstream, proxy_buffering off, proxy_read_timeout 3600s)`,
    );
    expect(r.stdout).toMatch(/^1 of 8 checks fail or did not run$/m);

    const json = await runCli(['check-lb', nginx.url, '--json']);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as CheckJson;
    expect(report).toMatchObject({
      ok: false,
      verdict: 'fail',
      websocket: 'pass',
      fallback: { url: `${nginx.url}/api/v1/sse`, status: 'fail' },
    });
    expect(report.fallback.explanation).toMatch(
      /WebSocket upgrades pass, so only clients whose own network stops the upgrade are affected: they have nothing to fall back to\.$/,
    );
  });
});

describe('archon-ws check-lb errors', () => {
  it('refuses a bad --idle with exit 2 and one line', async () => {
    for (const idle of ['abc', '0', '291s', '10m', '-5']) {
      const r = await runCli(['check-lb', 'http://127.0.0.1:9', '--idle', idle]);
      expect(r.code, idle).toBe(2);
      expectOneLineError(r);
      expect(r.stderr).toMatch(/--idle/);
    }
  });

  it('exits 3 when nothing answers', async () => {
    const r = await runCli(['check-lb'], { ARCHON_URL: 'http://127.0.0.1:9' });
    expect(r.code).toBe(3);
    expectOneLineError(r);
    expect(r.stderr).toMatch(/cannot reach ws:\/\/127\.0\.0\.1:9\/api\/v1\/ws\/test: ECONNREFUSED/);
  });

  it('fails the checks when a plain web server answers the upgrade with 200', async () => {
    const server: Server = createServer((_req, res) => res.end('<html>hello</html>'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const r = await runCli(['check-lb', `http://127.0.0.1:${port}`]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toMatch(/^FAIL\s+HTTP 101\s+200: the upgrade did not reach the gateway/m);
      expect(r.stdout).toMatch(/^FAIL\s+Upgrade: websocket\s+missing$/m);
      expect(r.stdout).toMatch(/^-\s+subprotocol archon\.v1\s+no 101$/m);
      expect(r.stdout).toMatch(
        /^FAIL\s+HTTP streaming fallback \(GET \/api\/v1\/sse\)\s+200: an HTML page, not the gateway \[<html>hello<\/html>\]$/m,
      );
      expect(r.stdout.replace(/\s+/g, ' ')).toContain(
        'Neither the WebSocket upgrade nor the HTTP streaming fallback gets through: clients cannot connect at all.',
      );
    } finally {
      server.close();
    }
  });
});
