/**
 * One client session, over a WebSocket or an HTTP stream (transport.ts): its named state (authenticating → open → closing →
 * closed), hello, the ops, and the one reject and close path. The parts it glues live
 * beside it: reading (receiver.ts), writing (outbound.ts), liveness (liveness.ts) and
 * subscriptions (subscriptions.ts); the transport handles its own handshake, framing and
 * closes. About 690 lines: the state machine, hello and a stream's sign-in, refresh (both verify a token
 * and set the session's principal, which liveness and subscriptions read), ack (checked
 * against that principal) and the close paths change state together, so they stay in one
 * place; what can stand alone already does (the alert book lives in the backplane).
 */
import { randomBytes } from 'node:crypto';
import {
  ArchonError,
  CloseCode,
  ERRORS,
  parseChannel,
  PROTOCOL_VERSION,
  type AckOp,
  type ClientOp,
  type ConnectionEntry,
  type ErrorCode,
  type ServerMessage,
  type SubscribeOp,
  type Transport,
} from '../protocol/index.js';
import type { Admission } from './admission.js';
import { mayJoin, type Authenticator, type Principal } from './auth.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import { Frame, type Lane } from './frame.js';
import type { Hub, Subscriber } from './hub.js';
import { quote, truncateUtf8 } from './text.js';
import type { LogLimiter, Logger } from './logging.js';
import type { Metrics } from './metrics.js';
import { deadReason, sweepAction, type ConnectionState, type LivenessView } from './liveness.js';
import { Outbound } from './outbound.js';
import type { OutboundQueue } from './queue.js';
import { ConnectionSubscriptions } from './subscriptions.js';
import { laneFor, Receiver, type InboundOp, type ReceiverHost } from './receiver.js';
import type { KeyedBuckets } from './token-bucket.js';
import type { ClientTransport } from './transport.js';

export type { ConnectionState };

/** A peer that does not finish the close handshake is cut after this long. */
const CLOSE_GRACE_MS = 3000;
/** Closes for abuse (rate, size, protocol), after which nothing the client sends is read. */
const READ_NO_MORE: ReadonlySet<number> = new Set([
  CloseCode.policy,
  CloseCode.tooBig,
  CloseCode.protocolError,
]);

export interface ConnectionContext {
  readonly config: Config;
  readonly auth: Authenticator;
  readonly hub: Hub;
  readonly metrics: Metrics;
  readonly log: Logger;
  /** For lines a client can cause: rate-limited per message (docs/metrics.md#logs). */
  readonly noisyLog: LogLimiter;
  readonly admission: Admission<Connection>;
  /** What each user may be sent of replays and snapshots (WEBSOCKET_REPLAY_BYTES_PER_MINUTE). */
  readonly replayBudgets: KeyedBuckets;
  /** Called once the connection is closed and forgotten. */
  readonly onClosed: (conn: Connection, code: number) => void;
  /** Time and timers of the session (systemClock; a manual one in tests). */
  readonly clock: Clock;
}

export interface ConnectionInfo extends ConnectionEntry {
  state: ConnectionState;
}

export class Connection implements Subscriber, LivenessView, ReceiverHost {
  readonly id = `c_${randomBytes(8).toString('hex')}`;
  state: ConnectionState = 'authenticating';
  principal: Principal | null = null;
  clientVersion: string | null = null;
  readonly connectedAt: number;
  lastSeenAt: number;
  lastPingAt: number;
  awaitingPongSince: number | null = null;
  readonly queue: OutboundQueue;
  private readonly out: Outbound;
  readonly subscriptions: ConnectionSubscriptions;
  private readonly receiver: Receiver;
  /** What the session runs over (transport.ts). */
  private readonly link: ClientTransport;
  /** Hub bookkeeping (Subscriber): waiting in its flush list. */
  flushListed = false;
  private crashed = false;
  private closeCode: number | null = null;
  /** Cancel the session's two timers while they wait: the auth timeout and the close
   * grace. Token expiry and liveness are the sweep's (check()), so an open, idle
   * connection holds no timer. */
  private cancelAuthTimeout: (() => void) | null = null;
  private cancelCloseGrace: (() => void) | null = null;

