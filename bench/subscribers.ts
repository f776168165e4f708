/**
 * The subscribers of one worker process: the load generator's clients (bench/loadgen.ts) and
 * the legitimate clients of the abuse benchmark (bench/abuse-workers.ts). Each is a
 * bench/client.ts client on one channel; here is the exact bookkeeping a load needs on top:
 * per client, which seqs arrived (a bit each), so that after the drain every acknowledged
 * publish is known to be received once, late or in order.
 */
import process from 'node:process';
import { setTimeout } from 'node:timers';
import type { EventMessage } from '../src/protocol/index.js';
import { BenchClient, channel, type Handlers } from './client.ts';
import { count, now, sleep, windowMarks, type Counts, type WindowStats } from './measure.ts';
import {
  describe,
  fromParent,
  toParent,
  type Drain,
  type Message,
  type Start,
  type WorkerConfig,
} from './workers.ts';

export interface SubscriberConfig extends WorkerConfig {
  /** The clients' endpoint. */
  readonly url: string;
  /** `socketio`: the clients speak through Socket.IO (bench/dialect.ts). */
  readonly target?: string;
  readonly channel: string;
  /** hello's `client`. */
  readonly client: string;
  readonly count: number;
  readonly idBase: number;
  readonly batch: number;
  readonly connectTimeoutMs: number;
  readonly expectedEvents: number;
  /** Source addresses: client id → ips[id % ips.length]. */
  readonly ips?: readonly string[];
}

/** What a subscriber has received: a bit per seq after the one it subscribed at. */
export interface Receipts {
  readonly id: number;
  seq0: number;
  maxSeq: number;
  unique: number;
  dup: number;
  ooo: number;
  unexpected: number;
  bits: Uint8Array;
}
export type Subscriber = BenchClient<Receipts>;

export interface Integrity {
  expected: number;
  unique: number;
  lost: number;
  dup: number;
  ooo: number;
  unexpected: number;
  clientsWithLoss: number;
  closedDuringRun: number;
  drainSeconds: number;
}

/** The `result` of a subscriber worker: these figures and the tool's own (`on.result()`). */
export interface SubscriberResult extends Message {
  readonly type: 'result';
  readonly integrity: Integrity;
  readonly parseErrors: number;
  readonly pongs: number;
  readonly closeCodes: Counts;
  readonly serverErrors: Counts;
  readonly window: WindowStats | null;
}

/** What a tool does with the subscribers' events and the parent's messages. */
export interface SubscriberHooks<R> {
  /** An event a subscribed client receives for the first time (at: receive time). */
  event(c: Subscriber, message: EventMessage, at: number): void;
  pong?(c: Subscriber, at: number): void;
  /** `start`: the timeline. */
  start(m: Start): void;
  /** `drain` begins. */
  drain?(): void;
  /** Fields added to the `result`. */
  result(): R;
}

/** Seq bookkeeping of an event; true when the client receives it for the first time. */
function firstReceipt(r: Receipts, seq: number): boolean {
  const idx = seq - r.seq0 - 1;
  if (!(idx >= 0 && idx < 10_000_000)) {
    r.unexpected++;
    return false;
  }
  if (idx >= r.bits.length) {
    const bigger = new Uint8Array(Math.max(idx + 1, r.bits.length * 2));
    bigger.set(r.bits);
    r.bits = bigger;
  }
  if (r.bits[idx]) {
    r.dup++;
    return false;
  }
  r.bits[idx] = 1;
  r.unique++;
  if (seq < r.maxSeq) r.ooo++;
  else r.maxSeq = seq;
  return true;
}

/**
 * The subscribers of this worker: each connects, signs in, subscribes to cfg.channel, answers
 * pings and keeps its Receipts. Messages from the parent: `start`, `mark-start` / `mark-end`
 * (this process's CPU and event-loop utilization over the window), `drain` → `result`, `exit`.
 * connectAll connects the clients (`tokenFor(i)`: the JWT of the i-th, `batch` handshakes in
 * flight) and reports `ready`.
 */
