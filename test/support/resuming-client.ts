/**
 * A resuming protocol client for failure tests: what a well-behaved dashboard does
 * (docs/protocol.md, "Client walk-through"), recording everything a loss checker needs.
 *
 * - connects (through nginx), says hello with a JWT, subscribes to its channels, answers
 *   every ping with pong;
 * - remembers {epoch, seq} per channel; on ANY close (1006, 1012, 4008, …) reconnects after
 *   a small random backoff and resubscribes with `since`; on `resync` resubscribes the
 *   listed channels with `since`;
 * - on `recovered:false` records an explicit gap and fills what it can from
 *   GET /api/v1/history, merged by seq;
 * - never drops or reorders silently: every receipt is kept per (channel, epoch, seq), and
 *   duplicates and out-of-order live events are counted, not hidden.
 *
 * Events carry no epoch: an event belongs to the epoch of the subscription it arrived on
 * (the server drops a subscription whose channel changed epoch before delivering anything
 * of the new one).
 */
import WebSocket from 'ws';

export interface Position {
  epoch: string;
  seq: number;
}

/** Events of `epoch` with afterSeq < seq ≤ untilSeq that the client was told are gone. */
export interface Gap {
  readonly channel: string;
  readonly epoch: string;
  readonly afterSeq: number;
  /** Infinity when the whole rest of the epoch was lost (the epoch changed). */
  readonly untilSeq: number;
  readonly why: string;
}

export interface SubscribedAnswer {
  readonly epoch: string;
  readonly seq: number;
  readonly recovered: boolean;
  readonly replayed: number;
  readonly since: Position | null;
  readonly server: string | null;
}

/** Everything one client saw of one channel. */
export class ChannelLog {
  /** Where the first subscription started: the client owes every event after it. */
  start: Position | null = null;
  /** The resume point: the epoch of the current subscription, last seq processed. */
  position: Position | null = null;
  /** epoch → seqs received (live, replayed or filled from history). */
  readonly received = new Map<string, Set<number>>();
  /** epoch → highest seq received live (for out-of-order detection). */
  readonly lastLive = new Map<string, number>();
  dup = 0;
  ooo = 0;
  /** Live events that skipped ahead of the resume point (a gap nobody announced). */
  skips = 0;
  live = 0;
  filled = 0;
  readonly gaps: Gap[] = [];
  readonly answers: SubscribedAnswer[] = [];
  /** Anomalies in the protocol itself (a subscribed answer that does not fit the since). */
  readonly anomalies: string[] = [];

  constructor(readonly channel: string) {}

  has(epoch: string, seq: number): boolean {
    return this.received.get(epoch)?.has(seq) === true;
  }

  /** Records a receipt; false when it is a duplicate. */
  add(epoch: string, seq: number): boolean {
    let set = this.received.get(epoch);
    if (!set) this.received.set(epoch, (set = new Set()));
    if (set.has(seq)) {
      this.dup++;
      return false;
    }
    set.add(seq);
    return true;
  }

  count(): number {
    let n = 0;
    for (const set of this.received.values()) n += set.size;
    return n;
  }
}

export interface ResumingClientOptions {
  /** ws:// base of the first connection (nginx, or an instance). */
  readonly url: string;
  /** ws:// base of every reconnect (default: url). */
  readonly reconnectUrl?: string;
  /** http:// base for GET /api/v1/history (default: reconnectUrl with http). */
  readonly httpUrl?: string;
  readonly token: string;
  readonly channels: readonly string[];
  readonly name?: string;
  /** Reconnect backoff range, ms (default 50–300). */
  readonly backoffMs?: readonly [number, number];
}

type MessageIn = Record<string, unknown> & { type?: string };

/** How a subscription on the current connection stands. */
type SubState = 'pending' | 'live';

export class ResumingClient {
  readonly name: string;
  readonly logs = new Map<string, ChannelLog>();
  /** Close codes, in order. */
  readonly closes: number[] = [];
  /** The `server` of each welcome, in order. */
  readonly servers: string[] = [];
  readonly errors: string[] = [];
  resyncs = 0;
  connects = 0;
  clientId: string | null = null;
  /** Set whenever all channels are live on the current connection. */
  readyAt = 0;
  private ws: WebSocket | null = null;
  private stopped = false;
  private paused = false;
  private nextId = 0;
  private readonly subs = new Map<string, SubState>();
  /** subscribe id → channel and the since it carried. */
  private readonly pending = new Map<number, { channel: string; since: Position | null }>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stale: NodeJS.Timeout | null = null;
  private staleMs = 0;
  private heardAt = 0;
  private fetching = 0;
  private readonly readyWaiters = new Set<() => void>();

  constructor(private readonly options: ResumingClientOptions) {
    this.name = options.name ?? 'client';
    for (const channel of options.channels) this.logs.set(channel, new ChannelLog(channel));
  }

  /** Connects; resolves once every channel is subscribed for the first time. */
  async start(timeoutMs = 10_000): Promise<void> {
    this.connect(this.options.url);
    await this.whenReady(timeoutMs);
  }

