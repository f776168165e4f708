/**
 * The benchmarks' one protocol client: an archon.v1 connection (docs/protocol.md) as the
 * load generator, idle-memory, storm, soak and abuse drive it. It opens the WebSocket
 * (subprotocol archon.v1, or Socket.IO packets for the `socketio` target, bench/dialect.ts),
 * sends hello, subscribes to its channels once welcomed (with `since` {epoch, seq} when it
 * resumes), answers the server's pings, and keeps each channel's epoch and last seq, counting
 * gaps, repeats and resumes the gateway could not recover.
 *
 * Loadgen workers hold thousands of these, so a client is one object and the handlers are
 * one object per worker, called with the client; a message costs its decoding and JSON.parse
 * and nothing else. `seqOnly` skips even that for events: their seq is read from the text
 * (the gateway writes `type` first and `seq` third), for a client that only counts them.
 */
import { SignJWT } from 'jose';
import { clearTimeout, setTimeout } from 'node:timers';
import { TextEncoder } from 'node:util';
import WebSocket from 'ws';
import type {
  ClientOp,
  ErrorMessage,
  EventMessage,
  ServerMessage,
  SnapshotMessage,
  SubscribeOp,
} from '../src/protocol/index.js';
import { dialect, type Dialect } from './dialect.ts';
import { now } from './measure.ts';

/** Where a connection is: `ready` once every channel has its `subscribed` answer. */
export type ClientState = 'closed' | 'connecting' | 'signing-in' | 'subscribing' | 'ready';

/** A channel the client subscribes to, and what it has seen of it. */
export interface Channel {
  readonly name: string;
  /**
   * Resumed with `since` after a reconnect and checked for gaps (a stream, alerts); false for
   * a state channel, whose snapshot replaces what was missed.
   */
  readonly resume: boolean;
  /** The epoch of the last `subscribed` answer; null before the first. */
  epoch: string | null;
  /** The highest seq received (or the `subscribed` answer's). */
  seq: number;
  /** Events never received: gaps in seq, and what a resume could not recover. */
  lost: number;
  /** Events received again (seq not above the last). */
  dup: number;
  /** Resumes answered `recovered: false`. */
  notRecovered: number;
}

export function channel(name: string, resume = true): Channel {
  return { name, resume, epoch: null, seq: 0, lost: 0, dup: 0, notRecovered: 0 };
}

/** What a tool does with its clients' traffic: one object for all of a worker's clients. */
export interface Handlers<D> {
  open?(client: BenchClient<D>, at: number): void;
  welcome?(client: BenchClient<D>, at: number): void;
  /** Every channel is subscribed (a client of no channel: it is welcomed). */
  ready?(client: BenchClient<D>, at: number): void;
  /** An event (`message` is null with `seqOnly`); the channel's figures are already updated. */
  event?(
    client: BenchClient<D>,
    channel: Channel,
    seq: number,
    message: EventMessage | null,
    at: number,
  ): void;
  snapshot?(client: BenchClient<D>, channel: Channel, message: SnapshotMessage): void;
  /** A server ping, answered. */
  ping?(client: BenchClient<D>): void;
  pong?(client: BenchClient<D>, at: number): void;
  serverError?(client: BenchClient<D>, message: ErrorMessage): void;
  /** A frame that is not JSON. */
  parseError?(client: BenchClient<D>): void;
  /** The connection failed (`HTTP 503`, `ECONNREFUSED`…); with open(), its promise says it. */
  error?(client: BenchClient<D>, why: string): void;
  /** The server (or the network) closed the connection; `was`: its state until then. */
  close?(client: BenchClient<D>, code: number, was: ClientState): void;
}

export interface ClientOptions<D> {
  readonly token: string;
  readonly channels: readonly Channel[];
  /** The tool's own figures of this client. */
  readonly data: D;
  /** The benchmark target: `socketio` speaks through Socket.IO packets. */
  readonly target?: string;
  /** The `client` of hello. */
  readonly client?: string;
  /** The source address (a loopback address of its own, for per-IP limits). */
  readonly localAddress?: string;
  readonly handshakeTimeoutMs?: number;
  /** Events are counted by seq without parsing them (one channel, archon.v1 only). */
  readonly seqOnly?: boolean;
  /** Ask for state updates as deltas in hello (docs/protocol.md#deltas). */
  readonly deltas?: boolean;
  /** Offer permessage-deflate (the gateway does not negotiate it; a reference server may). */
  readonly perMessageDeflate?: boolean;
}

