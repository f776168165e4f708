/**
 * The SDK's choice of transport, in-process (src/client/transport.ts, sse-refusal.ts): when
 * SSE is tried, when it goes first, when a WebSocket is probed and adopted, and how HTTP
 * refusals become close codes. The links themselves run over real sockets in
 * test/integration/client-sse-link.test.ts and client-sse.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ClientLink } from '../../src/client/link-shape.js';
import { refusalClose, retryAfterMs } from '../../src/client/sse-refusal.js';
import { Prober, TransportPlan } from '../../src/client/transport.js';
import type { WelcomeMessage } from '../../src/protocol/index.js';

describe('TransportPlan', () => {
  it('starts with WebSocket and tries SSE at once when the WebSocket did not get through', () => {
    for (const code of [1006, 1002, 1005, 1015]) {
      const plan = new TransportPlan('auto');
      expect(plan.begin()).toBe('websocket');
      expect(plan.failed('websocket', code)).toBe('sse');
      // SSE failing too ends the attempt: back off, then WebSocket again.
      expect(plan.failed('sse', 1006)).toBeNull();
      expect(plan.begin()).toBe('websocket');
    }
  });

  it('does not fall back when the gateway itself closed the WebSocket', () => {
    const plan = new TransportPlan('auto');
    plan.begin();
    for (const code of [4001, 4003, 4400, 1008, 1012, 1013, 1000, 1009])
      expect(plan.failed('websocket', code)).toBeNull();
  });

  it('goes to SSE first after two WebSocket failures in a row that SSE saved', () => {
    const plan = new TransportPlan('auto');
    plan.begin();
    plan.failed('websocket', 1006);
    plan.welcomed('sse');
    expect(plan.begin()).toBe('websocket');
    plan.failed('websocket', 1006);
    plan.welcomed('sse');
    expect(plan.begin()).toBe('sse');
    // SSE first, and it is lost: WebSocket gets its chance at once.
    expect(plan.failed('sse', 1006)).toBe('websocket');
    expect(plan.failed('websocket', 1006)).toBeNull();
    expect(plan.begin()).toBe('sse');
  });

  it('goes back to WebSocket first once a WebSocket is welcomed (a probe included)', () => {
    const plan = new TransportPlan('auto');
    for (let i = 0; i < 2; i++) {
      plan.begin();
      plan.failed('websocket', 1006);
      plan.welcomed('sse');
    }
    expect(plan.begin()).toBe('sse');
    plan.welcomed('websocket');
    expect(plan.begin()).toBe('websocket');
  });

  it('probes for a WebSocket only while on SSE in auto mode', () => {
    expect(new TransportPlan('auto').probes('sse')).toBe(true);
    expect(new TransportPlan('auto').probes('websocket')).toBe(false);
    expect(new TransportPlan('sse').probes('sse')).toBe(false);
  });

  it('never switches in a fixed mode', () => {
    for (const mode of ['websocket', 'sse'] as const) {
      const plan = new TransportPlan(mode);
      expect(plan.begin()).toBe(mode);
      expect(plan.failed(mode, 1006)).toBeNull();
    }
  });
});

/** A link that only records what is done to it: the prober never reads the network. */
class StubLink implements ClientLink {
  readonly transport = 'websocket';
  closed = false;
  get open(): boolean {
    return !this.closed;
  }
  send(): boolean {
    return !this.closed;
  }
  close(): void {
    this.closed = true;
  }
}

const WELCOME: WelcomeMessage = {
  type: 'welcome',
  client_id: 'c_1',
  server: 'a',
  ping_interval: 30,
  ping_timeout: 10,
  protocol: 1,
};

