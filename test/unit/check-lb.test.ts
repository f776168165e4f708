/**
 * How `archon-ws check-lb` judges what its probe saw (src/cli/lb-checks.ts): each RB-003
 * Step 2 property, and an idle hold read honestly — a proxy cut, a close from something in
 * between and the gateway's own close are three different things.
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { WebSocket } from 'ws';
import { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLb, idleOption, lbExitCode, MAX_IDLE_S } from '../../src/cli/commands/check-lb.js';
import { idleVerdict, judge, sentByGateway } from '../../src/cli/lb-checks.js';
import {
  fallbackUrl,
  judgeFallback,
  withFallback,
  type FallbackProbe,
} from '../../src/cli/lb-fallback.js';
import type { IdleHold, Probe } from '../../src/cli/lb-probe.js';
import { TEST_CLOSE_REASONS } from '../../src/protocol/index.js';
import { serveTestConnection } from '../../src/server/diagnostics.js';
import { goodProbe } from '../support/probes.js';

const probe = (edit: (p: Probe) => void = () => {}): Probe =>
  goodProbe('api-2', 'ws://lb.example/api/v1/ws/test?hold=100', edit);

/** A probe answered with HTTP `status` and `body` instead of 101: no welcome, nothing after. */
const answered = (status: number, body: string, edit: (p: Probe) => void = () => {}): Probe =>
  probe((p) => {
    p.handshake = {
      ...p.handshake,
      status,
      upgrade: null,
      connection: status === 503 ? 'close' : null,
      protocol: null,
      body,
      error: `answered HTTP ${status} instead of 101`,
    };
    p.welcome = null;
    p.ping = null;
    p.echo = null;
    edit(p);
  });

const hold = (over: Partial<IdleHold>): IdleHold => ({
  requested_ms: 90_000,
  idle_ms: 90_000,
  close: null,
  echo_after: { ms: 0.8 },
  unexpected_messages: 0,
  ...over,
});

describe('check-lb checks', () => {
  it('passes every property of a good upgrade', () => {
    const r = judge(probe());
    expect(r.ok).toBe(true);
    expect(r.server).toBe('api-2');
    expect(r.checks).toEqual([
      { name: 'HTTP 101', status: 'pass', figure: '101 in 4.2 ms' },
      { name: 'Upgrade: websocket', status: 'pass', figure: 'Upgrade: websocket' },
      { name: 'Connection: upgrade', status: 'pass', figure: 'Connection: upgrade' },
      { name: 'subprotocol archon.v1', status: 'pass', figure: 'archon.v1 echoed' },
      { name: 'welcome names the server', status: 'pass', figure: 'api-2' },
      { name: 'ping → pong', status: 'pass', figure: '0.8 ms' },
      { name: 'echo round trip', status: 'pass', figure: '0.9 ms' },
    ]);
  });

  it('fails the subprotocol when a proxy drops Sec-WebSocket-Protocol, and runs nothing after', () => {
    const r = judge(
      probe((p) => {
        p.handshake.protocol = null;
        p.handshake.error = 'Server sent no subprotocol';
        p.welcome = null;
        p.ping = null;
        p.echo = null;
      }),
    );
    expect(r.ok).toBe(false);
    const by = Object.fromEntries(r.checks.map((c) => [c.name, c]));
    expect(by['subprotocol archon.v1']).toEqual({
      name: 'subprotocol archon.v1',
      status: 'fail',
      figure: 'none in the answer (a proxy dropping Sec-WebSocket-Protocol?)',
    });
    expect(by['echo round trip']).toEqual({
      name: 'echo round trip',
      status: 'not run',
      figure: 'no WebSocket',
    });
  });

  it("tells the gateway's own refusal from a load balancer's answer", () => {
    const refused = judge(
      answered(503, '{"error":{"code":"draining","message":"server shutting down"}}'),
    );
    expect(refused.refusal).toEqual({ code: 'draining', message: 'server shutting down' });
    expect(refused.checks[0]?.figure).toBe('503 from the gateway: draining (server shutting down)');
    const proxy = judge(answered(502, '<html><body>502 Bad Gateway</body></html>'));
    expect(proxy.refusal).toBeNull();
    expect(proxy.checks[0]?.figure).toBe('502 [<html><body>502 Bad Gateway</body></html>]');
    expect(proxy.checks[1]).toMatchObject({ status: 'fail', figure: 'missing' });
  });

  it('judges the idle hold as one more check', () => {
    const r = judge(
      probe((p) => {
        p.idle = hold({});
      }),
      90_000,
    );
    expect(r.ok).toBe(true);
    expect(r.checks.at(-1)).toEqual({
      name: 'idle 90 s',
      status: 'pass',
      figure: 'survived 90.0 s idle, echo after it in 0.8 ms',
    });
  });
});