const EVENT_PREFIX = '{"type":"event",';
const SEQ_FIELD = '"seq":';

export class BenchClient<D = undefined> {
  state: ClientState = 'closed';
  /** The current connection; null when closed (or released). */
  ws: WebSocket | null = null;
  token: string;
  readonly channels: readonly Channel[];
  readonly data: D;
  private readonly on: Handlers<D>;
  private readonly dialect: Dialect;
  private readonly options: ClientOptions<D>;
  /** Channels still waiting for their `subscribed` answer. */
  private pending = 0;
  /** open()'s promise, while it waits. */
  private settling: ((why: string | null) => void) | null = null;
  /** The TCP socket under the current connection (from the upgrade answer). */
  private socket: { readonly bytesRead: number } | null = null;

  constructor(options: ClientOptions<D>, handlers: Handlers<D>) {
    if (options.seqOnly && (options.channels.length !== 1 || options.target === 'socketio'))
      throw new Error('seqOnly: one channel, archon.v1');
    this.options = options;
    this.token = options.token;
    this.channels = options.channels;
    this.data = options.data;
    this.on = handlers;
    this.dialect = dialect(options.target);
  }

  /** Connects, signs in and subscribes; what happens next goes to the handlers. */
  connect(url: string): void {
    const ws = new WebSocket(url, [...this.dialect.protocols], {
      perMessageDeflate: this.options.perMessageDeflate ?? false,
      skipUTF8Validation: true,
      handshakeTimeout: this.options.handshakeTimeoutMs,
      localAddress: this.options.localAddress,
    });
    this.ws = ws;
    this.state = 'connecting';
    const hello = (): void => {
      if (this.ws !== ws) return;
      this.state = 'signing-in';
      this.send({
        op: 'hello',
        token: this.token,
        client: this.options.client,
        ...(this.options.deltas && { deltas: true }),
      });
    };
    ws.on('upgrade', (res) => {
      this.socket = res.socket;
    });
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.on.open?.(this, now());
      this.dialect.opened(ws, hello);
    });
    ws.on('message', (raw) => {
      // A text frame, as one Buffer (binaryType nodebuffer).
      if (this.ws === ws) this.receive(ws, raw as Buffer, hello);
    });
    ws.on('error', (err) => {
      if (this.ws !== ws) return;
      const why = describeError(err);
      if (this.settling) this.settle(why);
      else this.on.error?.(this, why);
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      const was = this.state;
      this.ws = null;
      this.state = 'closed';
      if (this.settling) this.settle(`closed ${code} during handshake`);
      else this.on.close?.(this, code, was);
    });
  }

  /**
   * connect(), as a promise: resolves once every channel is subscribed, rejects with why not
   * (the connection is then terminated): `HTTP 503`, `closed 1013 during handshake`,
   * `server error <code>`, `handshake timeout`…
   */
  open(url: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.settle('handshake timeout'), timeoutMs);
      this.settling = (why) => {
        clearTimeout(timer);
        if (why === null) resolve();
        else {
          this.terminate();
          reject(new Error(why));
        }
      };
      this.connect(url);
    });
  }

  /** Bytes received on the current connection's socket: frames as they were on the wire
   * (compressed ones compressed), headers included. */
  get bytesRead(): number {
    return this.socket?.bytesRead ?? 0;
  }

  send(op: ClientOp): void {
    this.ws?.send(this.dialect.encode(op));
  }

  /** Closes the connection; its close is not reported. */
  close(code?: number, reason?: string): void {
    const ws = this.release();
    ws?.close(code, reason);
  }

  /** Drops the connection at once; its close is not reported. */
  terminate(): void {
    this.release()?.terminate();
  }

  /** Hands the connection over: the client no longer reads it nor reports what it does. */
  release(): WebSocket | null {
    const ws = this.ws;
    this.ws = null;
    this.state = 'closed';
    return ws;
  }

  private settle(why: string | null): void {
    const settling = this.settling;
    this.settling = null;
    settling?.(why);
  }

  private receive(ws: WebSocket, raw: Buffer, hello: () => void): void {
    const at = now();
    // Frames are ASCII JSON: latin1 decoding is cheaper than UTF-8 and gives the same text.
    const text = raw.toString('latin1');
    if (this.options.seqOnly && text.startsWith(EVENT_PREFIX)) {
      const i = text.indexOf(SEQ_FIELD) + SEQ_FIELD.length;
      this.event(this.channels[0] as Channel, Number.parseInt(text.slice(i, i + 20), 10), null, at);
      return;
    }
    let m: ServerMessage | null;
    try {
      m = this.dialect.read(ws, text, hello);
    } catch {
      this.on.parseError?.(this);
      return;
    }
    if (m === null) return;
    switch (m.type) {
      case 'event': {
        const ch = this.channel(m.channel);
        if (ch) this.event(ch, m.seq, m, at);
        break;
      }
      case 'expired': {
        // Events that expired before reaching this client (docs/protocol.md#expired): the seq
        // moves on, nothing was lost.
        const ch = this.channel(m.channel);
        if (ch && m.seq > ch.seq) {
          if (ch.resume && m.from_seq > ch.seq + 1) ch.lost += m.from_seq - ch.seq - 1;
          ch.seq = m.seq;
        }
        break;
      }
      case 'ping':
        ws.send(this.dialect.encode(PONG));
        this.on.ping?.(this);
        break;
      case 'pong':
        this.on.pong?.(this, at);
        break;
      case 'snapshot': {
        const ch = this.channel(m.channel);
        if (ch) this.on.snapshot?.(this, ch, m);
        break;
      }
      case 'welcome':
        if (this.state !== 'signing-in') break;
        this.state = 'subscribing';
        this.pending = this.channels.length;
        this.on.welcome?.(this, at);
        this.channels.forEach((ch, i) => this.send(subscribeOp(ch, i + 1)));
        if (this.pending === 0) this.isReady(at); // a client of no channel
        break;
      case 'subscribed': {
        const ch = this.channel(m.channel);
        if (this.state !== 'subscribing' || !ch) break;
        if (ch.resume && ch.epoch !== null && !m.recovered) {
          ch.notRecovered++;
          if (m.epoch === ch.epoch) ch.lost += Math.max(0, m.seq - ch.seq);
        }
        if (!ch.resume || ch.epoch === null || !m.recovered) ch.seq = m.seq;
        ch.epoch = m.epoch;
        if (--this.pending === 0) this.isReady(at);
        break;
      }
      case 'error':
        this.on.serverError?.(this, m);
        if (this.state !== 'ready') this.settle(`server error ${m.code}`);
        break;
      default:
        break;
    }
  }

  private isReady(at: number): void {
    this.state = 'ready';
    this.settle(null);
    this.on.ready?.(this, at);
  }

  private event(ch: Channel, seq: number, message: EventMessage | null, at: number): void {
    if (!ch.resume || seq === ch.seq + 1) ch.seq = seq;
    else if (seq <= ch.seq) ch.dup++;
    else {
      ch.lost += seq - ch.seq - 1;
      ch.seq = seq;
    }
    this.on.event?.(this, ch, seq, message, at);
  }

  private channel(name: string): Channel | undefined {
    for (let i = 0; i < this.channels.length; i++) {
      const ch = this.channels[i] as Channel;
      if (ch.name === name) return ch;
    }
    return undefined;
  }
}

const PONG: ClientOp = { op: 'pong' };

/** The subscribe op of a channel: with `since` when it resumes a known epoch. */
function subscribeOp(ch: Channel, id: number): SubscribeOp {
  return {
    op: 'subscribe',
    id,
    channel: ch.name,
    since: ch.resume && ch.epoch !== null ? { epoch: ch.epoch, seq: ch.seq } : undefined,
  };
}

/** A connection error as the figures count it: `HTTP <status>` for a refused upgrade. */
export function describeError(err: Error): string {
  const status = /Unexpected server response: (\d+)/.exec(err.message);
  return status ? `HTTP ${status[1]}` : ((err as NodeJS.ErrnoException).code ?? err.message);
}

/** HS256 JWT {sub, accounts} for the gateway's hello, valid `lifetime` (1 h). */
export function signToken(
  secret: string,
  sub = 'bench-0',
  accounts: readonly string[] = [],
  lifetime = '1h',
): Promise<string> {
  return new SignJWT({ accounts })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(lifetime)
    .sign(new TextEncoder().encode(secret));
}
