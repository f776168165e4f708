/**
 * The WebSocket probe behind `archon-ws check-lb` and `doctor`: a real upgrade to
 * /api/v1/ws/test through whatever sits in front of the gateway, recording what came back at
 * each step (handshake headers, welcome, ping→pong, echo) and, on request, whether the
 * connection survives a completely idle hold. It measures; lb-checks.ts judges.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { SUBPROTOCOL } from '../protocol/index.js';
import {
  HealthMessageSchema,
  TestWelcomeReader,
  type TestWelcomeRead,
} from '../protocol/probes.js';
import { round } from './format.js';

export interface Handshake {
  /** HTTP status of the answer to the upgrade request; null when none came. */
  status: number | null;
  upgrade: string | null;
  connection: string | null;
  /** Sec-WebSocket-Protocol of the answer. */
  protocol: string | null;
  ms: number | null;
  /** The start of the body of a non-101 answer (the gateway's refusals are JSON). */
  body: string | null;
  /** Why no WebSocket opened, when none did. */
  error: string | null;
  /** No answer at all: refused, unresolvable, timed out. */
  unreachable: boolean;
}

/** A test endpoint's welcome as read here (src/protocol/probes.ts): null where a gateway did
 * not send a field (`closes_after` is absent before `?hold=` existed). */
export type Welcome = TestWelcomeRead;

export interface Close {
  code: number;
  reason: string;
}

/** A timed step: the round trip, or why it failed. */
export type Step = { ms: number } | { error: string };

export interface IdleHold {
  requested_ms: number;
  /** How long the connection stayed quiet: the full request, or until it was closed. */
  idle_ms: number;
  /** The close that ended the hold early, if one did. */
  close: Close | null;
  /** The echo sent after a full hold: proof the connection still carries data. */
  echo_after: Step | null;
  /** Messages the far side sent during the hold (a quiet test connection sends none). */
  unexpected_messages: number;
}

export interface Probe {
  url: string;
  requested_protocol: string;
  /** The `?hold=` asked for, seconds (null without one). */
  hold_requested_s?: number | null;
  handshake: Handshake;
  welcome: Welcome | { error: string } | null;
  ping: Step | null;
  echo: Step | null;
  idle: IdleHold | null;
}

export interface ProbeOptions {
  timeoutMs: number;
  /** Hold the connection idle this long after the active checks. */
  idleMs?: number;
  /** Ask the gateway to keep the test connection this long (`?hold=`), seconds. */
  holdSeconds?: number;
  /** Updated as the probe goes, for a progress line. */
  progress?: { idleSince: number | null };
}

/** ws(s):// URL of the test endpoint: a bare host gets /api/v1/ws/test appended. */
export function testEndpointUrl(raw: string): URL | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return null;
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') return null;
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/api/v1/ws/test';
  return url;
}

function header(res: IncomingMessage, name: string): string | null {
  const v = res.headers[name];
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}

/** A received WebSocket message as text. */
export function messageText(data: WebSocket.RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data)
    ? data.toString('utf8')
    : Buffer.from(new Uint8Array(data)).toString('utf8');
}

function networkError(err: Error & { code?: string }): string {
  if (/handshake has timed out/i.test(err.message)) return 'no answer to the upgrade in time';
  return err.code ?? err.message;
}

