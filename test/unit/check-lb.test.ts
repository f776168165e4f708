/**
 * How `archon-ws check-lb` judges what its probe saw (src/cli/lb-checks.ts): each RB-003
 * Step 2 property, and an idle hold read honestly — a proxy cut, a close from something in
 * between and the gateway's own close are three different things.
 */
import { describe, expect, it } from 'vitest';
import { idleOption, MAX_IDLE_S } from '../../src/cli/commands/check-lb.js';
import { idleVerdict, judge, sentByGateway } from '../../src/cli/lb-checks.js';
import type { IdleHold, Probe } from '../../src/cli/lb-probe.js';
import { goodProbe } from '../support/probes.js';

const probe = (edit: (p: Probe) => void = () => {}): Probe =>
  goodProbe('api-2', 'ws://lb.example/api/v1/ws/test?hold=100', edit);

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
      probe((p) => {
        p.handshake = {
          ...p.handshake,
          status: 503,
          upgrade: null,
          connection: 'close',
          protocol: null,
          body: '{"error":{"code":"draining","message":"server shutting down"}}',
          error: 'answered HTTP 503 instead of 101',
        };
        p.welcome = null;
      }),
    );
    expect(refused.refusal).toEqual({ code: 'draining', message: 'server shutting down' });
    expect(refused.checks[0]?.figure).toBe('503 from the gateway: draining (server shutting down)');
    const proxy = judge(
      probe((p) => {
        p.handshake = {
          ...p.handshake,
          status: 502,
          upgrade: null,
          connection: null,
          protocol: null,
          body: '<html><body>502 Bad Gateway</body></html>',
          error: 'answered HTTP 502 instead of 101',
        };
        p.welcome = null;
      }),
    );
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
    const close = { code: 1000, reason: 'test connection time limit (60 s)' };
    expect(sentByGateway(close)).toBe(true);
    const v = idleVerdict(hold({ idle_ms: 59_990, close, echo_after: null }), null);
    expect(v.outcome).toBe('gateway');
    expect(v.summary).toBe(
      'closed by the gateway after 60.0 s (1000 "test connection time limit (60 s)")',
    );
    expect(v.explanation).toContain('it does not know ?hold=');
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