describe('Prober', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function prober() {
    const opened: StubLink[] = [];
    const adopted: StubLink[] = [];
    const p = new Prober(60_000, 10_000, {
      open: () => {
        const link = new StubLink();
        opened.push(link);
        return link;
      },
      adopt: (link) => adopted.push(link as StubLink),
    });
    return { p, opened, adopted };
  }

  it('opens one probe per interval and drops one that is not welcomed in time', () => {
    vi.useFakeTimers();
    const { p, opened, adopted } = prober();
    p.start();
    p.start(); // one plan at a time
    vi.advanceTimersByTime(59_999);
    expect(opened).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(opened).toHaveLength(1);
    vi.advanceTimersByTime(10_000);
    expect(opened[0]?.closed).toBe(true);
    vi.advanceTimersByTime(60_000);
    expect(opened).toHaveLength(2);
    expect(adopted).toEqual([]);
  });

  it('plans the next probe an interval after one that closed', () => {
    vi.useFakeTimers();
    const { p, opened } = prober();
    p.start();
    vi.advanceTimersByTime(60_000);
    const first = opened[0] as StubLink;
    p.closed(first);
    vi.advanceTimersByTime(59_999);
    expect(opened).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(opened).toHaveLength(2);
  });

  it('hands a welcomed probe over, and ignores what it said before', () => {
    vi.useFakeTimers();
    const { p, opened, adopted } = prober();
    p.start();
    vi.advanceTimersByTime(60_000);
    const probe = opened[0] as StubLink;
    expect(p.owns(probe)).toBe(true);
    p.message(probe, { type: 'error', code: 'x', message: 'y' });
    expect(adopted).toEqual([]);
    p.message(probe, WELCOME);
    expect(adopted).toEqual([probe]);
    expect(probe.closed).toBe(false);
    expect(p.owns(probe)).toBe(false);
    vi.advanceTimersByTime(120_000); // no timeout closes it, no new probe is planned
    expect(probe.closed).toBe(false);
    expect(opened).toHaveLength(1);
  });

  it('closes a running probe and plans none when stopped', () => {
    vi.useFakeTimers();
    const { p, opened } = prober();
    p.start();
    vi.advanceTimersByTime(60_000);
    p.stop();
    expect(opened[0]?.closed).toBe(true);
    vi.advanceTimersByTime(600_000);
    expect(opened).toHaveLength(1);
  });
});

describe('HTTP refusals as close codes', () => {
  const body = (code: string) => JSON.stringify({ error: { code, message: code } });

  it('takes the close code of the error catalogue, else one by status', () => {
    expect(refusalClose(401, body('unauthorized'), null).code).toBe(4001);
    expect(refusalClose(503, body('draining'), null).code).toBe(1012);
    expect(refusalClose(503, body('at_capacity'), null).code).toBe(1013);
    expect(refusalClose(429, body('user_connection_limit'), null).code).toBe(1013);
    expect(refusalClose(429, body('ip_connection_limit'), null).code).toBe(1013);
    expect(refusalClose(403, body('origin_not_allowed'), null).code).toBe(1008);
    expect(refusalClose(403, body('forbidden'), null).code).toBe(4003);
    expect(refusalClose(400, body('bad_request'), null).code).toBe(4400);
    expect(refusalClose(401, 'not json', null).code).toBe(4001);
    expect(refusalClose(503, '', null).code).toBe(1013);
    expect(refusalClose(500, body('internal'), null).code).toBe(1011);
    expect(refusalClose(502, '<html>', null).code).toBe(1006);
  });

  it('takes a 404 for an older gateway without the endpoint: lost, not stopped', () => {
    expect(refusalClose(404, body('not_found'), null)).toEqual({
      code: 1006,
      reason: 'HTTP 404 not_found: not_found',
    });
  });

  it('reads Retry-After in seconds or as a date, within a minute', () => {
    expect(retryAfterMs('5')).toBe(5000);
    expect(retryAfterMs(null)).toBeNull();
    expect(retryAfterMs('soon')).toBeNull();
    expect(retryAfterMs('3600')).toBe(60_000);
    const now = Date.parse('2030-01-01T00:00:00Z');
    expect(retryAfterMs('Tue, 01 Jan 2030 00:00:02 GMT', now)).toBe(2000);
    expect(retryAfterMs('Mon, 31 Dec 2029 00:00:00 GMT', now)).toBe(0);
  });
});