  constructor(
    transport: ClientTransport,
    readonly remoteAddr: string,
    private readonly ctx: ConnectionContext,
    now = ctx.clock.now(),
  ) {
    this.connectedAt = this.lastSeenAt = this.lastPingAt = now;
    this.link = transport;
    this.out = new Outbound(
      transport,
      ctx.config,
      ctx.metrics,
      () => ctx.hub.scheduleFlush(this),
      now,
    );
    this.queue = this.out.queue;
    this.subscriptions = new ConnectionSubscriptions(
      this,
      ctx.hub,
      this.out,
      ctx.config.maxSubscriptions,
    );
    this.receiver = new Receiver(this, ctx.config, ctx.metrics, ctx.noisyLog, now);
    // Nothing a client sends may throw out of a socket listener: that would end the process
    // for every client. A failure closes this one connection with 1011 instead.
    transport.listen({
      message: (data, isBinary) =>
        this.guard(() => {
          const at = ctx.clock.now();
          this.lastSeenAt = at;
          this.receiver.receive(data, isBinary, at);
        }),
      close: (code) => this.guard(() => this.onClose(code)),
      error: (err) => this.guard(() => this.onError(err)),
    });
    this.cancelAuthTimeout = ctx.clock.after(ctx.config.authTimeoutMs, () =>
      this.guard(() => {
        this.cancelAuthTimeout = null;
        if (this.state === 'authenticating') this.fail('auth_timeout');
      }),
    );
  }

  get transport(): Transport {
    return this.link.kind;
  }

  get receivesBroadcasts(): boolean {
    return this.state === 'open';
  }

  get userId(): string | null {
    return this.principal?.userId ?? null;
  }

  /** Whether state updates go to this client as deltas (docs/protocol.md#deltas). */
  get deltas(): boolean {
    return this.out.deltasOn;
  }

  /** Set from `hello` (or a transport's own negotiation) before the first subscription. */
  useDeltas(on: boolean): void {
    this.out.useDeltas(on);
  }

  /** Replays are budgeted per user, so reconnecting does not refill them. */
  mayReplay(bytes: number, now = this.ctx.clock.now()): boolean {
    return this.ctx.replayBudgets.take(this.userId ?? this.id, now, bytes) === 0;
  }

  replayLeft(now = this.ctx.clock.now()): number {
    return this.ctx.replayBudgets.available(this.userId ?? this.id, now);
  }

  /** Admission: closed to make room for a newcomer while no hello has come. */
  evict(): void {
    this.ctx.noisyLog.info(
      {
        client_id: this.id,
        remote_addr: this.remoteAddr,
        age_ms: this.ctx.clock.now() - this.connectedAt,
      },
      'Unauthenticated connection evicted',
    );
    this.fail('unauthenticated_evicted');
  }

  // --- outbound -------------------------------------------------------------------------

  send(frame: Frame, now = this.ctx.clock.now(), replay = false): boolean {
    if (this.state !== 'open' && this.state !== 'authenticating') return false;
    const result = this.out.enqueue(frame, now, replay);
    if (result === 'overflow') {
      this.closeSlow(
        this.queue.depth >= this.ctx.config.queueSize
          ? `queue full (${this.ctx.config.queueSize} messages)`
          : `queue over ${this.ctx.config.queueBytes} bytes`,
      );
      return false;
    }
    return true;
  }

  /** A live event: written at once when nothing waits before it on this connection (most
   * deliveries of a steady fan-out), else queued like any frame. True when a flush must follow. */
  sendLive(frame: Frame, now: number): boolean {
    if (this.state !== 'open' && this.state !== 'authenticating') return false;
    if (this.out.tryWrite(frame, now)) return false;
    return this.send(frame, now);
  }

  /** Queues a reply and schedules the write. */
  reply(message: ServerMessage, lane: Lane = 'normal'): void {
    if (this.send(Frame.of(message, 'control', lane))) this.ctx.hub.scheduleFlush(this);
  }