/** Events of one socket as awaitable values, so the probe reads as a sequence of steps. */
class Wire {
  private readonly messages: string[] = [];
  private readonly pongs: string[] = [];
  private wake: (() => void) | null = null;
  closed: Close | null = null;
  received = 0;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.received++;
      this.messages.push(messageText(data));
      this.notify();
    });
    ws.on('pong', (data) => {
      this.pongs.push(data.toString('utf8'));
      this.notify();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8') };
      this.notify();
    });
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  /** Resolves with the first value `take` finds, null on close or timeout. */
  private async wait<T>(take: () => T | null, ms: number): Promise<T | null> {
    const deadline = Date.now() + ms;
    for (;;) {
      const value = take();
      if (value !== null) return value;
      const left = deadline - Date.now();
      if (this.closed !== null || left <= 0) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Forgets messages received so far. */
  drain(): void {
    this.messages.length = 0;
  }

  message(ms: number): Promise<string | null> {
    return this.wait(() => this.messages.shift() ?? null, ms);
  }

  pong(payload: string, ms: number): Promise<string | null> {
    return this.wait(() => {
      const i = this.pongs.indexOf(payload);
      return i === -1 ? null : (this.pongs.splice(i, 1)[0] ?? null);
    }, ms);
  }

  /** Waits for a close for up to `ms`; null if the connection is still open after it. */
  close(ms: number): Promise<Close | null> {
    return this.wait(() => this.closed, ms);
  }
}

function failure(what: string, wire: Wire): { error: string } {
  const c = wire.closed;
  return {
    error: c ? `closed (${c.code}${c.reason ? ` ${c.reason}` : ''})` : `no ${what} in time`,
  };
}

/** Opens the WebSocket; resolves with what the handshake showed and the socket if it opened. */
function open(
  url: string,
  timeoutMs: number,
): Promise<{ handshake: Handshake; ws: WebSocket | null; wire: Wire | null }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const handshake: Handshake = {
      status: null,
      upgrade: null,
      connection: null,
      protocol: null,
      ms: null,
      body: null,
      error: null,
      unreachable: false,
    };
    const ws = new WebSocket(url, [SUBPROTOCOL], {
      handshakeTimeout: timeoutMs,
      perMessageDeflate: false,
    });
    // Registered before `open`, so nothing the far side sends right away is missed.
    const wire = new Wire(ws);
    let settled = false;
    const settle = (opened: boolean) => {
      if (settled) return;
      settled = true;
      if (!opened) {
        ws.removeAllListeners('open');
        ws.terminate();
      }
      resolve({ handshake, ws: opened ? ws : null, wire: opened ? wire : null });
    };
    const record = (res: IncomingMessage) => {
      handshake.status = res.statusCode ?? null;
      handshake.upgrade = header(res, 'upgrade');
      handshake.connection = header(res, 'connection');
      handshake.protocol = header(res, 'sec-websocket-protocol');
      handshake.ms = round(performance.now() - started);
    };
    ws.on('upgrade', record);
    ws.on('unexpected-response', (req, res) => {
      record(res);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 500) body += chunk;
      });
      const done = () => {
        if (settled) return;
        handshake.body = body.slice(0, 500);
        handshake.error = `answered HTTP ${res.statusCode ?? '?'} instead of 101`;
        req.destroy();
        settle(false);
      };
      res.on('end', done);
      res.on('error', done);
      setTimeout(done, Math.min(timeoutMs, 2000)).unref();
    });
    ws.on('error', (err: Error & { code?: string }) => {
      if (settled) return;
      // After a 101 this is ws refusing the answer (e.g. the subprotocol): the far side is
      // reachable. Before any answer it is the network.
      handshake.error = handshake.status === null ? networkError(err) : err.message;
      handshake.unreachable = handshake.status === null;
      settle(false);
    });
    ws.on('open', () => settle(true));
  });
}