export function subscriberWorker<R extends object>(
  cfg: SubscriberConfig,
  on: SubscriberHooks<R>,
): { clients: Subscriber[]; connectAll(tokenFor: (i: number) => string): Promise<void> } {
  const clients: Subscriber[] = [];
  const marks = windowMarks();
  let parseErrors = 0;
  let pongs = 0; // server pings answered
  let closedDuringRun = 0;
  const closeCodes: Counts = {}; // of the connections the server closed during the run
  const serverErrors: Counts = {};
  const connectErrors: Counts = {};

  const handlers: Handlers<Receipts> = {
    event(c, _ch, seq, message, at) {
      if (c.state === 'ready' && message && firstReceipt(c.data, seq)) on.event(c, message, at);
    },
    ready(c) {
      c.data.seq0 = c.channels[0]?.seq ?? 0;
      c.data.maxSeq = c.data.seq0;
    },
    ping: () => pongs++,
    pong: (c, at) => on.pong?.(c, at),
    parseError: () => parseErrors++,
    serverError: (_c, m) => count(serverErrors, String(m.code)),
    close(_c, code, was) {
      if (was !== 'ready') return;
      closedDuringRun++;
      count(closeCodes, String(code));
    },
  };

  async function connectOne(i: number, token: string): Promise<Subscriber | null> {
    const id = cfg.idBase + i;
    const c = new BenchClient<Receipts>(
      {
        token,
        channels: [channel(cfg.channel)],
        target: cfg.target,
        client: cfg.client,
        localAddress: cfg.ips?.[id % cfg.ips.length],
        handshakeTimeoutMs: cfg.connectTimeoutMs,
        data: {
          id,
          seq0: 0,
          maxSeq: 0,
          unique: 0,
          dup: 0,
          ooo: 0,
          unexpected: 0,
          bits: new Uint8Array(cfg.expectedEvents + 16),
        },
      },
      handlers,
    );
    try {
      await c.open(cfg.url, cfg.connectTimeoutMs);
      return c;
    } catch (err) {
      count(connectErrors, (err as Error).message);
      return null;
    }
  }

  async function connectAll(tokenFor: (i: number) => string): Promise<void> {
    let next = 0;
    let failed = 0;
    let lastProgress = 0;
    const lane = async (): Promise<void> => {
      // Fail fast when nothing connects (server broken): stop after the first failed lanes.
      while (next < cfg.count && !(clients.length === 0 && failed >= Math.min(cfg.batch, 20))) {
        const i = next++;
        const c = await connectOne(i, tokenFor(i));
        if (c) clients.push(c);
        else failed++;
        if (now() - lastProgress > 1000) {
          lastProgress = now();
          toParent({ type: 'progress', connected: clients.length, failed } as Message);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(cfg.batch, cfg.count) }, lane));
    toParent({
      type: 'ready',
      connected: clients.length,
      failed,
      errors: connectErrors,
    } as Message);
  }

  async function drain(acked: readonly number[], timeoutMs: number): Promise<Integrity> {
    const t0 = now();
    // A client is done when it holds as many events as were acknowledged after its subscribe.
    const expected = clients.map(({ data: r }) => {
      let n = 0;
      for (const s of acked) if (s > r.seq0) n++;
      return n;
    });
    for (;;) {
      let pending = 0;
      clients.forEach((c, i) => {
        if (c.state === 'ready' && c.data.unique < (expected[i] ?? 0)) pending++;
      });
      if (pending === 0 || now() - t0 > timeoutMs) break;
      await sleep(50);
    }
    const out: Integrity = {
      expected: 0,
      unique: 0,
      lost: 0,
      dup: 0,
      ooo: 0,
      unexpected: 0,
      clientsWithLoss: 0,
      closedDuringRun,
      drainSeconds: (now() - t0) / 1000,
    };
    for (const { data: r } of clients) {
      let missing = 0;
      let got = 0;
      for (const s of acked) {
        if (s <= r.seq0) continue;
        out.expected++;
        const idx = s - r.seq0 - 1;
        if (idx < r.bits.length && r.bits[idx]) got++;
        else missing++;
      }
      out.lost += missing;
      if (missing > 0) out.clientsWithLoss++;
      out.dup += r.dup;
      out.ooo += r.ooo;
      out.unique += r.unique;
      out.unexpected += r.unexpected + (r.unique - got);
    }
    return out;
  }

  fromParent<Message>((m) => {
    if (m.type === 'start') on.start(m as Start);
    else if (m.type === 'mark-start') marks.start();
    else if (m.type === 'mark-end') marks.end();
    else if (m.type === 'drain') {
      const d = m as Drain;
      on.drain?.();
      drain(d.acked, d.timeoutMs)
        .then((integrity) =>
          toParent({
            type: 'result',
            integrity,
            parseErrors,
            pongs,
            closeCodes,
            serverErrors,
            window: marks.stats,
            ...on.result(),
          }),
        )
        .catch((err: unknown) => toParent({ type: 'fatal', error: describe(err) } as Message));
    } else if (m.type === 'exit') {
      for (const c of clients) c.terminate();
      setTimeout(() => process.exit(0), 50);
    }
  });
  return { clients, connectAll };
}