  flush(now = this.ctx.clock.now()): void {
    this.out.flush(now);
  }

  resync(channels: string[]): void {
    this.subscriptions.forget(channels);
    this.reply({ type: 'resync', channels }, 'priority');
  }

  // --- liveness (liveness.ts decides) ------------------------------------------------------

  get socketOpen(): boolean {
    return this.out.socketOpen;
  }

  get oldestQueuedAt(): number | null {
    return this.queue.oldestQueuedAt();
  }

  get expiresAt(): number | null {
    return this.principal?.expiresAt ?? null;
  }

  get stuckSince(): number | null {
    return this.out.stuckSince;
  }

  get messagesSent(): number {
    return this.out.messagesSent;
  }

  /** The gateway's sweep, about once a second: close a dead connection, or ping it. */
  check(now: number): void {
    const action = sweepAction(this, this.ctx.config, now);
    if (action.kind === 'expired') {
      this.fail('token_expired');
    } else if (action.kind === 'no_pong') {
      this.fail('ping_timeout');
    } else if (action.kind === 'slow') {
      this.closeSlow(action.reason);
    } else if (action.kind === 'ping') {
      this.lastPingAt = now;
      if (this.link.kind === 'sse') {
        // A stream cannot answer a ping: it gets a comment, which keeps proxies from closing
        // it, and a dead peer is found by the socket (write errors, keep-alive probes).
        this.out.heartbeat();
        return;
      }
      this.awaitingPongSince ??= now;
      this.reply({ type: 'ping' });
    }
  }

  /** Why an operator cleanup would close this connection, or null when it is healthy. */
  deadReason(now: number): string | null {
    return deadReason(this, this.ctx.config, now);
  }

  /** Operator queue flush: drops what is queued and tells the client to resubscribe. */
  flushQueue(): number {
    const dropped = this.queue.dropChannelFrames();
    if (dropped > 0 && this.state === 'open') this.resync(this.subscriptions.dropAll());
    return dropped;
  }

  info(server: string): ConnectionInfo {
    return {
      client_id: this.id,
      server,
      user_id: this.userId,
      remote_addr: this.remoteAddr,
      client_version: this.clientVersion,
      connected_at: new Date(this.connectedAt).toISOString(),
      last_seen_at: new Date(this.lastSeenAt).toISOString(),
      queue_depth: this.queue.depth,
      channels: this.subscriptions.channels,
      messages_sent: this.messagesSent,
      state: this.state,
      transport: this.link.kind,
    };
  }

  // --- closing ------------------------------------------------------------------------------

  /**
   * The one reject path: an error for a catalogue code, counted, after every answer already
   * queued. A code with a close code then closes the connection; any other is queued like a
   * reply (in `lane`), so it keeps its place among the answers.
   */
  fail(code: ErrorCode, message?: string, id?: number | string, lane: Lane = 'normal'): void {
    const spec: { close?: number; message: string } = ERRORS[code];
    this.ctx.metrics.error(code);
    const text = message ?? spec.message;
    const error: ServerMessage = {
      type: 'error',
      ...(id !== undefined && { id }),
      code,
      message: text,
    };
    if (spec.close === undefined) {
      this.reply(error, lane);
      return;
    }
    this.out.writeNow(error);
    this.close(spec.close, text);
  }