  /** Resolves once every channel is live on the current connection. */
  whenReady(timeoutMs = 10_000): Promise<void> {
    if (this.ready()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.readyWaiters.delete(wake);
        reject(new Error(`${this.name} not subscribed within ${timeoutMs} ms: ${this.describe()}`));
      }, timeoutMs);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      this.readyWaiters.add(wake);
    });
  }

  /** Connected, authenticated and every channel live. */
  ready(): boolean {
    return (
      this.ws?.readyState === WebSocket.OPEN &&
      this.subs.size === this.options.channels.length &&
      [...this.subs.values()].every((s) => s === 'live')
    );
  }

  /** No history request in flight. */
  idle(): boolean {
    return this.fetching === 0;
  }

  /** The server of the current connection (the last welcome). */
  get server(): string | null {
    return this.servers.at(-1) ?? null;
  }

  log(channel: string): ChannelLog {
    const log = this.logs.get(channel);
    if (!log) throw new Error(`${this.name} does not subscribe ${channel}`);
    return log;
  }

  /** Stops reading the socket (a frozen dashboard); the server's queue for it fills up. */
  pause(): void {
    this.paused = true;
    this.clearStale();
    this.ws?.pause();
  }

  resume(): void {
    this.paused = false;
    this.ws?.resume();
    this.armStale();
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.clearStale();
    this.ws?.terminate();
    this.ws = null;
  }

  describe(): string {
    const channels = [...this.logs.values()].map(
      (l) => `${l.channel}@${l.position?.epoch ?? '-'}:${l.position?.seq ?? '-'}`,
    );
    return `${this.name} server=${this.server ?? '-'} state=${this.ws?.readyState ?? 'none'} subs=${JSON.stringify([...this.subs])} closes=${this.closes.join(',')} ${channels.join(' ')} errors=${this.errors.slice(-3).join('; ')}`;
  }

  // --- connection ---------------------------------------------------------------------------

  private connect(base: string): void {
    if (this.stopped) return;
    this.connects++;
    this.subs.clear();
    this.pending.clear();
    const ws = new WebSocket(`${base}/api/v1/ws`, ['archon.v1'], { perMessageDeflate: false });
    this.ws = ws;
    if (this.paused) ws.pause();
    ws.on('error', (err) => this.errors.push(`socket: ${err.message}`));
    ws.on('open', () => {
      this.send(ws, { op: 'hello', token: this.options.token, client: `resuming/${this.name}` });
      // Pipelined: the server handles ops in order.
      for (const channel of this.options.channels) this.subscribe(ws, channel);
    });
    ws.on('message', (data: Buffer) => {
      if (this.ws !== ws) return;
      this.armStale();
      this.onMessage(ws, JSON.parse(data.toString('utf8')) as MessageIn);
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.closes.push(code);
      this.clearStale();
      this.ws = null;
      this.subs.clear();
      this.pending.clear();
      this.reconnectLater();
    });
  }

  private reconnectLater(): void {
    if (this.stopped) return;
    const [min, max] = this.options.backoffMs ?? [50, 300];
    this.later(min + Math.random() * (max - min), () =>
      this.connect(this.options.reconnectUrl ?? this.options.url),
    );
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private send(ws: WebSocket, message: unknown): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
  }

  /** Stale detection: nothing heard for ping_interval + ping_timeout → the link is dead.
   * One timer per connection, re-armed lazily (not one per message). */
  private armStale(): void {
    this.heardAt = Date.now();
    if (this.staleMs === 0 || this.paused || this.stale) return;
    const ws = this.ws;
    const check = () => {
      const quiet = Date.now() - this.heardAt;
      if (quiet < this.staleMs) {
        this.stale = setTimeout(check, this.staleMs - quiet);
        return;
      }
      this.stale = null;
      this.errors.push('stale: nothing received, reconnecting');
      ws?.terminate();
    };
    this.stale = setTimeout(check, this.staleMs);
  }

  private clearStale(): void {
    if (this.stale) clearTimeout(this.stale);
    this.stale = null;
  }

  private subscribe(ws: WebSocket, channel: string): void {
    const id = ++this.nextId;
    const position = this.log(channel).position;
    const since = position ? { epoch: position.epoch, seq: position.seq } : null;
    this.subs.set(channel, 'pending');
    this.pending.set(id, { channel, since });
    this.send(ws, { op: 'subscribe', id, channel, ...(since && { since }) });
  }

  // --- messages -----------------------------------------------------------------------------

  private onMessage(ws: WebSocket, msg: MessageIn): void {
    switch (msg.type) {
      case 'welcome':
        this.servers.push(String(msg.server));
        this.clientId = String(msg.client_id);
        this.staleMs = (Number(msg.ping_interval) + Number(msg.ping_timeout)) * 1000 + 1000;
        this.armStale();
        return;
      case 'ping':
        this.send(ws, { op: 'pong' });
        return;
      case 'subscribed':
        this.onSubscribed(msg);
        return;
      case 'event':
        this.onEvent(msg);
        return;
      case 'resync': {
        this.resyncs++;
        for (const channel of msg.channels as string[]) {
          if (this.logs.has(channel)) this.subscribe(ws, channel);
        }
        return;
      }
      case 'error': {
        this.errors.push(`${String(msg.code)}: ${String(msg.message)}`);
        const req = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
        if (req) {
          // A subscribe that failed (backplane down): try again on this connection.
          this.pending.delete(msg.id as number);
          this.later(100 + Math.random() * 200, () => {
            if (this.ws === ws) this.subscribe(ws, req.channel);
          });
        }
        return;
      }
      default:
        return;
    }
  }

  private onSubscribed(msg: MessageIn): void {
    const id = msg.id as number;
    const req = this.pending.get(id);
    if (!req) return;
    this.pending.delete(id);
    const log = this.log(req.channel);
    const epoch = String(msg.epoch);
    const seq = Number(msg.seq);
    const recovered = msg.recovered === true;
    const replayed = Number(msg.replayed);
    log.answers.push({ epoch, seq, recovered, replayed, since: req.since, server: this.server });
    if (!log.start) {
      log.start = { epoch, seq };
      log.position = { epoch, seq };
    } else if (recovered) {
      const since = req.since;
      if (since && (since.epoch !== epoch || seq - replayed !== since.seq))
        log.anomalies.push(
          `recovered:true for since ${since.epoch}:${since.seq} answered ${epoch}:${seq} replayed ${replayed}`,
        );
      log.position = { epoch, seq: seq - replayed };
    } else {
      // recovered:false: nothing is replayed. Record the gap, then fill it from history.
      const since = req.since ?? log.position;
      log.position = { epoch, seq };
      if (since) this.fill(log, since, { epoch, seq });
    }
    this.subs.set(req.channel, 'live');
    if (this.ready()) {
      this.readyAt = Date.now();
      for (const wake of [...this.readyWaiters]) {
        this.readyWaiters.delete(wake);
        wake();
      }
    }
  }

  private onEvent(msg: MessageIn): void {
    const channel = String(msg.channel);
    const log = this.logs.get(channel);
    if (!log) return;
    if (this.subs.get(channel) !== 'live' || !log.position) {
      log.anomalies.push(`event ${String(msg.seq)} on ${channel} without a live subscription`);
      return;
    }
    const seq = Number(msg.seq);
    const epoch = log.position.epoch;
    log.live++;
    const last = log.lastLive.get(epoch) ?? 0;
    if (!log.add(epoch, seq)) return;
    if (seq < last) log.ooo++;
    else log.lastLive.set(epoch, seq);
    if (seq > log.position.seq + 1) log.skips++;
    if (seq > log.position.seq) log.position.seq = seq;
  }

  /**
   * GET /api/v1/history for a resume that answered recovered:false: keeps the events the
   * subscription will not deliver (seq ≤ the subscribed seq of its epoch), merges them by
   * seq, and records as a gap what history no longer holds.
   */
  private fill(log: ChannelLog, since: Position, subscribed: Position): void {
    const base =
      this.options.httpUrl ??
      (this.options.reconnectUrl ?? this.options.url).replace(/^ws/, 'http');
    const url =
      `${base}/api/v1/history?channel=${encodeURIComponent(log.channel)}` +
      `&since_seq=${since.seq}&epoch=${encodeURIComponent(since.epoch)}`;
    this.fetching++;
    const attempt = async (n: number): Promise<void> => {
      try {
        const res = await fetch(url, {
          headers: { authorization: `Bearer ${this.options.token}` },
          signal: AbortSignal.timeout(5000),
        });
        if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
        const answer = (await res.json()) as {
          epoch: string;
          seq: number;
          first_seq: number;
          complete: boolean;
          epoch_changed: boolean;
          events: { seq: number }[];
        };
        if (answer.epoch === subscribed.epoch) {
          for (const event of answer.events) {
            if (event.seq > subscribed.seq) continue; // arrives live
            if (since.epoch === subscribed.epoch && event.seq <= since.seq) continue;
            if (log.add(subscribed.epoch, event.seq)) log.filled++;
          }
        } else {
          // Yet another epoch since the subscribe: what the subscription skipped is gone.
          log.gaps.push({
            channel: log.channel,
            epoch: subscribed.epoch,
            afterSeq: 0,
            untilSeq: subscribed.seq,
            why: 'epoch changed again before the history read',
          });
        }
        if (!answer.complete) {
          log.gaps.push(
            answer.epoch_changed || since.epoch !== answer.epoch
              ? {
                  channel: log.channel,
                  epoch: since.epoch,
                  afterSeq: since.seq,
                  untilSeq: Infinity,
                  why: `epoch changed ${since.epoch} → ${answer.epoch}`,
                }
              : {
                  channel: log.channel,
                  epoch: since.epoch,
                  afterSeq: since.seq,
                  untilSeq: Math.min(answer.first_seq - 1, subscribed.seq),
                  why: `history starts at ${answer.first_seq}`,
                },
          );
        }
        this.fetching--;
      } catch (err) {
        if (this.stopped || n >= 50) {
          log.anomalies.push(`history fill failed: ${String(err)}`);
          this.fetching--;
          return;
        }
        this.later(100 + Math.random() * 200, () => void attempt(n + 1));
      }
    };
    void attempt(1);
  }
}
