/**
 * Client processes of the abuse benchmark (bench/abuse.ts forks them; not run by hand):
 *
 *   abuse-workers.ts --worker legit    legitimate subscribers of `signals` (a share of them)
 *   abuse-workers.ts --worker attack   every attacker connection of the attack phase
 *
 * Both talk to the parent over IPC (workers.ts's forkWorker / workerEntry): `config` (the first
 * message) → `ready`, `start` (the window; legit), `mark-start` / `mark-end` (CPU and event-loop
 * utilization over the window), then `drain` → `result` (legit) or `stop` → `result` (attack),
 * and `exit`. Each exits by itself after `lifetimeMs`, when the parent goes away, and on `exit`.
 * Every connection goes to 127.0.0.1 only, from the loopback source address it is given
 * (`localAddress`), so per-IP limits see distinct clients.
 *
 * Legit client: the main benchmark's subscriber (subscribers.ts's subscriberWorker): WebSocket
 * `archon.v1` → hello (JWT, sub `legit-N`) → welcome → subscribe signals → subscribed; answers
 * every server ping; per-client seq bookkeeping (lost, duplicate, out of order). This worker
 * records latency = receive time − event `ts` for events received in the window. The probe
 * client (first client of the first worker) also sends `{"op":"ping"}` every 500 ms and records
 * the `pong` round trip.
 *
 * Attackers (one loopback address per kind; see abuse.ts for what each kind does): each slot
 * loops connect → misbehave → closed by the server → reconnect, the reconnects of all kinds
 * sharing one token bucket (`reconnectRate` per second). Sockets that never read (replay,
 * nonreader, health) cannot see the server close them, so their TCP state is read from
 * /proc/net/tcp once a second: a socket the server has closed (CLOSE_WAIT, or gone) is then
 * read to the end to learn the close code, and replaced.
 */
import { Buffer } from 'node:buffer';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import process from 'node:process';
import { clearInterval, clearTimeout, setImmediate, setInterval, setTimeout } from 'node:timers';
import WebSocket from 'ws';
import type { SubscribeOp } from '../src/protocol/index.js';
import { SUBPROTOCOL } from '../src/protocol/messages.ts';
import { BenchClient, channel, describeError, signToken, type Channel } from './client.ts';
import {
  HIST_SIZE,
  count,
  histIndex,
  now,
  quantile,
  sleep,
  windowMarks,
  type Counts,
} from './measure.ts';
import { subscriberWorker, type SubscriberConfig } from './subscribers.ts';
import {
  describe,
  fromParent,
  toParent,
  workerEntry,
  type Message,
  type WorkerConfig,
} from './workers.ts';

const CHANNEL = 'signals';

// ---------------------------------------------------------------------------------------------
// Legit worker: subscribers.ts's subscribers, recording latency against the event's `ts`.

export interface LegitConfig extends Omit<SubscriberConfig, 'channel' | 'client'> {
  /** The JWT secret: each client signs its own token (sub legit-N). */
  readonly secret: string;
  readonly pingEveryMs: number;
  /** This worker's first client pings (`probe`). */
  readonly probe: boolean;
}

/** The probe client's pings. */
export interface PingProbe {
  sent: number;
  answered: number;
  late: number;
  rtts: number[];
}

