/**
 * Which transport a connection runs over (docs/client.md#when-websocket-cannot-get-through):
 * WebSocket first; HTTP streaming (SSE) at once when the WebSocket did not get through;
 * SSE first after it was the one that worked twice running; and, while on SSE, a WebSocket
 * tried in the background every so often, taken over as soon as it is welcomed.
 * TransportPlan decides (no timers, no I/O); Prober runs the background tries; Transports
 * puts them together for the client and builds either link behind the one shape of
 * link-shape.ts, its callbacks routed to the connection or to the probe.
 */
import type { WelcomeMessage } from '../protocol/index.js';
import { Link } from './link.js';
import type { ClientLink, LinkHandlers, Transport } from './link-shape.js';
import { SseLink } from './sse-link.js';

export type { Transport } from './link-shape.js';

/** `auto`: WebSocket, falling back to SSE and moving back; the others: that one only. */
export type TransportMode = 'auto' | Transport;

/** WebSocket failures in a row, each saved by SSE, after which SSE goes first. */
const SSE_FIRST_AFTER = 2;

/**
 * Close codes of a WebSocket that did not get through, when no welcome came: lost (1006),
 * a handshake a proxy mangled (1002), no code (1005), TLS (1015). Any other code came from
 * the gateway, so the WebSocket reached it and its close policy applies.
 */
const NOT_THROUGH = new Set([1002, 1005, 1006, 1015]);

/** The policy of transport choice, one connection attempt after another. */
export class TransportPlan {
  /** Attempts in a row where the WebSocket failed and SSE then worked. */
  private sseSaves = 0;
  /** Transports tried in the current attempt, in order. */
  private tried: Transport[] = [];

  constructor(readonly mode: TransportMode) {}

  /** A new attempt (the first, or one after a backoff wait): the transport to start with. */
  begin(): Transport {
    const first: Transport =
      this.mode !== 'auto' ? this.mode : this.sseSaves >= SSE_FIRST_AFTER ? 'sse' : 'websocket';
    this.tried = [first];
    return first;
  }

  /**
   * The try over `transport` ended with `code` before any welcome: the transport to try at
   * once (no backoff wait), or null when the attempt is over.
   */
  failed(transport: Transport, code: number): Transport | null {
    if (this.mode !== 'auto' || !NOT_THROUGH.has(code)) return null;
    const other: Transport = transport === 'websocket' ? 'sse' : 'websocket';
    if (this.tried.includes(other)) return null;
    this.tried.push(other);
    return other;
  }

  /** A connection over `transport` was welcomed (a probe's included). */
  welcomed(transport: Transport): void {
    if (transport === 'websocket') this.sseSaves = 0;
    else if (this.tried[0] === 'websocket' && this.tried.length > 1) this.sseSaves++;
    this.tried = [];
  }

  /** Whether a connection over `transport` should probe for a WebSocket in the background. */
  probes(transport: Transport): boolean {
    return this.mode === 'auto' && transport === 'sse';
  }
}

export interface ProbeHost {
  /** A WebSocket link that signs in (hello); its callbacks go to message() and closed(). */
  open(): ClientLink | null;
  /** The probe was welcomed: it becomes the connection. */
  adopt(link: ClientLink, welcome: WelcomeMessage): void;
}

export interface TransportOptions {
  readonly mode: TransportMode;
  /** Between probes, ms. */
  readonly probeIntervalMs: number;
  /** A probe not welcomed within this long is dropped, ms. */
  readonly probeTimeoutMs: number;
  /** The WebSocket endpoint. */
  readonly url: string;
  /** The HTTP API's base URL, for SSE. */
  readonly base: string;
  /** hello's `client`. */
  readonly client: string;
  /** Ask for deltas in hello (docs/protocol.md#deltas). */
  readonly deltas: boolean;
}

/** What Transports needs of the client: the connection's callbacks, and these. */
export interface TransportHost extends Required<Omit<LinkHandlers, 'open'>> {
  /** The connection's link, if any. */
  link(): ClientLink | null;
  /** The token the connection runs on now (renewed in place, maybe). */
  linkToken(): string | null;
  /** The token a probe signs in with; null when no probe should start now (offline). */
  probeToken(): string | null;
  /** A probe was welcomed: it becomes the connection, signed in with `token`. */
  adopt(link: ClientLink, welcome: WelcomeMessage, token: string): void;
}

/** The client's side of transports: which one next, links to the connection or a probe. */
export class Transports {
  private readonly plan: TransportPlan;
  private readonly prober: Prober;
  private probeToken: string | null = null;

  constructor(
    private readonly options: TransportOptions,
    private readonly host: TransportHost,
  ) {
    this.plan = new TransportPlan(options.mode);
    this.prober = new Prober(options.probeIntervalMs, options.probeTimeoutMs, {
      open: () => this.openProbe(),
      adopt: (link, welcome) => host.adopt(link, welcome, this.probeToken ?? ''),
    });
  }