/** The probe itself. Never throws: every failure is recorded where it happened. */
export async function probe(rawUrl: string, options: ProbeOptions): Promise<Probe> {
  const url = new URL(rawUrl);
  if (options.holdSeconds !== undefined) url.searchParams.set('hold', String(options.holdSeconds));
  const { handshake, ws, wire } = await open(url.toString(), options.timeoutMs);
  const result: Probe = {
    url: url.toString(),
    requested_protocol: SUBPROTOCOL,
    hold_requested_s: options.holdSeconds ?? null,
    handshake,
    welcome: null,
    ping: null,
    echo: null,
    idle: null,
  };
  if (ws === null || wire === null) return result;
  const timeout = options.timeoutMs;
  try {
    const first = await wire.message(timeout);
    if (first === null) {
      result.welcome = failure('welcome', wire);
      return result;
    }
    result.welcome = parseWelcome(first);
    if ('error' in result.welcome) return result;

    // A WebSocket ping control frame: answered by the far end's WebSocket stack.
    const payload = `check-lb ${Date.now()}`;
    let sent = performance.now();
    ws.ping(payload);
    result.ping =
      (await wire.pong(payload, timeout)) === null
        ? failure('pong', wire)
        : { ms: round(performance.now() - sent) };

    const echo = async (): Promise<Step> => {
      const probeText = `archon-ws check-lb ${Date.now()}`;
      sent = performance.now();
      ws.send(probeText);
      const back = await wire.message(timeout);
      if (back === null) return failure('echo', wire);
      if (back !== probeText) return { error: `answered ${JSON.stringify(back.slice(0, 80))}` };
      return { ms: round(performance.now() - sent) };
    };
    result.echo = await echo();
    if (options.idleMs === undefined || 'error' in result.echo) return result;
    // The welcome says how long the gateway keeps this connection: if that is not the hold
    // asked for (a proxy dropped the query string, or a gateway without `?hold=`), the hold
    // cannot test anything, so it is not waited out (judge() says why).
    if (!holdGranted(result)) return result;

    // The hold: nothing is sent either way, so only a timeout in between can end it.
    const before = wire.received;
    const idleStart = performance.now();
    if (options.progress) options.progress.idleSince = Date.now();
    const close = await wire.close(options.idleMs);
    const idle: IdleHold = {
      requested_ms: options.idleMs,
      idle_ms: round(performance.now() - idleStart, 0),
      close,
      echo_after: null,
      unexpected_messages: wire.received - before,
    };
    if (close === null) {
      idle.idle_ms = options.idleMs;
      wire.drain();
      idle.echo_after = await echo();
      if ('error' in idle.echo_after && wire.closed) idle.close = wire.closed;
    }
    result.idle = idle;
    return result;
  } finally {
    if (options.progress) options.progress.idleSince = null;
    if (wire.closed === null) {
      ws.close(1000, 'check-lb done');
      if ((await wire.close(1000)) === null) ws.terminate();
    }
  }
}

/** Whether the welcome grants the `?hold=` asked for (true when none was asked for). */
export function holdGranted(p: Probe): boolean {
  const asked = p.hold_requested_s ?? null;
  if (asked === null) return true;
  return p.welcome !== null && !('error' in p.welcome) && p.welcome.closes_after === asked;
}

/** The first message of a test connection, read through its schema. */
export function parseWelcome(raw: string): Welcome | { error: string } {
  const w = TestWelcomeReader.safeParse(parseJson(raw));
  return w.success ? w.data : { error: `first message is not a welcome: ${raw.slice(0, 80)}` };
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

/** `/api/v1/ws/health` as a real upgrade: the health message and the server that sent it. */
export async function probeWsHealth(
  base: string,
  timeoutMs: number,
): Promise<{ status: string; server: string } | { error: string }> {
  const url = testEndpointUrl(base);
  if (url === null) return { error: `invalid URL ${base}` };
  url.pathname = '/api/v1/ws/health';
  url.search = '';
  const { handshake, ws, wire } = await open(url.toString(), timeoutMs);
  if (ws === null || wire === null) return { error: handshake.error ?? 'no WebSocket' };
  try {
    const first = await wire.message(timeoutMs);
    if (first === null) return failure('health message', wire);
    const m = HealthMessageSchema.safeParse(parseJson(first));
    if (!m.success) return { error: `not a health message: ${first.slice(0, 80)}` };
    return { status: m.data.status, server: m.data.server };
  } finally {
    if (wire.closed === null) ws.terminate();
  }
}
