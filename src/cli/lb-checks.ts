/**
 * RB-003 Step 2 judged: what a probe of /api/v1/ws/test through the load balancer saw,
 * turned into PASS/FAIL checks with their figures, and an honest reading of an idle hold
 * (who ended it, and what that means for live clients). Pure: unit tests feed it probes.
 */
import { readErrorAnswer, TEST_CLOSE_REASONS } from '../protocol/index.js';
import { holdGranted, type Close, type IdleHold, type Probe, type Step } from './lb-probe.js';

export type CheckStatus = 'pass' | 'fail' | 'not run';

export interface LbCheck {
  name: string;
  status: CheckStatus;
  figure: string;
}

/** Who ended an idle hold. */
export type IdleOutcome =
  /** nobody: the connection carried an echo after the full hold */
  | 'survived'
  /** cut without a close frame (1006): a proxy timeout or a network cut */
  | 'cut'
  /** a close frame the gateway does not send: something in between closed it */
  | 'closed-in-between'
  /** the gateway's own close: the hold could not be tested */
  | 'gateway'
  /** the connection did not stay quiet or stopped answering without closing */
  | 'inconclusive'
  /** the gateway did not grant the hold asked for, so none was attempted */
  | 'not granted';

export interface IdleVerdict {
  outcome: IdleOutcome;
  /** Whether the hold says anything about the path: false when it could not run (the
   * gateway closed first, messages arrived, the hold was not granted). */
  tested: boolean;
  requested_s: number;
  /** Seconds the connection stayed idle before it ended (the full hold if it survived). */
  idle_s: number;
  close_code: number | null;
  close_reason: string | null;
  /** The gateway's ping interval for client connections, when it said. */
  ping_interval_s: number | null;
  /** One line for the table. */
  summary: string;
  /** What it means, with the numbers. */
  explanation: string;
}

export interface LbReport {
  url: string;
  /** Every check passed. */
  ok: boolean;
  /** pass: every check passed; fail: one failed; incomplete: none failed, some could not run
   * (the test endpoint busy or full, an idle hold not granted or ended by the gateway). */
  verdict: 'pass' | 'fail' | 'incomplete';
  /** Why the checks could not run when the test endpoint refused: busy or full. */
  busy: string | null;
  /** The instance that answered, from its welcome. */
  server: string | null;
  checks: LbCheck[];
  idle: IdleVerdict | null;
  /** The gateway's own refusal of the upgrade (its JSON error), if that is what came back. */
  refusal: { code: string; message: string } | null;
  /** Nothing answered at all. */
  unreachable: boolean;
  ping_interval_s: number | null;
  ping_timeout_s: number | null;
}

/** Close frames the test endpoint sends itself (protocol/diagnostics.ts). */
const GATEWAY_CLOSES: readonly { code: number; reason: string }[] = [
  { code: 1000, reason: TEST_CLOSE_REASONS.timeLimit },
  { code: 1001, reason: TEST_CLOSE_REASONS.shutdown },
  { code: 1008, reason: TEST_CLOSE_REASONS.rateLimited },
];

