/**
 * ArchonClient: one logical connection to archon-ws that outlives restarts, network loss and
 * token expiry. It reconnects with backoff as the close code says (docs/protocol.md, "Close
 * codes"), resubscribes with `since`, fills from history what a resume could not replay, and
 * says so with a `gap` when even that cannot fill the hole. About 670 lines: the connection
 * lifecycle (connect, welcome, close policy, retry, the switch between transports) is one
 * state machine, and this file is the router of server messages to its parts; subscriptions,
 * backoff, recovery planning, token renewal (renewal.ts), acknowledgements in flight (acks.ts),
 * the choice of transport and the WebSocket probes (transport.ts) and the watchdog live
 * beside it.
 */
import {
  parseChannel,
  type ChannelInfo,
  type ErrorMessage,
  type HistoryAnswer,
  type ServerMessage,
  type WelcomeMessage,
} from '../protocol/index.js';
import { PendingAcks } from './acks.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { closePolicy } from './close-policy.js';
import type { ClientEvents, ConnectionState } from './connection-state.js';
import { Emitter } from './events.js';
import { httpBaseFromWs, readHistory } from './history.js';
import { StateStore, type KeyedStore, type PositionsStore } from './keyed-store.js';
import type { ClientLink } from './link-shape.js';
import { defaultNetwork, watchNetwork, type NetworkEvents } from './network.js';
import { ChannelSubscription, type Subscription } from './subscription.js';
import { TokenRenewal } from './renewal.js';
import { TokenCache, type TokenSource } from './token.js';
import { Transports, type Transport, type TransportMode } from './transport.js';
import type { AlertAckInfo, ChannelEvent, ClientError, Position, WelcomeInfo } from './types.js';
import { clientVersion } from './version.js';
import { Watchdog } from './watchdog.js';

export interface ArchonClientOptions {
  /** The WebSocket endpoint, e.g. `wss://api.archon.ai/api/v1/ws`. */
  readonly url: string;
  /**
   * The user's JWT. A function is called before the first connection and again whenever the
   * token was refused (close 4001, or 401 from the history endpoint); keep it cheap.
   */
  readonly token: TokenSource;
  /** The HTTP API's base URL (default: from `url`, ws→http, wss→https, without /api/v1/ws). */
  readonly httpUrl?: string;
  /** The application's name and version, sent before the SDK's in `hello`: `my-app/1.4.2`. */
  readonly clientName?: string;
  readonly backoff?: BackoffOptions;
  /** Give up on a connection that has no `welcome` after this long, ms (default 10 000). */
  readonly connectTimeoutMs?: number;
  /**
   * Give up on a token provider that has not answered after this long, ms (default 10 000):
   * an `error` with code `token_failed`, then a retry with backoff.
   */
  readonly tokenTimeoutMs?: number;
  /**
   * Source of `online` / `offline` events (default: `globalThis` when it has them, as in a
   * browser); null turns them off.
   */
  readonly network?: NetworkEvents | null;
  /**
   * Ask for state updates as deltas (default true): smaller messages on the wire, rebuilt into
   * full values before the application sees them (docs/client.md). A gateway that does not
   * know the option sends full values.
   */
  readonly deltas?: boolean;
  /**
   * Connect at once (default true). The first socket opens in a microtask, so listeners and
   * subscriptions added right after construction see everything.
   */
  readonly autoConnect?: boolean;
  /**
   * `auto` (default): WebSocket, falling back to HTTP streaming (SSE) when the WebSocket
   * cannot get through, and back (docs/client.md#when-websocket-cannot-get-through);
   * `websocket` or `sse`: that transport only.
   */
  readonly transport?: TransportMode;
  /** While on SSE in `auto` mode, try a WebSocket in the background this often, ms (default
   * 60 000). */
  readonly probeIntervalMs?: number;
}

export interface SubscribeOptions {
  /** Resume from here (a position saved earlier) instead of from now. */
  readonly since?: Position;
}