async function legitMain(cfg: LegitConfig): Promise<void> {
  const hist = new Uint32Array(HIST_SIZE);
  // End to end: receive time − the publisher's send time (data.t0): includes the publish
  // request, so it also shows the time a stalled gateway sat on a publish before stamping `ts`.
  const e2eHist = new Uint32Array(HIST_SIZE);
  // Per second since `start`: the worst latency (ts-based and end to end) of any event received.
  const worstTs = new Float64Array(600);
  const worstE2e = new Float64Array(600);
  let base = Infinity;
  let winA = Infinity;
  let winB = -Infinity;
  let latencySum = 0;
  let latencyMax = 0;
  // The probe client (the first client of the probe worker) pings every cfg.pingEveryMs.
  const probe: PingProbe & {
    outstanding: number | null;
    timer: NodeJS.Timeout | undefined;
  } = { sent: 0, answered: 0, late: 0, rtts: [], outstanding: null, timer: undefined };

  const pool = subscriberWorker(
    { ...cfg, channel: CHANNEL, client: 'bench-abuse/1' },
    {
      start(m) {
        base = m.base;
        winA = m.winA;
        winB = m.winB;
        if (cfg.probe) startProbe();
      },
      event(_c, msg, t) {
        const lat = typeof msg.ts === 'number' ? t - msg.ts : null;
        const t0 = (msg.data as { t0?: unknown } | null)?.t0;
        const e2e = typeof t0 === 'number' ? t - t0 : null;
        const sec = Math.floor((t - base) / 1000);
        if (sec >= 0 && sec < worstTs.length) {
          if (lat !== null && lat > (worstTs[sec] ?? 0)) worstTs[sec] = lat;
          if (e2e !== null && e2e > (worstE2e[sec] ?? 0)) worstE2e[sec] = e2e;
        }
        if (t >= winA && t < winB) {
          if (lat !== null) {
            const i = histIndex(lat);
            hist[i] = (hist[i] ?? 0) + 1;
            latencySum += lat;
            if (lat > latencyMax) latencyMax = lat;
          }
          if (e2e !== null) {
            const i = histIndex(e2e);
            e2eHist[i] = (e2eHist[i] ?? 0) + 1;
          }
        }
      },
      pong(_c, t) {
        // Only the probe client pings.
        if (probe.outstanding === null) return;
        const sentAt = probe.outstanding;
        probe.outstanding = null;
        probe.answered++;
        if (sentAt >= winA && sentAt < winB) probe.rtts.push(t - sentAt);
      },
      drain: () => clearInterval(probe.timer),
      result: () => ({
        hist,
        e2eHist,
        worstTs: Array.from(worstTs),
        worstE2e: Array.from(worstE2e),
        latencySum,
        latencyMax,
        probe: cfg.probe
          ? { sent: probe.sent, answered: probe.answered, late: probe.late, rtts: probe.rtts }
          : null,
      }),
    },
  );

  function startProbe(): void {
    const c = pool.clients.find((x) => x.data.id === cfg.idBase);
    if (!c) return;
    probe.timer = setInterval(() => {
      if (c.state !== 'ready' || c.ws?.readyState !== WebSocket.OPEN) return;
      if (probe.outstanding !== null) {
        probe.late++; // the previous ping is still unanswered after pingEveryMs
        return;
      }
      probe.outstanding = now();
      probe.sent++;
      c.send({ op: 'ping' });
    }, cfg.pingEveryMs);
  }

  // One token per user (distinct subs), signed here so the parent stays light.
  const tokens = await Promise.all(
    Array.from({ length: cfg.count }, (_, i) => signToken(cfg.secret, `legit-${cfg.idBase + i}`)),
  );
  await pool.connectAll((i) => tokens[i] ?? '');
}

// ---------------------------------------------------------------------------------------------
// Attack worker

/** /proc/net/tcp form of a local IPv4 address and port ("0102007F:C350" for 127.0.2.1:50000). */
function procKey(ip: string, port: number): string {
  const hex = ip
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join('');
  return `${hex}:${port.toString(16).padStart(4, '0')}`.toUpperCase();
}