  /** A new attempt: the transport it starts with. */
  begin(): Transport {
    return this.plan.begin();
  }

  /** The try over `transport` ended with `code` before a welcome: what to try at once. */
  failed(transport: Transport, code: number): Transport | null {
    return this.plan.failed(transport, code);
  }

  /** The connection was welcomed over `transport`: over SSE in auto mode, probing starts. */
  welcomed(transport: Transport): void {
    this.plan.welcomed(transport);
    if (this.plan.probes(transport)) this.prober.start();
  }

  /** The connection ended: no more probes. */
  dropped(): void {
    this.prober.stop();
  }

  /**
   * A link that signs in with `token`, its callbacks going to the client while it is the
   * connection, to the prober while it is a probe, and nowhere after. Throws when it cannot
   * be created (no global WebSocket or fetch, a malformed URL).
   */
  open(token: string, transport: Transport): ClientLink {
    const { host } = this;
    const config: LinkConfig = {
      url: this.options.url,
      base: this.options.base,
      client: this.options.client,
      deltas: this.options.deltas,
      token,
      currentToken: () => (host.link() === link ? (host.linkToken() ?? token) : token),
    };
    const link: ClientLink = openLink(transport, config, {
      open: () => {},
      message: (message) => {
        if (host.link() === link) host.message(message);
        else this.prober.message(link, message);
      },
      heard: () => {
        if (host.link() === link) host.heard();
      },
      close: (code, reason, retryAfterMs) => {
        if (host.link() === link) host.close(code, reason, retryAfterMs);
        else this.prober.closed(link);
      },
      failed: (code, message) => {
        if (host.link() === link) host.failed(code, message);
      },
    });
    return link;
  }

  private openProbe(): ClientLink | null {
    const token = this.host.probeToken();
    if (token === null) return null;
    try {
      const link = this.open(token, 'websocket');
      this.probeToken = token;
      return link;
    } catch {
      return null;
    }
  }
}

/**
 * While the connection runs over SSE: every `intervalMs` a WebSocket link signs in beside it.
 * Welcomed → adopted; closed or silent for `timeoutMs` → dropped without a word, and tried
 * again an interval later. One probe at a time.
 */
export class Prober {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private probe: ClientLink | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly timeoutMs: number,
    private readonly host: ProbeHost,
  ) {}

  /** Plans the next probe, unless one is planned or running. */
  start(): void {
    if (this.timer !== null || this.probe !== null) return;
    this.timer = setTimeout(() => this.run(), this.intervalMs);
  }

  /** No more probes; one running is closed. */
  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const probe = this.probe;
    this.probe = null;
    probe?.close(1000, 'probe not needed');
  }

  owns(link: ClientLink): boolean {
    return link === this.probe;
  }

  message(link: ClientLink, message: Parameters<LinkHandlers['message']>[0]): void {
    if (link !== this.probe || message.type !== 'welcome') return;
    this.clear();
    this.probe = null;
    this.host.adopt(link, message);
  }

  closed(link: ClientLink): void {
    if (link !== this.probe) return;
    this.fail();
  }

  private run(): void {
    this.timer = null;
    const link = this.host.open();
    if (link === null) {
      this.start();
      return;
    }
    this.probe = link;
    this.timer = setTimeout(() => this.fail(), this.timeoutMs);
  }

  private fail(): void {
    this.clear();
    const probe = this.probe;
    this.probe = null;
    probe?.close(1000, 'probe failed');
    this.start();
  }

  private clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }
}

export interface LinkConfig {
  /** The WebSocket endpoint. */
  readonly url: string;
  /** The HTTP API's base URL, for SSE. */
  readonly base: string;
  /** hello's `client`. */
  readonly client: string;
  /** Ask for deltas in hello (docs/protocol.md#deltas; the HTTP stream does not offer them). */
  readonly deltas: boolean;
  /** The token to sign in with. */
  readonly token: string;
  /** The token to send now (SSE POSTs: one renewed in place is used at once). */
  readonly currentToken: () => string;
}

/**
 * A link over `transport` that signs in: over WebSocket with `hello` once open, over SSE
 * with the stream's request itself. Throws when it cannot be created at all.
 */
export function openLink(
  transport: Transport,
  config: LinkConfig,
  handlers: LinkHandlers,
): ClientLink {
  if (transport === 'sse')
    return new SseLink(
      {
        base: config.base,
        token: config.currentToken,
        client: config.client,
        deltas: config.deltas,
      },
      handlers,
    );
  const link: Link = new Link(config.url, {
    ...handlers,
    open: () => {
      link.send({
        op: 'hello',
        token: config.token,
        client: config.client,
        ...(config.deltas && { deltas: true }),
      });
      handlers.open();
    },
  });
  return link;
}