/** Wait before retrying a subscribe the server failed for a passing reason (backplane down). */
const SUBSCRIBE_RETRY_MS = 1000;

export class ArchonClient extends Emitter<ClientEvents> {
  private readonly url: string;
  private readonly httpBase: string;
  private readonly hello: string;
  private readonly deltas: boolean;
  private readonly connectTimeoutMs: number;
  private readonly backoff: Backoff;
  private readonly watchdog: Watchdog;
  private readonly network: NetworkEvents | null;
  private readonly subs = new Map<string, ChannelSubscription>();
  private readonly stores = new Map<string, StateStore<unknown>>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private stateValue: ConnectionState;
  private link: ClientLink | null = null;
  /** Which transport next, and the WebSocket probes while on SSE (transport.ts). */
  private readonly transports: Transports;
  /** The transport of the last welcomed connection, for the `transport` event. */
  private lastTransport: Transport | null = null;
  private welcomeValue: WelcomeInfo | null = null;
  private readonly token: TokenCache;
  /** Renews the connection's token before it expires (docs/client.md). */
  private readonly renewal: TokenRenewal;
  private readonly acks = new PendingAcks();
  /** The token the current connection signed in with. */
  private linkToken: string | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retryAtValue: number | null = null;
  /** Bumped by every open() and stop, so a stale async open() knows to give up. */
  private generation = 0;
  private nextId = 0;
  private offline = false;
  private stopped: boolean;
  private unwatchNetwork: (() => void) | null = null;

  constructor(options: ArchonClientOptions) {
    super();
    this.url = options.url;
    this.token = new TokenCache(options.token, options.tokenTimeoutMs);
    this.renewal = new TokenRenewal({
      fresh: () => this.token.fresh(),
      send: (token, id) => this.link?.send({ op: 'refresh', id, token }),
      failed: (code, message) => this.emit('error', { code, message }),
      random: Math.random,
      now: Date.now,
    });
    this.httpBase = options.httpUrl ?? httpBaseFromWs(options.url);
    this.hello = clientVersion(options.clientName);
    this.deltas = options.deltas ?? true;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.backoff = new Backoff(options.backoff);
    this.network = options.network === undefined ? defaultNetwork() : options.network;
    this.watchdog = new Watchdog({
      stale: () => {
        if (this.stateValue === 'connected') this.setState('stale');
      },
      dead: () => this.onDead(),
    });
    this.transports = new Transports(
      {
        mode: options.transport ?? 'auto',
        probeIntervalMs: options.probeIntervalMs ?? 60_000,
        probeTimeoutMs: this.connectTimeoutMs,
        url: this.url,
        base: this.httpBase,
        client: this.hello,
        deltas: this.deltas,
      },
      {
        link: () => this.link,
        linkToken: () => this.linkToken,
        probeToken: () => (this.stopped || this.offline ? null : this.linkToken),
        message: (message) => this.onMessage(message),
        heard: () => this.onHeard(),
        close: (code, reason, retryAfterMs) => this.onClosed(code, reason, retryAfterMs),
        failed: (code, message) => this.emit('error', { code, message }),
        adopt: (link, welcome, token) => this.adopt(link, welcome, token),
      },
    );
    const auto = options.autoConnect ?? true;
    this.stopped = !auto;
    this.stateValue = auto ? 'connecting' : 'closed';
    if (auto) {
      this.watch();
      queueMicrotask(() => {
        if (!this.stopped && this.link === null && this.retryTimer === null) void this.open();
      });
    }
  }

  // --- public API ----------------------------------------------------------------------------

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** When the next connection attempt starts (ms since the Unix epoch), or null. */
  get nextRetryAt(): number | null {
    return this.retryAtValue;
  }

  /** The current connection's `welcome`, or null when not connected. */
  get welcome(): WelcomeInfo | null {
    return this.welcomeValue;
  }