/** TCP states (/proc/net/tcp `st`) of this machine's sockets whose remote port is `port`. */
function tcpStates(port: number): Map<string, string> | null {
  const states = new Map<string, string>();
  let text: string;
  try {
    text = readFileSync('/proc/net/tcp', 'latin1');
  } catch {
    return null;
  }
  const want = `:${port.toString(16).padStart(4, '0').toUpperCase()}`;
  let at = text.indexOf('\n') + 1;
  while (at > 0 && at < text.length) {
    const end = text.indexOf('\n', at);
    const line = text.slice(at, end < 0 ? text.length : end);
    at = end < 0 ? -1 : end + 1;
    // "  12: 0100007F:C350 0100007F:1F40 01 …"
    const f = line.trim().split(/\s+/, 4);
    const [, local, remote, state] = f;
    if (f.length < 4 || !remote?.endsWith(want) || !local || !state) continue;
    states.set(local, state);
  }
  return states;
}
const TCP_ESTABLISHED = '01';

/** The close code of the last close frame in server → client bytes, or a description. */
function closeCodeIn(buf: Buffer): string {
  let at = 0;
  let code = 'no close frame';
  while (at + 2 <= buf.length) {
    const opcode = (buf[at] ?? 0) & 0x0f;
    let len = (buf[at + 1] ?? 0) & 0x7f;
    let hdr = 2;
    if (len === 126) {
      if (at + 4 > buf.length) break;
      len = buf.readUInt16BE(at + 2);
      hdr = 4;
    } else if (len === 127) {
      if (at + 10 > buf.length) break;
      len = Number(buf.readBigUInt64BE(at + 2));
      hdr = 10;
    }
    if (opcode === 0x8) {
      code = len >= 2 && at + hdr + 2 <= buf.length ? String(buf.readUInt16BE(at + hdr)) : '1005';
    }
    at += hdr + len;
  }
  return code;
}

// Garbage frames (kind `garbage`), sent in turn, one every 25 ms.
const GARBAGE: { name: string; data: string | Buffer; binary?: boolean }[] = [
  { name: 'invalid JSON', data: '{"op":"subscribe","channel":' },
  { name: 'deep nesting', data: `{"op":${'['.repeat(6000)}${']'.repeat(6000)}}` },
  { name: '60 KB op', data: `{"op":"${'A'.repeat(60_000)}"}` },
  { name: 'binary', data: Buffer.alloc(1024, 0xab), binary: true },
];
// Just over the gateway's default 64 KiB message limit (kind `oversize`).
const OVERSIZE = `{"op":"${'B'.repeat(65_536)}"}`;
const PING = '{"op":"ping"}';

/** An attacker kind's figures. */
interface KindStats {
  slots: number;
  attempts: number;
  opened: number;
  /** HTTP status of a refused upgrade (or request). */
  refused: Counts;
  /** Connection errors before open. */
  errors: Counts;
  closedByServer: number;
  closeCodes: Counts;
  sent: number;
  received: number;
  bytesIn: number;
  /** Handshakes still under way when the attack stopped. */
  connectingAtStop: number;
  /** ms from connect to open (WebSocket kinds), first 100,000. */
  handshakes: number[];
  notes: Counts;
  reconnects?: number;
  latencies?: number[];
  answered200?: number;
}

export type Kind =
  'preauth' | 'garbage' | 'oversize' | 'replay' | 'nonreader' | 'health' | 'flood' | 'history';

export interface AttackConfig extends WorkerConfig {
  readonly port: number;
  readonly secret: string;
  readonly counts: Partial<Record<Kind, number>>;
  readonly ips: Record<Kind, string>;
  readonly reconnectRate: number;
  readonly rampRate: number;
  readonly replaySince: number;
  readonly maxHistoryRequests: number;
}

/** What the authenticated kinds do once welcomed (and subscribed, if they subscribe). */
interface Spread {
  p50: number | null;
  p99: number | null;
  max: number | undefined;
}
/** A kind's figures in the attack worker's `result`. */
export type KindFigures = Omit<KindStats, 'latencies' | 'handshakes'> & {
  handshakeMs?: Spread;
  latencyMs?: Spread;
};

type Behave = (ws: WebSocket, st: KindStats, ctx: Context, subscription?: Channel) => void;
interface Context {
  /** Stops reading (see stopReading). */
  pause(): void;
  /** Runs fn when the connection ends. */
  cleanup(fn: () => void): void;
}