describe('idle hold verdict', () => {
  it('reads a cut without a close frame as a proxy timeout, and says why live clients survive', () => {
    const v = idleVerdict(
      hold({ idle_ms: 60_012, close: { code: 1006, reason: '' }, echo_after: null }),
      30,
    );
    expect(v.outcome).toBe('cut');
    expect(v.summary).toBe('cut after 60.0 s idle without a close frame (code 1006)');
    expect(v.idle_s).toBe(60);
    expect(v.explanation).toContain('a proxy or load balancer read/idle timeout of about 60 s');
    expect(v.explanation).toContain(
      'Live clients survive only because the gateway sends each of them a ping every 30 s (WEBSOCKET_PING_INTERVAL)',
    );
    expect(v.explanation).toContain('Raise it to at least 3600 s');
  });

  it('warns that live clients are cut too when the timeout is under the ping interval', () => {
    const v = idleVerdict(
      hold({ idle_ms: 20_000, close: { code: 1006, reason: '' }, echo_after: null }),
      30,
    );
    expect(v.explanation).toContain(
      "That is not more than the gateway's ping interval (30 s, WEBSOCKET_PING_INTERVAL): live clients are cut as well, about every 20 s",
    );
  });

  it('reads a close frame the gateway does not send as something in between', () => {
    const v = idleVerdict(
      hold({ idle_ms: 100_000, close: { code: 1001, reason: 'idle timeout' }, echo_after: null }),
      30,
    );
    expect(v.outcome).toBe('closed-in-between');
    expect(v.summary).toBe(
      'closed after 100.0 s idle with 1001 "idle timeout", a close the gateway does not send',
    );
    expect(v.explanation).toContain('idle timeout of about 100 s');
  });

  it("reads the gateway's own time-limit close as no test at all", () => {
    const reason = `${TEST_CLOSE_REASONS.timeLimit} (60 s)`;
    const close = { code: 1000, reason };
    expect(sentByGateway(close)).toBe(true);
    expect(sentByGateway({ code: 1000, reason: 'idle timeout' })).toBe(false);
    const v = idleVerdict(hold({ idle_ms: 59_990, close, echo_after: null }), null);
    expect(v.outcome).toBe('gateway');
    expect(v.tested).toBe(false);
    expect(v.summary).toBe(`closed by the gateway after 60.0 s (1000 "${reason}")`);
    expect(v.explanation).toContain('it does not know ?hold=');
  });

  it('uses the close reasons the test endpoint really sends', async () => {
    // The server's test connection, on a stand-in socket: what it closes with at its limit
    // and when rate-limited is what sentByGateway() recognises.
    const closes: { code: number; reason: string }[] = [];
    const fake = Object.assign(new EventEmitter(), {
      send: () => {},
      terminate: () => {},
      close: (code: number, reason: string) => closes.push({ code, reason }),
    });
    const ws = fake as unknown as WebSocket;
    serveTestConnection(ws, 'api-1', { lifetimeMs: 5, pingInterval: 30, pingTimeout: 10 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    for (let i = 0; i < 20; i++) fake.emit('message', Buffer.from('x'), false);
    expect(closes[0]).toEqual({ code: 1000, reason: `${TEST_CLOSE_REASONS.timeLimit} (0.005 s)` });
    expect(closes.at(-1)).toEqual({ code: 1008, reason: TEST_CLOSE_REASONS.rateLimited });
    for (const c of closes) expect(sentByGateway(c)).toBe(true);
  });

  it('does not call a hold idle when messages arrived during it', () => {
    const v = idleVerdict(hold({ unexpected_messages: 3 }), 30);
    expect(v.outcome).toBe('inconclusive');
    expect(v.summary).toBe('not idle: 3 message(s) arrived during the hold');
  });

  it('flags a connection that stayed open but stopped carrying data', () => {
    const v = idleVerdict(hold({ echo_after: { error: 'no echo in time' } }), 30);
    expect(v.outcome).toBe('inconclusive');
    expect(v.explanation).toContain('half-open tunnel');
  });
});

describe('check-lb: checks that could not run', () => {
  const refused = (code: string, message: string) =>
    answered(503, JSON.stringify({ error: { code, message } }), (p) => {
      p.hold_requested_s = 100;
    });

  it('reads a busy or full test endpoint as "not run", exit 7, never a failure', () => {
    const busy = judge(
      refused('test_endpoint_busy', '10 test connections held longer than 60 s are open'),
      90_000,
    );
    expect(busy.verdict).toBe('incomplete');
    expect(busy.checks.every((c) => c.status === 'not run')).toBe(true);
    expect(busy.busy).toBe(
      'the test endpoint is busy (test_endpoint_busy: 10 test connections held longer than 60 s are open): check-lb could not run; try again, or without --idle',
    );
    expect(busy.checks[0]?.figure).toMatch(/^503 from the gateway: the test endpoint is busy/);
    expect(lbExitCode(busy)).toBe(7);
    const full = judge(refused('at_capacity', 'server at capacity'), 90_000);
    expect(full.busy).toMatch(
      /^the test endpoint is full \(at_capacity: all its test connections are in use\): check-lb could not run; try again, or without --idle$/,
    );
    expect(lbExitCode(full)).toBe(7);
    // Any other refusal is still a failure.
    expect(lbExitCode(judge(refused('origin_not_allowed', 'origin x is not allowed')))).toBe(1);
  });

  it('does not hold when the welcome does not grant the hold asked for, and says why', () => {
    const stripped = probe((p) => {
      p.hold_requested_s = 100;
      // A proxy dropped ?hold=100: the gateway keeps the connection its default 60 s.
      if (p.welcome && !('error' in p.welcome)) p.welcome.closes_after = 60;
    });
    const r = judge(stripped, 90_000);
    expect(r.checks.at(-1)).toEqual({
      name: 'idle 90 s',
      status: 'not run',
      figure: 'not run: asked the gateway to keep it 100 s (?hold=100), it keeps it 60 s',
    });
    expect(r.idle?.outcome).toBe('not granted');
    expect(r.idle?.explanation).toMatch(/dropped the query string .* a version without \?hold=/);
    expect(r.verdict).toBe('incomplete');
    expect(lbExitCode(r)).toBe(7);
  });

  it('reports an idle hold the gateway ended itself as not run, a cut as a failure', () => {
    const gatewayClose = judge(
      probe((p) => {
        p.idle = hold({
          idle_ms: 30_000,
          close: { code: 1001, reason: TEST_CLOSE_REASONS.shutdown },
          echo_after: null,
        });
      }),
      90_000,
    );
    expect(gatewayClose.checks.at(-1)?.status).toBe('not run');
    expect(lbExitCode(gatewayClose)).toBe(7);
    const notIdle = judge(
      probe((p) => {
        p.idle = hold({ unexpected_messages: 2 });
      }),
      90_000,
    );
    expect(lbExitCode(notIdle)).toBe(7);
    const cut = judge(
      probe((p) => {
        p.idle = hold({ idle_ms: 60_000, close: { code: 1006, reason: '' }, echo_after: null });
      }),
      90_000,
    );
    expect(cut.verdict).toBe('fail');
    expect(lbExitCode(cut)).toBe(1);
    // A not-run idle hold beside a failed check: the failure decides.
    const both = judge(
      probe((p) => {
        p.handshake.protocol = 'other';
        p.idle = hold({ close: { code: 1001, reason: TEST_CLOSE_REASONS.shutdown } });
      }),
      90_000,
    );
    expect(lbExitCode(both)).toBe(1);
  });
});

describe('check-lb against a gateway that ignores ?hold=', () => {
  let server: WebSocketServer | undefined;
  let http: Server | undefined;
  afterEach(async () => {
    for (const c of server?.clients ?? []) c.terminate();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
    const plain = http;
    http = undefined;
    plain?.closeAllConnections();
    if (plain) await new Promise((resolve) => plain.close(resolve));
  });

  it('gives up on the idle hold as soon as the welcome arrives', async () => {
    // Like a gateway before ?hold= (or one behind a proxy dropping the query string): the
    // welcome says 60 s, whatever was asked. It predates the HTTP streaming fallback too, so
    // GET /api/v1/sse gets its answer to a route it does not have.
    http = createServer((req, res) => {
      res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' });
      res.end(
        JSON.stringify({
          error: { code: 'not_found', message: `no route ${req.method} ${req.url?.split('?')[0]}` },
        }),
      );
    });
    server = new WebSocketServer({ server: http, handleProtocols: () => 'archon.v1' });
    await new Promise<void>((resolve) => http?.listen(0, '127.0.0.1', resolve));
    server.on('connection', (ws) => {
      ws.send(
        JSON.stringify({
          type: 'welcome',
          endpoint: 'test',
          server: 'old-1',
          client_id: 't_1',
          closes_after: 60,
          ping_interval: 30,
          ping_timeout: 10,
        }),
      );
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
    const port = (http.address() as AddressInfo).port;
    const began = Date.now();
    const r = await checkLb({
      url: `ws://127.0.0.1:${port}/api/v1/ws/test`,
      timeoutMs: 2000,
      idleMs: 30_000,
      quiet: true,
    });
    expect(Date.now() - began).toBeLessThan(5000);
    expect(r.url).toMatch(/\?hold=40$/);
    expect(r.checks.filter((c) => c.status !== 'pass').map((c) => c.name)).toEqual(['idle 30 s']);
    expect(r.idle?.summary).toBe(
      'not run: asked the gateway to keep it 40 s (?hold=40), it keeps it 60 s',
    );
    // No fallback on such a gateway: nothing to check there, and no check counted.
    expect(r.fallback).toMatchObject({
      status: 'not available',
      figure: '404 from the gateway: not_found (no route GET /api/v1/sse)',
    });
    expect(lbExitCode(r)).toBe(7);
  });
});

/** What GET /api/v1/sse without a token got back through a load balancer. */
const fallback = (
  status: number | null,
  body: string,
  contentType = 'application/json; charset=utf-8',
): FallbackProbe => ({
  url: 'http://lb.example/api/v1/sse',
  status,
  content_type: status === null ? null : contentType,
  body: status === null ? null : body,
  ms: status === null ? null : 2.1,
  error: status === null ? 'ECONNREFUSED' : null,
});
const gatewayError = (code: string, message: string) =>
  JSON.stringify({ error: { code, message } });
const UNAUTHORIZED = gatewayError(
  'unauthorized',
  'missing token: send it as Authorization: Bearer <jwt> (never in the URL)',
);
const NGINX_404 =
  '<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

describe('check-lb: the HTTP streaming fallback', () => {
  it("passes on the gateway's own 401 to a request without a token", () => {
    expect(judgeFallback(fallback(401, UNAUTHORIZED))).toEqual({
      url: 'http://lb.example/api/v1/sse',
      status: 'pass',
      figure: '401 unauthorized from the gateway in 2.1 ms',
      explanation: null,
    });
    // The stream route's other answers before the token prove the path as well.
    expect(
      judgeFallback(fallback(503, gatewayError('draining', 'server shutting down'))),
    ).toMatchObject({
      status: 'pass',
      figure: '503 from the gateway: draining (server shutting down), so the path reaches it',
    });
  });

  it('fails a 404 page or an HTML page, naming the nginx location block to add', () => {
    const page = judgeFallback(fallback(404, NGINX_404, 'text/html'));
    expect(page.status).toBe('fail');
    expect(page.figure).toBe(
      '404: an HTML page, not the gateway [<html> <head><title>404 Not Found</title></head> <body> <cen]',
    );
    expect(page.explanation).toBe(
      'GET /api/v1/sse does not reach a gateway through http://lb.example (HTTP 404, an HTML page, not the gateway): the load balancer does not route the HTTP streaming fallback. Route it to the instances: the `location /api/v1/sse` block of deploy/nginx/archon-ws.conf (proxy_pass to the archon_ws upstream, proxy_buffering off, proxy_read_timeout 3600s), or on another load balancer a rule sending /api/v1/sse to the instances without response buffering.',
    );
    // A web app answering every path with its index page.
    const app = judgeFallback(fallback(200, '<!doctype html><title>Archon</title>', 'text/html'));
    expect([app.status, app.figure]).toEqual([
      'fail',
      '200: an HTML page, not the gateway [<!doctype html><title>Archon</title>]',
    ]);
    expect(judgeFallback(fallback(200, '', 'text/event-stream'))).toMatchObject({
      status: 'fail',
      figure: '200: an event stream without a token, which the gateway never gives',
    });
    expect(judgeFallback(fallback(502, 'Bad Gateway', 'text/plain')).figure).toBe(
      "502: not the gateway's answer [Bad Gateway]",
    );
  });

  it('fails when nothing answers', () => {
    expect(judgeFallback(fallback(null, ''))).toMatchObject({
      status: 'fail',
      figure: 'no answer: ECONNREFUSED',
      explanation: expect.stringMatching(
        /^GET \/api\/v1\/sse got no answer through http:\/\/lb\.example \(ECONNREFUSED\)\. Route it to the instances: the `location \/api\/v1\/sse` block/,
      ) as string,
    });
  });

  it('tells a gateway without the route (an earlier release) from a path rewritten on the way', () => {
    const older = judgeFallback(
      fallback(404, gatewayError('not_found', 'no route GET /api/v1/sse')),
    );
    expect(older).toMatchObject({
      status: 'not available',
      figure: '404 from the gateway: not_found (no route GET /api/v1/sse)',
    });
    expect(older.explanation).toMatch(/a release before the HTTP streaming fallback/);
    const rewritten = judgeFallback(fallback(404, gatewayError('not_found', 'no route GET /sse')));
    expect(rewritten).toMatchObject({
      status: 'fail',
      figure:
        '404 from the gateway: not_found (no route GET /sse): the path was rewritten on the way',
    });
    expect(rewritten.explanation).toMatch(/the load balancer rewrites it/);
  });

  it('says clients stay live over the fallback when the WebSocket checks fail but it passes (exit 1)', () => {
    const stripped = answered(404, gatewayError('not_found', 'no route GET /api/v1/ws/test'));
    const r = withFallback(judge(stripped), judgeFallback(fallback(401, UNAUTHORIZED)));
    expect(r.websocket).toBe('fail');
    expect(r.verdict).toBe('fail');
    expect(r.checks.at(-1)).toEqual({
      name: 'HTTP streaming fallback (GET /api/v1/sse)',
      status: 'pass',
      figure: '401 unauthorized from the gateway in 2.1 ms',
    });
    expect(r.fallback.explanation).toBe(
      'The WebSocket checks fail, but GET /api/v1/sse reaches the gateway: clients on the archon-ws SDK stay live over the HTTP streaming fallback while the upgrade is fixed (RB-003 Step 4), and move back to WebSocket by themselves once it gets through.',
    );
    expect(lbExitCode(r)).toBe(1);
    const neither = withFallback(judge(stripped), judgeFallback(fallback(404, NGINX_404)));
    expect(neither.fallback.explanation).toMatch(
      / Neither the WebSocket upgrade nor the HTTP streaming fallback gets through: clients cannot connect at all\.$/,
    );
  });

  it('fails the run on the fallback alone, beside WebSocket checks that pass', () => {
    const r = withFallback(judge(probe()), judgeFallback(fallback(404, NGINX_404, 'text/html')));
    expect(r).toMatchObject({ websocket: 'pass', verdict: 'fail', ok: false });
    expect(r.checks.filter((c) => c.status !== 'pass').map((c) => c.name)).toEqual([
      'HTTP streaming fallback (GET /api/v1/sse)',
    ]);
    expect(r.fallback.explanation).toMatch(
      / WebSocket upgrades pass, so only clients whose own network stops the upgrade are affected: they have nothing to fall back to\.$/,
    );
    expect(lbExitCode(r)).toBe(1);
    const all = withFallback(judge(probe()), judgeFallback(fallback(401, UNAUTHORIZED)));
    expect([all.verdict, all.checks.length, all.fallback.explanation]).toEqual(['pass', 8, null]);
    expect(lbExitCode(all)).toBe(0);
    // A busy test endpoint is still exit 7 with the fallback passing.
    const busy = answered(503, gatewayError('test_endpoint_busy', 'busy'));
    expect(lbExitCode(withFallback(judge(busy), judgeFallback(fallback(401, UNAUTHORIZED))))).toBe(
      7,
    );
  });

  it('asks GET /api/v1/sse beside the test endpoint, over http(s), keeping a path prefix', () => {
    expect(fallbackUrl('ws://lb.example/api/v1/ws/test?hold=100')?.toString()).toBe(
      'http://lb.example/api/v1/sse',
    );
    expect(fallbackUrl('wss://lb.example/archon/api/v1/ws/test')?.toString()).toBe(
      'https://lb.example/archon/api/v1/sse',
    );
    expect(fallbackUrl('https://lb.example:8443')?.toString()).toBe(
      'https://lb.example:8443/api/v1/sse',
    );
    expect(fallbackUrl('ftp://lb.example')).toBeNull();
  });
});

describe('check-lb --idle', () => {
  it('accepts seconds with or without a unit, up to the hold the gateway allows', () => {
    expect(idleOption('90')).toBe(90_000);
    expect(idleOption('90s')).toBe(90_000);
    expect(idleOption('2m')).toBe(120_000);
    expect(idleOption(`${MAX_IDLE_S}s`)).toBe(290_000);
  });

  it.each(['0', '0.5s', '291', '5m', 'soon', '', '-1'])('refuses %j with exit code 2', (raw) => {
    expect(() => idleOption(raw)).toThrow(expect.objectContaining({ exitCode: 2 }));
  });
});