  /** What the current connection runs over; null when not connected. */
  get transport(): Transport | null {
    return this.link && this.welcomeValue ? this.link.transport : null;
  }

  /** The `client` string sent in `hello`. */
  get clientVersion(): string {
    return this.hello;
  }

  /**
   * Subscribes to a channel (one subscription per channel: subscribing again returns it,
   * with `handler` added). Kept across reconnects until `unsubscribe()`.
   */
  subscribe<T = unknown>(
    channel: string,
    handler?: (event: ChannelEvent<T>) => void,
    options: SubscribeOptions = {},
  ): Subscription<T> {
    let sub = this.subs.get(channel) as ChannelSubscription<T> | undefined;
    if (!sub || !sub.wanted) {
      sub = new ChannelSubscription<T>(this.channelInfo(channel), this.host, options.since);
      sub.on('event', (event) => this.emit('event', event));
      sub.on('gap', (gap) => this.emit('gap', gap));
      this.subs.set(channel, sub);
      this.stores.delete(channel);
      this.sendSubscribe(sub);
    }
    if (handler) sub.on('event', handler);
    return sub;
  }

  /**
   * Acknowledges a risk alert for every user of its account (docs/client.md): resolves with
   * the acknowledgement that stands (someone else's, when they were first), rejects with the
   * gateway's error (`alert_unknown`: it no longer waits) or `not_connected`. Every dashboard
   * subscribed to the channel hears of it through its subscription's `acked` event.
   */
  ack(channel: string, epoch: string, seq: number): Promise<AlertAckInfo> {
    return this.acks.ack(channel, epoch, seq, (op) => {
      if (!this.link || !this.welcomeValue) return false;
      this.link.send(op);
      return true;
    });
  }

  /** The current entries of a state channel, kept up to date (snapshot + keyed events). */
  store<T = unknown>(channel: string): KeyedStore<T> {
    if (this.channelInfo(channel).class !== 'state')
      throw new TypeError(`${channel} is not a state channel (positions:<account>)`);
    const existing = this.stores.get(channel) as StateStore<T> | undefined;
    if (existing && this.subs.get(channel)?.wanted) return existing;
    const sub = this.subscribe<T | null>(channel) as ChannelSubscription<T | null>;
    const store = new StateStore<T>(sub);
    this.stores.set(channel, store);
    return store;
  }

  /** The positions of an account (`positions:<account>`). */
  positions<T = unknown>(account: string): PositionsStore<T> {
    return this.store<T>(`positions:${account}`);
  }

  /**
   * Connects: after close() (or a stop), starts over; while waiting for a retry, tries now;
   * otherwise does nothing.
   */
  connect(): void {
    if (this.stopped) {
      this.stopped = false;
      this.backoff.reset();
      this.watch();
      this.setState('connecting');
    } else if (this.link !== null) {
      return;
    }
    void this.open();
  }

  /** Closes the connection and stops reconnecting; subscriptions are kept for connect(). */
  close(): void {
    if (this.stopped) return;
    this.halt();
    this.setState('closed');
  }

  // --- connecting ----------------------------------------------------------------------------

  /** Starts a connection attempt over `transport` (by default: what the plan starts with). */
  private async open(transport: Transport = this.transports.begin()): Promise<void> {
    this.clearRetry();
    this.detach();
    const generation = ++this.generation;
    let token: string;
    try {
      token = await this.token.get();
    } catch (err) {
      if (generation !== this.generation || this.stopped) return;
      this.emit('error', { code: 'token_failed', message: `token provider: ${describe(err)}` });
      this.retryLater(false);
      return;
    }
    if (generation !== this.generation || this.stopped) return;
    const link = this.createLink(token, transport);
    if (!link) return;
    this.link = link;
    this.linkToken = token;
    this.watchdog.start(this.connectTimeoutMs, this.connectTimeoutMs);
  }