async function attackMain(cfg: AttackConfig): Promise<void> {
  // One user per attacker that authenticates: sub attacker-N (distinct), every account.
  const tokens: Partial<Record<Kind, string[]>> = {};
  let sub = 0;
  for (const kind of ['replay', 'nonreader', 'flood', 'history'] as const) {
    const subs = Array.from({ length: cfg.counts[kind] ?? 0 }, () => `attacker-${sub++}`);
    tokens[kind] = await Promise.all(subs.map((s) => signToken(cfg.secret, s, ['*'])));
  }
  const tokenOf = (kind: Kind, slot: number): string => tokens[kind]?.[slot] ?? '';
  const port = cfg.port;
  const hardEnd = Date.now() + cfg.lifetimeMs - 5000;
  let stopped = false;
  let replaySince = cfg.replaySince; // updated by the parent while the run goes on
  const stats: Partial<Record<Kind, KindStats>> = {};
  const live = new Set<() => void>(); // functions that end one live connection (called on stop)
  // procKey → the watch of a socket that does not read
  const paused = new Map<string, { since: number; onPeerClosed: (state: string) => void }>();
  const timers = new Set<NodeJS.Timeout>();
  const every = (ms: number, fn: () => void): NodeJS.Timeout => {
    const t = setInterval(fn, ms);
    timers.add(t);
    return t;
  };

  // -- reconnect token bucket shared by every kind (FIFO)
  const waiting: ((granted: boolean) => void)[] = [];
  let bucket = 0;
  let lastRefill = now();
  every(10, () => {
    const t = now();
    bucket = Math.min(cfg.reconnectRate, bucket + ((t - lastRefill) / 1000) * cfg.reconnectRate);
    lastRefill = t;
    while (waiting.length && bucket >= 1) {
      bucket -= 1;
      waiting.shift()?.(true);
    }
  });
  const reconnectToken = (): Promise<boolean> =>
    stopped ? Promise.resolve(false) : new Promise((resolve) => waiting.push(resolve));

  // -- sockets that never read: learn from the kernel when the server closed them
  every(1000, () => {
    if (paused.size === 0) return;
    const states = tcpStates(port);
    if (!states) return;
    const t = Date.now();
    for (const [key, p] of paused) {
      if (t - p.since < 1500) continue;
      const st = states.get(key);
      if (st === TCP_ESTABLISHED) continue;
      paused.delete(key);
      p.onPeerClosed(st ?? 'gone');
    }
  });

  /**
   * Stops reading `sock` and watches its TCP state: once the server has closed it, reads what
   * the server left (its close frame, if any, for the close code) and calls `end` if the
   * socket is still open 2 s later; `onPeerClosed(state)` is told first. Returns the function
   * that ends the watch.
   */
  function stopReading(
    sock: net.Socket,
    end: () => void,
    onPeerClosed: (state: string) => void = () => {},
  ): () => void {
    sock.pause();
    const key = procKey(sock.localAddress ?? '', sock.localPort ?? 0);
    paused.set(key, {
      since: Date.now(),
      onPeerClosed: (state) => {
        onPeerClosed(state);
        sock.resume();
        const t = setTimeout(end, 2000);
        sock.once('close', () => clearTimeout(t));
      },
    });
    return () => paused.delete(key);
  }

  function kindStats(kind: Kind): KindStats {
    return (stats[kind] ??= {
      slots: 0,
      attempts: 0,
      opened: 0,
      refused: {},
      errors: {},
      closedByServer: 0,
      closeCodes: {},
      sent: 0,
      received: 0,
      bytesIn: 0,
      connectingAtStop: 0,
      handshakes: [],
      notes: {},
    });
  }

  /**
   * The socket of an attacker that signs in: a bench/client.ts client with its slot's JWT,
   * subscribed to signals when `subscribes`; once welcomed (and subscribed) the client hands
   * the socket over and `behave` runs.
   */
  function signedIn(
    kind: Kind,
    slot: number,
    subscribes: boolean,
    behave: (ws: WebSocket, subscription?: Channel) => void,
  ): WebSocket {
    const st = kindStats(kind);
    const client = new BenchClient(
      {
        token: tokenOf(kind, slot),
        channels: subscribes ? [channel(CHANNEL)] : [],
        client: 'bench-abuse-attacker/1',
        localAddress: cfg.ips[kind],
        handshakeTimeoutMs: 10_000,
        data: undefined,
      },
      {
        open: () => st.sent++, // its hello
        welcome: (c) => (st.sent += c.channels.length), // its subscribe
        ready(c) {
          const ws = c.release();
          if (ws) behave(ws, c.channels[0]);
        },
      },
    );
    client.connect(`ws://127.0.0.1:${port}/api/v1/ws`);
    return client.ws as WebSocket;
  }

  /**
   * One WebSocket connection of an attacker; resolves {opened} when it is over. `behave(ws,
   * st, ctx)` runs on open, or once signed in for the kinds that do (`auth`); ctx.pause()
   * stops reading (see stopReading); ctx.cleanup(fn) runs fn when the connection ends.
   */
  function wsConnection(
    kind: Kind,
    settle: () => void,
    behave: Behave = () => {},
    auth?: { slot: number; subscribes: boolean },
  ): Promise<{ opened: boolean }> {
    const st = kindStats(kind);
    st.attempts++;
    return new Promise((resolve) => {
      let opened = false;
      let byUs = false;
      let unwatch: (() => void) | null = null;
      const cleanups: (() => void)[] = [];
      const t0 = now();
      const ctx: Context = {
        pause() {
          // ws keeps its net.Socket private; a socket that stops reading is paused there.
          const sock = (ws as unknown as { _socket?: net.Socket })._socket;
          if (!sock) return;
          unwatch = stopReading(sock, end, (state) =>
            count(st.notes, `server closed a non-reading socket (tcp ${state})`),
          );
        },
        cleanup(fn) {
          cleanups.push(fn);
        },
      };
      const ws = auth
        ? signedIn(kind, auth.slot, auth.subscribes, (socket, subscription) =>
            behave(socket, st, ctx, subscription),
          )
        : new WebSocket(`ws://127.0.0.1:${port}/api/v1/ws`, SUBPROTOCOL, {
            perMessageDeflate: false,
            skipUTF8Validation: true,
            handshakeTimeout: 10_000,
            localAddress: cfg.ips[kind],
          });
      const end = (): void => {
        if (!opened && !byUs) st.connectingAtStop++;
        byUs = true;
        ws.terminate();
      };
      live.add(end);
      ws.on('open', () => {
        opened = true;
        st.opened++;
        if (st.handshakes.length < 100_000) st.handshakes.push(now() - t0);
        settle();
        if (!auth) behave(ws, st, ctx);
      });
      ws.on('message', (data) => {
        st.received++;
        st.bytesIn += (data as Buffer).length;
      });
      ws.on('error', (err) => {
        if (opened || byUs) return;
        const why = describeError(err);
        if (why.startsWith('HTTP ')) count(st.refused, why.slice(5));
        else count(st.errors, why.slice(0, 60));
      });
      ws.on('close', (code) => {
        settle();
        live.delete(end);
        unwatch?.();
        for (const fn of cleanups) fn();
        if (opened && !byUs) {
          st.closedByServer++;
          count(st.closeCodes, String(code));
        }
        resolve({ opened });
      });
    });
  }

  const sendCounted = (
    ws: WebSocket,
    st: KindStats,
    data: string | Buffer,
    options: { binary?: boolean } = {},
  ): boolean => {
    if (ws.readyState !== WebSocket.OPEN) return false;
    ws.send(data, options);
    st.sent++;
    return true;
  };

  // -- the kinds: each returns one connection's promise
  const KINDS: Record<Kind, (slot: number, settle: () => void) => Promise<unknown>> = {
    // Upgrade, never send hello; the server closes at its auth timeout.
    preauth: (_slot, settle) => wsConnection('preauth', settle),

    // Malformed frames in turn until the server closes the connection.
    garbage: (slot, settle) =>
      wsConnection('garbage', settle, (ws, st, ctx) => {
        let k = slot + st.attempts;
        const sendNext = (): void => {
          const g = GARBAGE[k++ % GARBAGE.length];
          if (g && sendCounted(ws, st, g.data, { binary: g.binary === true }))
            count(st.notes, g.name);
        };
        sendNext();
        const t = setInterval(sendNext, 25);
        ctx.cleanup(() => clearInterval(t));
      }),

    // A frame just over 64 KiB, again every 200 ms while the connection lasts.
    oversize: (_slot, settle) =>
      wsConnection('oversize', settle, (ws, st, ctx) => {
        sendCounted(ws, st, OVERSIZE);
        const t = setInterval(() => sendCounted(ws, st, OVERSIZE), 200);
        ctx.cleanup(() => clearInterval(t));
      }),

    // After the first `subscribed` stops reading and re-subscribes with `since` (the epoch of
    // that answer) 5 times a second.
    replay: (slot, settle) =>
      wsConnection(
        'replay',
        settle,
        (ws, st, ctx, subscription) => {
          ctx.pause();
          let id = 2;
          const t = setInterval(() => {
            const op: SubscribeOp = {
              op: 'subscribe',
              id: id++,
              channel: CHANNEL,
              since: { epoch: subscription?.epoch ?? '', seq: replaySince },
            };
            sendCounted(ws, st, JSON.stringify(op));
          }, 200);
          ctx.cleanup(() => clearInterval(t));
        },
        { slot, subscribes: true },
      ),

    // Subscriber that stops reading right after `subscribed`.
    nonreader: (slot, settle) =>
      wsConnection('nonreader', settle, (_ws, _st, ctx) => ctx.pause(), {
        slot,
        subscribes: true,
      }),

    // Pings as fast as the socket takes them.
    flood: (slot, settle) =>
      wsConnection(
        'flood',
        settle,
        (ws, st, ctx) => {
          const sock = (ws as unknown as { _socket: net.Socket })._socket;
          let over = false;
          ctx.cleanup(() => (over = true));
          const pump = (): void => {
            if (over || stopped || ws.readyState !== WebSocket.OPEN) return;
            for (let n = 0; n < 1000 && !sock.writableNeedDrain; n++) sendCounted(ws, st, PING);
            if (sock.writableNeedDrain) sock.once('drain', pump);
            else setImmediate(pump);
          };
          pump();
        },
        { slot, subscribes: false },
      ),

    // Raw upgrade to /api/v1/ws/health; never reads after the 101 and never answers the close.
    health: (_slot, settle) => healthConnection(settle),

    // GET /api/v1/history?channel=signals&since_seq=0 in a tight loop (one request at a time).
    history: (slot) => historyLoop(slot),
  };

  function healthConnection(settle: () => void): Promise<{ opened: boolean }> {
    const st = kindStats('health');
    st.attempts++;
    return new Promise((resolve) => {
      let opened = false;
      let byUs = false;
      let head: string | null = null; // HTTP status line and headers, once read
      let rest = Buffer.alloc(0); // bytes after the headers (health message, close frame)
      let unwatch: (() => void) | null = null;
      let raw = Buffer.alloc(0);
      const sock = net.connect({ host: '127.0.0.1', port, localAddress: cfg.ips.health });
      const end = (): void => {
        byUs = true;
        sock.destroy();
      };
      live.add(end);
      sock.setTimeout(10_000, () => {
        if (!opened) {
          count(st.errors, 'handshake timeout');
          end();
        }
      });
      sock.on('connect', () => {
        sock.write(
          `GET /api/v1/ws/health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
            `Connection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
            'Sec-WebSocket-Version: 13\r\n\r\n',
        );
      });
      sock.on('data', (d: Buffer) => {
        st.bytesIn += d.length;
        if (head !== null) {
          rest = Buffer.concat([rest, d]);
          return;
        }
        raw = Buffer.concat([raw, d]);
        const i = raw.indexOf('\r\n\r\n');
        if (i < 0) return;
        head = raw.subarray(0, i).toString('latin1');
        rest = raw.subarray(i + 4);
        const status = Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1] ?? 0);
        if (status !== 101) {
          count(st.refused, String(status));
          end();
          return;
        }
        opened = true;
        st.opened++;
        settle();
        sock.setTimeout(0);
        unwatch = stopReading(sock, end);
      });
      sock.on('error', (err: NodeJS.ErrnoException) => {
        if (!opened) count(st.errors, err.code ?? err.message.slice(0, 60));
      });
      sock.on('close', () => {
        settle();
        live.delete(end);
        unwatch?.();
        if (opened && !byUs) {
          st.closedByServer++;
          count(st.closeCodes, closeCodeIn(rest));
        }
        resolve({ opened });
      });
    });
  }

  async function historyLoop(slot: number): Promise<void> {
    const st = kindStats('history');
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const headers = { authorization: `Bearer ${tokenOf('history', slot)}` };
    const url = `http://127.0.0.1:${port}/api/v1/history?channel=${CHANNEL}&since_seq=0`;
    st.latencies ??= [];
    st.answered200 ??= 0;
    // `opened` / `closedByServer` count TCP connections (keep-alive: one unless the server
    // closes it); `sent` counts requests, `refused` their non-200 answers.
    const seen = new WeakSet<net.Socket>();
    const track = (sock: net.Socket): void => {
      if (seen.has(sock)) return;
      seen.add(sock);
      st.opened++;
      sock.once('close', () => {
        if (!stopped) st.closedByServer++;
      });
    };
    for (let n = 0; !stopped && Date.now() < hardEnd && n < cfg.maxHistoryRequests; n++) {
      st.attempts++;
      const t0 = now();
      const r = await new Promise<{ status: number | null; bytes: number; error: string }>(
        (resolve) => {
          const req = http.get(url, { agent, headers, localAddress: cfg.ips.history }, (res) => {
            let bytes = 0;
            res.on('data', (c: Buffer) => (bytes += c.length));
            res.on('end', () => resolve({ status: res.statusCode ?? null, bytes, error: '' }));
            res.on('error', () => resolve({ status: null, bytes: 0, error: 'response error' }));
          });
          req.on('socket', track);
          const end = (): void => {
            req.destroy(new Error('stopped'));
          };
          live.add(end);
          req.once('close', () => live.delete(end));
          req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
          req.on('error', (e: NodeJS.ErrnoException) =>
            resolve({ status: null, bytes: 0, error: e.code ?? e.message }),
          );
        },
      );
      if (r.status === null) {
        if (stopped) break; // our own abort at the end
        count(st.errors, r.error);
        await sleep(100); // refused or reset: do not spin
        continue;
      }
      st.sent++;
      st.received++;
      st.bytesIn += r.bytes;
      if (r.status === 200) st.answered200 = (st.answered200 ?? 0) + 1;
      else count(st.refused, String(r.status));
      if (st.latencies.length < 200_000) st.latencies.push(now() - t0);
    }
    agent.destroy();
  }

  /** One attacker slot: connection after connection until stopped (reconnects rate-bounded). */
  let firstSettled = 0; // slots whose first connection opened or failed
  async function slot(kind: Kind, i: number): Promise<void> {
    const st = kindStats(kind);
    st.slots++;
    if (kind === 'history') {
      firstSettled++;
      await historyLoop(i);
      return;
    }
    for (let attempt = 0; !stopped && Date.now() < hardEnd; attempt++) {
      if (attempt > 0) {
        if (!(await reconnectToken()) || stopped) break;
        st.reconnects = (st.reconnects ?? 0) + 1;
      }
      let settled = attempt > 0;
      const settle = (): void => {
        if (!settled) firstSettled++;
        settled = true;
      };
      const { opened } = (await KINDS[kind](i, settle)) as { opened: boolean };
      if (!opened && !stopped) await sleep(200); // refused: do not hammer
    }
  }

  // -- ramp up: first connections at up to `rampRate` per second, kinds interleaved
  const order: [Kind, number][] = [];
  for (const [kind, n] of Object.entries(cfg.counts) as [Kind, number][]) {
    for (let i = 0; i < n; i++) order.push([kind, i]);
  }
  const share = ([kind, i]: [Kind, number]): number => i / (cfg.counts[kind] ?? 1);
  order.sort((a, b) => share(a) - share(b));
  const loops: Promise<void>[] = [];
  const t0 = now();
  const ramp = (async () => {
    for (let j = 0; j < order.length && !stopped; j++) {
      const [kind, i] = order[j] as [Kind, number];
      loops.push(slot(kind, i));
      const due = t0 + ((j + 1) * 1000) / cfg.rampRate;
      if (due > now()) await sleep(due - now());
    }
  })();
  ramp
    .then(async () => {
      // Ready once every slot's first connection opened or failed (or 10 s passed).
      const deadline = now() + 10_000;
      while (firstSettled < order.length && now() < deadline) await sleep(50);
      const opened = Object.values(stats).reduce((a, s) => a + s.opened, 0);
      toParent({
        type: 'ready',
        seconds: (now() - t0) / 1000,
        opened,
        slots: order.length,
      } as Message);
    })
    .catch((err: unknown) => toParent({ type: 'fatal', error: describe(err) } as Message));

  async function stop(): Promise<Partial<Record<Kind, KindFigures>>> {
    stopped = true;
    for (const w of waiting.splice(0)) w(false);
    for (const end of [...live]) end();
    await Promise.race([Promise.allSettled(loops), sleep(3000)]);
    for (const t of timers) clearInterval(t);
    const out: Partial<Record<Kind, KindFigures>> = {};
    for (const [kind, s] of Object.entries(stats) as [Kind, KindStats][]) {
      const { latencies, handshakes, ...rest } = s;
      const spread = (xs: number[]): Spread => ({
        p50: quantile(xs, 0.5),
        p99: quantile(xs, 0.99),
        max: xs.at(-1),
      });
      const figures: KindFigures = rest;
      if (handshakes.length) figures.handshakeMs = spread(handshakes.sort((a, b) => a - b));
      if (latencies?.length) figures.latencyMs = spread(latencies.sort((a, b) => a - b));
      out[kind] = figures;
    }
    return out;
  }

  const marks = windowMarks();
  fromParent<Message & { since?: number }>((m) => {
    if (m.type === 'since') replaySince = m.since ?? replaySince;
    else if (m.type === 'mark-start') marks.start();
    else if (m.type === 'mark-end') marks.end();
    else if (m.type === 'stop') {
      stop()
        .then((kinds) => toParent({ type: 'result', kinds, window: marks.stats } as Message))
        .catch((err: unknown) => toParent({ type: 'fatal', error: describe(err) } as Message));
    } else if (m.type === 'exit') {
      stopped = true;
      for (const end of [...live]) end();
      setTimeout(() => process.exit(0), 50);
    }
  });
}

// ---------------------------------------------------------------------------------------------
if (process.argv.includes('--worker')) {
  const role = process.argv[process.argv.indexOf('--worker') + 1];
  if (role === 'legit') workerEntry(legitMain);
  else workerEntry(attackMain);
}
