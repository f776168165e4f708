/**
 * How `archon-ws check-lb` judges what its probe saw (src/cli/lb-checks.ts): each RB-003
 * Step 2 property, and an idle hold read honestly — a proxy cut, a close from something in
 * between and the gateway's own close are three different things.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { WebSocket } from 'ws';
import { WebSocketServer } from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { checkLb, idleOption, lbExitCode, MAX_IDLE_S } from '../../src/cli/commands/check-lb.js';
import { idleVerdict, judge, sentByGateway } from '../../src/cli/lb-checks.js';
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
  afterEach(async () => {
    for (const c of server?.clients ?? []) c.terminate();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
  });

  it('gives up on the idle hold as soon as the welcome arrives', async () => {
    // Like a gateway before ?hold= (or one behind a proxy dropping the query string): the
    // welcome says 60 s, whatever was asked.
    server = new WebSocketServer({
      port: 0,
      host: '127.0.0.1',
      handleProtocols: () => 'archon.v1',
    });
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
    await new Promise((resolve) => server?.once('listening', resolve));
    const port = (server.address() as AddressInfo).port;
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
    expect(lbExitCode(r)).toBe(7);
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