  /**
   * Closes with a code. With `drain`, what is queued is written first (graceful shutdown);
   * otherwise the queue is dropped: the client recovers it with since.
   */
  close(code: number, reason = '', drain = false): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.closeCode = code;
    this.ctx.admission.release(this);
    if (drain) this.flush();
    this.state = 'closing';
    this.queue.clear();
    this.subscriptions.dropAll();
    // Closed for flooding or malformed input: nothing more it sends is read, so it cannot
    // keep us parsing while the close handshake waits (cut after CLOSE_GRACE_MS). Any other
    // close reads the client's reply, which ends the connection at once on its side.
    if (READ_NO_MORE.has(code)) this.link.stopReading();
    this.link.close(code, truncateUtf8(reason, 123));
    this.cancelCloseGrace ??= this.ctx.clock.after(CLOSE_GRACE_MS, () => this.link.terminate());
  }

  /** Cuts the connection without a close handshake (shutdown deadline). */
  terminate(): void {
    this.link.terminate();
  }

  private closeSlow(reason: string): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    this.ctx.metrics.error('slow_consumer');
    this.ctx.noisyLog.warn(
      { client_id: this.id, user_id: this.userId, queue_depth: this.queue.depth, reason },
      'Slow consumer closed',
    );
    this.close(CloseCode.slowConsumer, `slow consumer: ${reason}`);
  }

  private onClose(code: number): void {
    if (this.state === 'closed') return;
    const depth = this.queue.depth;
    if (depth > 0 && this.closeCode === null) {
      // The peer went away with messages still owed to it: they will be recovered with since.
      this.ctx.metrics.error('send_failed');
      this.ctx.noisyLog.error(
        { client_id: this.id, error: 'Connection closed', queue_depth: depth },
        'WebSocket send failed',
      );
    }
    if (this.state !== 'closing') {
      this.queue.clear();
      this.subscriptions.dropAll();
    }
    this.state = 'closed';
    this.ctx.admission.release(this);
    this.cancelAuthTimeout?.();
    this.cancelCloseGrace?.();
    this.cancelAuthTimeout = this.cancelCloseGrace = null;
    this.ctx.onClosed(this, this.closeCode ?? code);
  }

  private onError(err: Error & { code?: string }): void {
    // ws reports protocol violations here and closes the socket itself (1002/1009).
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      this.ctx.metrics.error('message_too_big');
      this.closeCode = CloseCode.tooBig;
    } else {
      this.ctx.metrics.error('socket_error');
    }
    this.ctx.noisyLog.warn({ client_id: this.id, error: err.message }, 'WebSocket error');
  }

  /** Runs a listener's work; what it throws closes this connection (1011), never the process. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.crash(err);
    }
  }

  /** An unexpected failure: logged and counted once, this connection closed with 1011. */
  crash(err: unknown): void {
    if (this.crashed) {
      this.terminate();
      return;
    }
    this.crashed = true;
    this.ctx.noisyLog.error(
      { err, client_id: this.id, user_id: this.userId },
      'Client message failed',
    );
    try {
      this.fail('internal');
    } catch {
      this.terminate();
    }
  }

  // --- inbound (receiver.ts reads, in order; ops are handled here) -----------------------

  get authenticating(): boolean {
    return this.state === 'authenticating';
  }

  get ended(): boolean {
    return this.state === 'closing' || this.state === 'closed';
  }

  get logFields(): Record<string, unknown> {
    return { client_id: this.id, user_id: this.userId, remote_addr: this.remoteAddr };
  }

  pong(): void {
    this.awaitingPongSince = null;
  }

  protocolError(error: ServerMessage, reason: string): void {
    this.out.writeNow(error);
    this.close(CloseCode.protocolError, reason);
  }

  async handle(op: InboundOp): Promise<void> {
    if (this.state === 'closing' || this.state === 'closed') return;
    if (this.state === 'authenticating' && op.op !== 'hello') {
      this.fail('not_authenticated');
      return;
    }
    switch (op.op) {
      case 'hello':
        return this.hello(op.token, op.client, op.deltas === true);
      case 'subscribe':
        return this.subscribe(op);
      case 'unsubscribe': {
        this.subscriptions.drop(op.channel);
        this.reply(
          {
            type: 'unsubscribed',
            ...(op.id !== undefined && { id: op.id }),
            channel: op.channel,
          },
          laneFor(op.channel),
        );
        return;
      }
      case 'ping':
        this.reply({ type: 'pong' });
        return;
      case 'refresh':
        return this.refresh(op.token, op.id);
      case 'ack':
        return this.ack(op);
    }
  }

  /**
   * Acknowledges a risk alert for every user of its account (docs/protocol.md#ack): stored in
   * the backplane with who and when, answered with `acked`, and told to every open subscription
   * of the channel on every instance. Acknowledging twice is answered with the first
   * acknowledgement; one that is not held is refused with `alert_unknown`.
   */
  private async ack(op: AckOp): Promise<void> {
    const channel = parseChannel(op.channel);
    if (!channel) throw new ArchonError('unknown_channel', `unknown channel ${quote(op.channel)}`);
    if (channel.class !== 'alert')
      throw new ArchonError(
        'alert_unknown',
        `${op.channel} is a ${channel.class} channel: only risk:<account> alerts are acknowledged`,
      );
    const principal = this.principal as Principal;
    if (!mayJoin(principal, channel))
      throw new ArchonError('forbidden', `account ${channel.account ?? ''} is not yours`);
    let outcome: Awaited<ReturnType<Hub['ack']>>;
    try {
      outcome = await this.ctx.hub.ack(op.channel, op.epoch, op.seq, {
        by: principal.userId,
        at: this.ctx.clock.now(),
      });
    } catch (err) {
      this.ctx.metrics.backplaneErrors.inc();
      this.ctx.log.warn({ err, client_id: this.id, channel: op.channel }, 'Alert ack failed');
      throw new ArchonError('backplane_unavailable', 'backplane unavailable: retry the ack');
    }
    if (!outcome)
      throw new ArchonError(
        'alert_unknown',
        `no alert ${op.channel} seq ${op.seq} of epoch ${quote(op.epoch)} is held: it expired or belongs to another epoch`,
      );
    if (outcome.first) {
      // The audit line: who acknowledged which alert, from where.
      this.ctx.log.info(
        {
          audit: 'alert_ack',
          channel: op.channel,
          epoch: op.epoch,
          seq: op.seq,
          ...this.logFields,
        },
        'Risk alert acknowledged',
      );
    }
    this.reply(
      {
        type: 'acked',
        ...(op.id !== undefined && { id: op.id }),
        channel: op.channel,
        epoch: op.epoch,
        seq: op.seq,
        ...outcome.ack,
      },
      'priority',
    );
  }

  /**
   * A new token for this connection (docs/protocol.md#refresh): verified like `hello`'s, for
   * the same user. It replaces the old one: the expiry moves, and a subscription the new
   * `accounts` no longer cover ends with `unsubscribed` (reason `forbidden`) before the
   * answer. A refused token changes nothing: the connection runs on until the old one
   * expires.
   */
  private async refresh(token: string, id: number | string | undefined): Promise<void> {
    let principal: Principal;
    try {
      principal = await this.ctx.auth.verify(token);
    } catch (err) {
      const why = err instanceof Error ? err.message : 'invalid token';
      this.fail('refresh_refused', `token refresh refused: ${why}`, id);
      return;
    }
    if (this.state !== 'open') return;
    const current = this.principal as Principal;
    if (principal.userId !== current.userId) {
      this.fail(
        'refresh_refused',
        `token refresh refused: the token is for user ${quote(principal.userId)}, this connection for ${quote(current.userId)}`,
        id,
      );
      return;
    }
    this.principal = principal;
    // Each `unsubscribed` in its channel's lane (so it follows that channel's earlier
    // answers), then the answer: alert channels' lane is written first, so every
    // `unsubscribed` arrives before `refreshed`.
    for (const channel of this.subscriptions.dropForbidden(principal))
      this.reply({ type: 'unsubscribed', channel, reason: 'forbidden' }, laneFor(channel));
    this.reply({
      type: 'refreshed',
      ...(id !== undefined && { id }),
      expires_at: principal.expiresAt,
    });
    this.ctx.log.debug(
      { client_id: this.id, user_id: principal.userId, expires_at: principal.expiresAt },
      'Token refreshed',
    );
  }

  private async hello(token: string, client: string | undefined, deltas: boolean): Promise<void> {
    if (this.state !== 'authenticating') {
      this.receiver.strike('bad_request', 'already authenticated');
      return;
    }
    this.ctx.admission.helloReceived(this);
    let principal: Principal;
    try {
      principal = await this.ctx.auth.verify(token);
    } catch (err) {
      const code = err instanceof ArchonError ? err.code : 'unauthorized';
      this.ctx.noisyLog.info(
        {
          client_id: this.id,
          remote_addr: this.remoteAddr,
          reason: err instanceof Error ? err.message : code,
        },
        'Authentication failed',
      );
      this.fail(
        code === 'token_expired' ? 'token_expired' : 'unauthorized',
        err instanceof Error ? err.message : undefined,
      );
      return;
    }
    if (this.state !== 'authenticating') return;
    this.useDeltas(deltas);
    this.signIn(principal, client);
  }

  /**
   * An HTTP stream's session: its token was verified with the request, so it signs in at
   * once and its first message is the welcome (docs/protocol.md#http-streaming-fallback).
   */
  openStream(principal: Principal, client: string | undefined, subscribe: SubscribeOp[]): void {
    this.ctx.admission.helloReceived(this);
    this.signIn(principal, client);
    for (const op of subscribe) this.receiver.submit(op);
  }

  /** Ops POSTed for this stream's session (validated), in order, as if read from a socket. */
  receiveOps(ops: readonly ClientOp[]): void {
    this.guard(() => {
      for (const op of ops) {
        const at = this.ctx.clock.now();
        this.lastSeenAt = at;
        this.receiver.accept(op, at);
      }
    });
  }

  /** A verified principal becomes the session's, within the per-user limit; the welcome follows. */
  private signIn(principal: Principal, client: string | undefined): void {
    if (!this.ctx.admission.authenticated(this, principal.userId)) {
      if (this.state !== 'authenticating') return; // evicted while the token was checked
      this.ctx.metrics.rejected('per_user');
      this.ctx.noisyLog.warn(
        { client_id: this.id, user_id: principal.userId, remote_addr: this.remoteAddr },
        'Connection refused: user connection limit',
      );
      this.fail(
        'user_connection_limit',
        `user ${quote(principal.userId)} already holds ${this.ctx.config.maxConnectionsPerUser} connections on this instance`,
      );
      return;
    }
    this.principal = principal;
    this.clientVersion = client ?? null;
    this.state = 'open';
    this.cancelAuthTimeout?.();
    this.cancelAuthTimeout = null;
    this.lastPingAt = this.ctx.clock.now();
    // The priority lane, like the answers for alert channels: a pipelined
    // `subscribe risk:…` must not be answered before the welcome.
    this.reply(
      {
        type: 'welcome',
        client_id: this.id,
        server: this.ctx.config.serverId,
        // Seconds on the wire (docs/protocol.md#welcome).
        ping_interval: this.ctx.config.pingIntervalMs / 1000,
        ping_timeout: this.ctx.config.pingTimeoutMs / 1000,
        protocol: PROTOCOL_VERSION,
        ...(this.link.kind === 'sse' && { transport: 'sse' as const }),
        // Only to a client that asked: an older one never sees a delta (docs/protocol.md#deltas).
        ...(this.deltas && { deltas: true as const }),
      },
      'priority',
    );
    this.ctx.log.debug(
      { client_id: this.id, user_id: principal.userId, client_version: client },
      'Client authenticated',
    );
  }

  private async subscribe(op: SubscribeOp): Promise<void> {
    let answer: ServerMessage | null;
    try {
      answer = await this.subscriptions.join(this.principal as Principal, op);
    } catch (err) {
      if (err instanceof ArchonError) throw err;
      // The backplane could not be read: this subscribe fails, the connection stays.
      this.ctx.metrics.backplaneErrors.inc();
      this.ctx.log.warn({ err, client_id: this.id, channel: op.channel }, 'Subscribe failed');
      throw new ArchonError('backplane_unavailable', 'backplane unavailable: retry the subscribe');
    }
    if (answer) this.reply(answer);
  }
}