export function sentByGateway(close: Close): boolean {
  return GATEWAY_CLOSES.some((g) => g.code === close.code && close.reason.startsWith(g.reason));
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const pass = (name: string, figure: string): LbCheck => ({ name, status: 'pass', figure });
const fail = (name: string, figure: string): LbCheck => ({ name, status: 'fail', figure });
const notRun = (name: string, why: string): LbCheck => ({ name, status: 'not run', figure: why });

function stepCheck(name: string, step: Step | null, why: string): LbCheck {
  if (step === null) return notRun(name, why);
  return 'error' in step ? fail(name, step.error) : pass(name, `${step.ms} ms`);
}

/** Codes the gateway's upgrade handler refuses a real upgrade with (docs/protocol.md,
 * Handshake). A `not_found` for the test path itself is something else: the gateway got a
 * plain GET, because the upgrade was not passed on. */
const UPGRADE_REFUSALS = new Set([
  'draining',
  'at_capacity',
  'test_endpoint_busy',
  'origin_not_allowed',
  'bad_request',
]);

/**
 * When the test endpoint itself turned the probe away, why, in words: `at_capacity` there
 * means its own test connection slots are all in use (clients have their own limit), and
 * `test_endpoint_busy` that too many long `?hold=` tests are open. Neither says anything
 * about the load balancer or the clients' capacity. Null for any other answer.
 */
export function testEndpointBusy(
  refusal: { code: string; message: string } | null,
  withHold: boolean,
): string | null {
  if (refusal === null) return null;
  const again = `check-lb could not run; try again${withHold ? ', or without --idle' : ' later'}`;
  if (refusal.code === 'test_endpoint_busy')
    return `the test endpoint is busy (test_endpoint_busy${refusal.message ? `: ${refusal.message}` : ''}): ${again}`;
  if (refusal.code === 'at_capacity')
    return `the test endpoint is full (at_capacity: all its test connections are in use): ${again}`;
  return null;
}

function errorBody(body: string | null): { code: string; message: string } | null {
  return body === null ? null : readErrorAnswer(body); // null: a proxy's own page
}

/** The gateway's own refusal of the upgrade, if that is what the answer is. */
export function refusalOf(body: string | null): { code: string; message: string } | null {
  const error = errorBody(body);
  return error !== null && UPGRADE_REFUSALS.has(error.code) ? error : null;
}

function statusFigure(probe: Probe, refusal: { code: string; message: string } | null): string {
  const h = probe.handshake;
  if (h.status === null) return `no answer: ${h.error ?? 'unknown'}`;
  if (h.status === 101) return `101 in ${h.ms ?? '?'} ms`;
  if (refusal) return `${h.status} from the gateway: ${refusal.code} (${refusal.message})`;
  const plainGet = errorBody(h.body)?.message.startsWith('no route GET') === true;
  const hint = plainGet
    ? ': the gateway got a plain GET, the load balancer did not pass the upgrade on'
    : h.status === 200 || h.status === 404 || h.status === 400 || h.status === 426
      ? ': the upgrade did not reach the gateway as one (Upgrade/Connection not forwarded?)'
      : '';
  // The gateway's own 404 is explained by the hint; a proxy's page may say more.
  const body = plainGet ? '' : (h.body?.replace(/\s+/g, ' ').trim().slice(0, 60) ?? '');
  return `${h.status}${hint}${body ? ` [${body}]` : ''}`;
}

/** Judges a probe: one check per RB-003 Step 2 property, and the idle hold if there was one. */
export function judge(probe: Probe, idleRequestedMs?: number): LbReport {
  const h = probe.handshake;
  const refusal = refusalOf(h.body);
  const busy = testEndpointBusy(refusal, idleRequestedMs !== undefined);
  const upgraded = h.status === 101;
  const opened = upgraded && h.error === null;
  const checks: LbCheck[] = [];
  if (busy !== null) {
    // The gateway answered, so the load balancer passed the upgrade on; but nothing after
    // the handshake could be checked.
    checks.push(notRun('HTTP 101', `${h.status ?? '?'} from the gateway: ${busy}`));
    for (const name of [
      'Upgrade: websocket',
      'Connection: upgrade',
      `subprotocol ${probe.requested_protocol}`,
      'welcome names the server',
      'ping → pong',
      'echo round trip',
    ])
      checks.push(notRun(name, 'test endpoint busy'));
    if (idleRequestedMs !== undefined)
      checks.push(notRun(`idle ${Math.round(idleRequestedMs / 1000)} s`, 'test endpoint busy'));
    return report(probe, checks, null, refusal, busy, null);
  }
  checks.push(
    upgraded
      ? pass('HTTP 101', statusFigure(probe, refusal))
      : fail('HTTP 101', statusFigure(probe, refusal)),
  );
  if (h.status === null) {
    for (const name of ['Upgrade: websocket', 'Connection: upgrade'])
      checks.push(notRun(name, 'no answer'));
  } else {
    checks.push(
      h.upgrade?.toLowerCase() === 'websocket'
        ? pass('Upgrade: websocket', `Upgrade: ${h.upgrade}`)
        : fail('Upgrade: websocket', h.upgrade === null ? 'missing' : `Upgrade: ${h.upgrade}`),
    );
    const tokens = (h.connection ?? '').split(',').map((t) => t.trim().toLowerCase());
    checks.push(
      tokens.includes('upgrade')
        ? pass('Connection: upgrade', `Connection: ${h.connection}`)
        : fail(
            'Connection: upgrade',
            h.connection === null ? 'missing' : `Connection: ${h.connection}`,
          ),
    );
  }
  const protocolName = `subprotocol ${probe.requested_protocol}`;
  if (!upgraded) checks.push(notRun(protocolName, 'no 101'));
  else if (h.protocol === probe.requested_protocol)
    checks.push(pass(protocolName, `${h.protocol} echoed`));
  else
    checks.push(
      fail(
        protocolName,
        h.protocol === null
          ? `none in the answer (a proxy dropping Sec-WebSocket-Protocol?)`
          : `answered ${h.protocol}`,
      ),
    );
  const why = opened ? 'an earlier step failed' : 'no WebSocket';
  const welcome = probe.welcome;
  if (welcome === null) checks.push(notRun('welcome names the server', why));
  else if ('error' in welcome) checks.push(fail('welcome names the server', welcome.error));
  else checks.push(pass('welcome names the server', welcome.server));
  checks.push(stepCheck('ping → pong', probe.ping, why));
  checks.push(stepCheck('echo round trip', probe.echo, why));

  const pingInterval = welcome && !('error' in welcome) ? welcome.ping_interval : null;
  let idle: IdleVerdict | null = null;
  if (idleRequestedMs !== undefined) {
    const name = `idle ${Math.round(idleRequestedMs / 1000)} s`;
    const echoed = probe.echo !== null && !('error' in probe.echo);
    if (echoed && welcome !== null && !('error' in welcome) && !holdGranted(probe))
      idle = holdNotGranted(idleRequestedMs, probe.hold_requested_s ?? 0, welcome.closes_after);
    else if (probe.idle !== null) idle = idleVerdict(probe.idle, pingInterval);
    if (idle === null) checks.push(notRun(name, why));
    else
      checks.push(
        !idle.tested
          ? notRun(name, idle.summary)
          : idle.outcome === 'survived'
            ? pass(name, idle.summary)
            : fail(name, idle.summary),
      );
  }
  return report(probe, checks, idle, refusal, null, pingInterval);
}

function report(
  probe: Probe,
  checks: LbCheck[],
  idle: IdleVerdict | null,
  refusal: { code: string; message: string } | null,
  busy: string | null,
  pingInterval: number | null,
): LbReport {
  const welcome = probe.welcome;
  const failed = checks.some((c) => c.status === 'fail');
  const ok = checks.every((c) => c.status === 'pass');
  return {
    url: probe.url,
    ok,
    verdict: ok ? 'pass' : failed ? 'fail' : 'incomplete',
    busy,
    server: welcome && !('error' in welcome) ? welcome.server : null,
    checks,
    idle,
    refusal,
    unreachable: probe.handshake.unreachable,
    ping_interval_s: pingInterval,
    ping_timeout_s: welcome && !('error' in welcome) ? welcome.ping_timeout : null,
  };
}

/** The welcome said the gateway keeps the connection for another time than the hold asked. */
function holdNotGranted(
  requestedMs: number,
  askedS: number,
  closesAfter: number | null,
): IdleVerdict {
  const said =
    closesAfter === null
      ? 'its welcome does not say how long it keeps the connection (a gateway without ?hold=)'
      : `its welcome says it closes the connection after ${closesAfter} s`;
  return {
    outcome: 'not granted',
    tested: false,
    requested_s: requestedMs / 1000,
    idle_s: 0,
    close_code: null,
    close_reason: null,
    ping_interval_s: null,
    summary: `not run: asked the gateway to keep it ${askedS} s (?hold=${askedS}), ${closesAfter === null ? 'it did not say for how long' : `it keeps it ${closesAfter} s`}`,
    explanation: `The idle hold was not run: it asked the gateway to keep the test connection ${askedS} s (?hold=${askedS}), but ${said}. Either something in between dropped the query string (a proxy rewriting the URL: check its proxy_pass / rewrite rules), or the gateway is a version without ?hold=. Waiting would only have seen the gateway's own close, which says nothing about a proxy's idle timeout. The other checks are unaffected.`,
  };
}

/** Reads an idle hold: who ended it, and what that means for clients that are not idle. */
export function idleVerdict(hold: IdleHold, pingInterval: number | null): IdleVerdict {
  const base = {
    requested_s: hold.requested_ms / 1000,
    idle_s: Math.round(hold.idle_ms / 100) / 10,
    close_code: hold.close?.code ?? null,
    close_reason: hold.close?.reason ?? null,
    ping_interval_s: pingInterval,
  };
  const asked = secs(hold.requested_ms);
  const after = secs(hold.idle_ms);
  const fix =
    'Raise it to at least 3600 s: nginx proxy_read_timeout/proxy_send_timeout, the AWS ALB idle timeout (RB-003 Step 4 and section 6).';
  const liveClients = (cutS: number): string => {
    if (pingInterval === null)
      return 'The gateway did not say its ping interval (an older version): live clients survive only while it pings them more often than that.';
    if (cutS <= pingInterval)
      return `That is not more than the gateway's ping interval (${pingInterval} s, WEBSOCKET_PING_INTERVAL): live clients are cut as well, about every ${Math.round(cutS)} s (1006 in disconnects_by_code, clients reconnecting over and over).`;
    return `Live clients survive only because the gateway sends each of them a ping every ${pingInterval} s (WEBSOCKET_PING_INTERVAL), which restarts that timer: a quiet connection, a ping interval raised to ${Math.round(cutS)} s or more, or pings delayed by a busy instance, are cut.`;
  };

  if (hold.close === null && hold.echo_after !== null && !('error' in hold.echo_after)) {
    if (hold.unexpected_messages > 0)
      return {
        ...base,
        outcome: 'inconclusive',
        tested: false,
        summary: `not idle: ${hold.unexpected_messages} message(s) arrived during the hold`,
        explanation: `The far side sent ${hold.unexpected_messages} message(s) during the ${asked} hold, so the connection was never idle and this says nothing about an idle timeout. An archon-ws test connection sends nothing after its welcome: is this URL an archon-ws gateway?`,
      };
    return {
      ...base,
      outcome: 'survived',
      tested: true,
      summary: `survived ${asked} idle, echo after it in ${hold.echo_after.ms} ms`,
      explanation: `Nothing between here and the gateway cut a connection that was completely quiet (no data, no ping frames) for ${asked}.${pingInterval === null ? '' : ` Live clients also get a ping from the gateway every ${pingInterval} s.`}`,
    };
  }
  if (hold.close === null)
    return {
      ...base,
      outcome: 'inconclusive',
      // The hold ran and the path stopped carrying data: that is a finding, not a non-test.
      tested: true,
      summary: `open after ${asked} idle, but the echo after it failed (${hold.echo_after && 'error' in hold.echo_after ? hold.echo_after.error : 'no echo'})`,
      explanation: `The connection was not closed during the ${asked} hold, yet the echo sent after it got no answer: something in between may have dropped its side silently (a half-open tunnel). Clients on such a path hear nothing until their own ping deadline.`,
    };
  const c = hold.close;
  if (c.code === 1006)
    return {
      ...base,
      outcome: 'cut',
      tested: true,
      summary: `cut after ${after} idle without a close frame (code 1006)`,
      explanation: `The connection was cut after ${after} of complete silence without a close frame: a proxy or load balancer read/idle timeout of about ${Math.round(hold.idle_ms / 1000)} s (nginx's proxy_read_timeout and the AWS ALB idle timeout both default to 60 s), or a network cut. The gateway does not close test connections this way. ${liveClients(hold.idle_ms / 1000)} ${fix}`,
    };
  const quoted = `${c.code}${c.reason ? ` "${c.reason}"` : ''}`;
  if (sentByGateway(c)) {
    const why =
      c.code === 1001
        ? 'the gateway was shutting down (a restart during the check): run it again.'
        : c.code === 1008
          ? 'the gateway rate-limited this test connection.'
          : `the gateway closed the test connection at its time limit before the ${asked} asked for: it does not know ?hold= (an older version?), so the idle timeout could not be tested.`;
    return {
      ...base,
      outcome: 'gateway',
      tested: false,
      summary: `closed by the gateway after ${after} (${quoted})`,
      explanation: `This close came from the gateway, not from anything in between: ${why}`,
    };
  }
  return {
    ...base,
    outcome: 'closed-in-between',
    tested: true,
    summary: `closed after ${after} idle with ${quoted}, a close the gateway does not send`,
    explanation: `Something between here and the gateway closed the quiet connection after ${after} with a close frame of its own (${quoted}): a proxy or load balancer idle timeout of about ${Math.round(hold.idle_ms / 1000)} s. ${liveClients(hold.idle_ms / 1000)} ${fix}`,
  };
}