  private createLink(token: string, transport: Transport): ClientLink | null {
    try {
      return this.transports.open(token, transport);
    } catch (err) {
      const missing = transport === 'sse' ? 'fetch' : 'WebSocket';
      const why =
        typeof globalThis[missing] === 'function'
          ? describe(err)
          : `no global ${missing} (a browser or Node 22+ is needed)`;
      const where = transport === 'sse' ? this.httpBase : this.url;
      this.stop({ code: 'cannot_connect', message: `cannot open ${where}: ${why}` });
      return null;
    }
  }

  /**
   * Plans the next attempt with backoff (at least `minMs`: a refusal's Retry-After), or waits
   * for the network when offline.
   */
  private retryLater(slow: boolean, minMs = 0): void {
    this.clearRetry();
    if (this.offline) {
      this.setState('reconnecting');
      this.emit('retry', { attempt: this.backoff.attempt + 1, delayMs: null, at: null });
      return;
    }
    const delayMs = Math.max(minMs, this.backoff.next(slow));
    const at = Date.now() + delayMs;
    this.retryAtValue = at;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.retryAtValue = null;
      void this.open();
    }, delayMs);
    this.setState('reconnecting');
    this.emit('retry', { attempt: this.backoff.attempt, delayMs, at });
  }

  private clearRetry(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.retryAtValue = null;
  }

  // --- connection events ---------------------------------------------------------------------

  /** Anything arrived: a message, or an SSE heartbeat comment. */
  private onHeard(): void {
    this.watchdog.heard();
    if (this.stateValue === 'stale' && this.welcomeValue) this.setState('connected');
  }

  private onMessage(message: ServerMessage): void {
    this.onHeard();
    switch (message.type) {
      case 'welcome':
        this.onWelcome(message);
        return;
      case 'ping':
        this.link?.send({ op: 'pong' });
        return;
      case 'subscribed': {
        const sub = this.subs.get(message.channel);
        if (sub?.awaits(message.id)) sub.onSubscribed(message);
        return;
      }
      case 'snapshot':
        this.subs.get(message.channel)?.onSnapshot(message);
        return;
      case 'event':
        this.subs.get(message.channel)?.onEvent(message);
        return;
      case 'expired':
        this.subs.get(message.channel)?.onExpired(message);
        return;
      case 'unacked':
        this.subs.get(message.channel)?.onUnacked(message);
        return;
      case 'acked':
        this.acks.answered(message);
        this.subs.get(message.channel)?.onAcked(message);
        return;
      case 'system':
        this.emit('system', { message: message.message, ts: message.ts });
        return;
      case 'refreshed':
        if (this.renewal.awaits(message.id)) {
          const token = this.renewal.renewed();
          if (token !== null) {
            this.token.accept(token);
            this.linkToken = token;
          }
          this.emit('refreshed', { expiresAt: message.expires_at });
        }
        return;
      case 'unsubscribed': {
        // Ended by the server: the refreshed token no longer covers the channel's account.
        const sub = this.subs.get(message.channel);
        if (message.reason === 'forbidden' && sub?.wanted) {
          const text = `the token no longer covers ${message.channel}`;
          sub.onRefused('forbidden', text);
          this.emit('error', { code: 'forbidden', message: text, channel: message.channel });
        }
        return;
      }
      case 'resync':
        for (const channel of message.channels) {
          const sub = this.subs.get(channel);
          if (sub?.wanted) this.sendSubscribe(sub);
        }
        this.emit('resync', message.channels);
        return;
      case 'error':
        this.onServerError(message);
        return;
      default:
        return; // pong: nothing to do; an SSE stream's `close` is the link's (sse-link.ts)
    }
  }

  private onWelcome(message: WelcomeMessage): void {
    this.welcomeValue = {
      clientId: message.client_id,
      server: message.server,
      pingInterval: message.ping_interval,
      pingTimeout: message.ping_timeout,
      deltas: message.deltas === true,
    };
    this.backoff.up(Date.now());
    const interval = message.ping_interval * 1000;
    const timeout = message.ping_timeout * 1000;
    // A live connection brings a ping every interval: quiet past half the timeout more means
    // stale, past the whole timeout dead (docs/protocol.md, "Heartbeat").
    if (interval > 0 && timeout > 0)
      this.watchdog.start(interval + timeout / 2, interval + timeout);
    else this.watchdog.stop();
    const transport = this.link?.transport ?? 'websocket';
    this.transports.welcomed(transport);
    this.setState('connected');
    if (transport !== this.lastTransport) {
      const previous = this.lastTransport;
      this.lastTransport = transport;
      this.emit('transport', transport, { previous });
    }
    if (this.linkToken !== null) this.renewal.start(this.linkToken);
    this.emit('welcome', this.welcomeValue);
    for (const sub of this.subs.values()) if (sub.wanted) this.sendSubscribe(sub);
  }

  /**
   * A probe's WebSocket was welcomed while connected over SSE: it becomes the connection, with
   * no `disconnect` and no leaving `connected`. Every subscription resubscribes with `since`
   * as on any reconnect, so what the SSE stream did not deliver comes as replay and what it
   * did is dropped by seq (docs/client.md#when-websocket-cannot-get-through); acknowledgements
   * in flight are sent again (safe: the gateway answers a repeat with the first).
   */
  private adopt(link: ClientLink, welcome: WelcomeMessage, token: string): void {
    if (this.link === null || this.stopped) {
      link.close(1000, 'not needed');
      return;
    }
    this.release('switching to WebSocket', true);
    this.link = link;
    this.linkToken = token;
    this.onWelcome(welcome);
    this.acks.resend((op) => link.send(op));
  }

  private onServerError(message: ErrorMessage): void {
    if (this.renewal.awaits(message.id)) {
      this.renewal.refused(message.code, message.message);
      return;
    }
    if (this.acks.awaits(message.id)) {
      this.acks.refused(message.id as string, message.code, message.message);
      return;
    }
    const sub = [...this.subs.values()].find((s) => s.awaits(message.id));
    const error: ClientError = {
      code: message.code,
      message: message.message,
      ...(sub && { channel: sub.channel }),
    };
    if (sub && sub.onRefused(message.code, message.message) === 'retry') {
      const link = this.link;
      this.later(SUBSCRIBE_RETRY_MS * (0.5 + Math.random()), () => {
        if (this.link === link && this.subs.get(sub.channel) === sub && sub.wanted)
          this.sendSubscribe(sub);
      });
    }
    this.emit('error', error);
  }

  /** The link closed (or was found dead): retry as the close code says. */
  private onClosed(code: number, reason: string, retryAfterMs = 0): void {
    const failed = this.welcomeValue === null ? (this.link?.transport ?? null) : null;
    this.detach();
    // Before any welcome, a transport that did not get through gives way to the other at
    // once (transport.ts); otherwise the close policy decides.
    const fallback = failed && !this.stopped ? this.transports.failed(failed, code) : null;
    const action = fallback ? 'reconnect' : closePolicy(code);
    this.emit('disconnect', { code, reason, action });
    if (this.stopped) return;
    if (fallback) {
      void this.open(fallback);
      return;
    }
    if (action === 'stop') {
      this.stop({
        code: 'closed',
        closeCode: code,
        message: `closed by the server with ${code}${reason ? ` (${reason})` : ''}: not retrying`,
      });
      return;
    }
    if (action === 'refresh-token') this.token.refused();
    this.retryLater(action === 'backoff', retryAfterMs);
  }

  private onDead(): void {
    if (!this.link) return;
    const welcomed = this.welcomeValue !== null;
    const reason = welcomed
      ? 'nothing heard for ping_interval + ping_timeout: connection dead'
      : `no welcome within ${this.connectTimeoutMs} ms`;
    if (!welcomed) this.emit('error', { code: 'connect_timeout', message: reason });
    // Reported like the browser reports a lost connection: 1006, reconnect with since.
    this.onClosed(1006, reason);
  }

  /** Drops the current link, if any, and everything tied to it. */
  private detach(): void {
    this.transports.dropped();
    this.release('client closed', false);
  }

  /** Closes the current link and drops what was tied to it; `keepAcks`: on a switch, the
   * acknowledgements in flight wait to be sent again. */
  private release(reason: string, keepAcks: boolean): void {
    const link = this.link;
    if (link === null) return;
    this.link = null;
    link.close(1000, reason);
    this.welcomeValue = null;
    this.renewal.stop();
    if (!keepAcks) this.acks.dropAll();
    this.watchdog.stop();
    this.backoff.down(Date.now());
    for (const sub of this.subs.values()) sub.onDisconnect();
  }

  private halt(): void {
    this.stopped = true;
    this.generation++;
    this.clearRetry();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.unwatchNetwork?.();
    this.unwatchNetwork = null;
    this.detach();
  }

  /** Stops for good: a retry cannot help. */
  private stop(error: ClientError): void {
    this.halt();
    this.emit('error', error);
    this.setState('closed');
  }

  private setState(state: ConnectionState): void {
    const previous = this.stateValue;
    if (state === previous) return;
    this.stateValue = state;
    this.emit('state', state, { previous, retryAt: this.retryAtValue });
  }

  // --- network -------------------------------------------------------------------------------

  private watch(): void {
    if (!this.network || this.unwatchNetwork) return;
    this.unwatchNetwork = watchNetwork(this.network, {
      offline: () => {
        this.offline = true;
        if (this.retryTimer !== null) this.retryLater(false); // now waits for `online`
        if (this.stateValue === 'connected') this.setState('stale');
      },
      online: () => {
        this.offline = false;
        if (this.stopped) return;
        // A link that survived the outage keeps going; one gone stale meanwhile, or a wait
        // for a retry, ends now.
        if (this.link !== null && this.stateValue !== 'stale') return;
        if (this.link !== null) {
          this.detach();
          this.emit('disconnect', { code: 1006, reason: 'network changed', action: 'reconnect' });
        }
        this.setState('reconnecting');
        void this.open();
      },
    });
  }

  // --- subscriptions -------------------------------------------------------------------------

  private readonly host = {
    history: (channel: string, since: Position, signal: AbortSignal) =>
      this.history(channel, since, signal),
    linkStale: () => this.stateValue !== 'connected',
    deltas: () => this.welcomeValue?.deltas === true,
    resubscribe: (channel: string) => {
      const sub = this.subs.get(channel);
      if (!sub?.wanted) return;
      this.sendSubscribe(sub);
      this.emit('resync', [channel]);
    },
    unsubscribe: (channel: string) => {
      this.subs.delete(channel);
      this.stores.delete(channel);
      if (this.welcomeValue) this.link?.send({ op: 'unsubscribe', channel });
    },
  };

  private sendSubscribe(sub: ChannelSubscription<unknown>): void {
    if (!this.link || !this.welcomeValue) return; // sent on the next welcome
    this.link.send(sub.subscribeOp(++this.nextId));
  }

  private channelInfo(channel: string): ChannelInfo {
    // A channel this SDK does not know may be new on the server: let the server decide.
    return parseChannel(channel) ?? { name: channel, class: 'stream', account: null };
  }

  /** GET /api/v1/history; null (and an `error`) when it cannot be read. */
  private async history(
    channel: string,
    since: Position,
    signal: AbortSignal,
  ): Promise<HistoryAnswer | null> {
    try {
      return await readHistory(this.httpBase, channel, since, this.token, signal);
    } catch (err) {
      this.emit('error', {
        code: 'history_failed',
        channel,
        message: `GET /api/v1/history: ${describe(err)}`,
      });
      return null;
    }
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
