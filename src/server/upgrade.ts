/**
 * WebSocket upgrades, handled on the HTTP server before `ws` sees them: the path, draining,
 * origin and capacity are checked at the handshake, so a refused client gets a plain HTTP
 * answer (403 / 503 with Retry-After) instead of a socket that opens and closes at once.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  SUBPROTOCOL,
  TEST_MAX_LONG_HOLDS,
  type ErrorCode,
  ERRORS,
  errorAnswer,
} from '../protocol/index.js';
import type { UpgradeRefusal } from './admission.js';
import type { RejectReason } from '../protocol/index.js';
import type { Config } from './config.js';
import { testLifetime, TEST_LIFETIME_MS } from './diagnostics.js';
import { quote } from './text.js';
import { TrustedProxies } from './trusted-proxies.js';
import type { LogLimiter, Logger } from './logging.js';
import type { Metrics } from './metrics.js';

export type Endpoint = 'client' | 'test' | 'health';

const PATHS: Record<string, Endpoint> = {
  '/api/v1/ws': 'client',
  '/api/v1/ws/test': 'test',
  '/api/v1/ws/health': 'health',
};

export interface UpgradeHooks {
  readonly draining: () => boolean;
  /** May one more connection open on an endpoint from this address, with `pending`
   * handshakes under way? May make room by evicting; null when admitted. `busy`: the test
   * endpoint's long holds are all taken. */
  readonly admit: (upgrade: UpgradeRequest, pending: number) => UpgradeRefusal | 'busy' | null;
  readonly accept: (ws: WebSocket, socket: Duplex, upgrade: UpgradeRequest) => void;
}

/** What the handshake learned of an upgrade request, read once. */
export interface UpgradeRequest {
  readonly endpoint: Endpoint;
  /** The client's address (ARCHON_TRUSTED_PROXIES applied). */
  readonly addr: string;
  /** How long a test connection stays open (`?hold=`); the default minute otherwise. */
  readonly lifetimeMs: number;
}

/**
 * The client's address. Behind a load balancer the socket's peer is the proxy: when that
 * peer is one of ARCHON_TRUSTED_PROXIES, X-Forwarded-For is read from the right, skipping
 * trusted proxies, and the first other address is the client. A header from anyone else is
 * ignored, so a client cannot pass itself off as another address.
 */
export function remoteAddress(
  req: IncomingMessage,
  trusted: { has(addr: string): boolean } = new Set<string>(),
): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  const header = req.headers['x-forwarded-for'];
  if (!trusted.has(peer) || typeof header !== 'string') return peer;
  const hops = header
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h.length > 0);
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i] as string;
    if (!trusted.has(hop)) return hop;
  }
  return peer;
}

export class UpgradeHandler {
  private readonly wss: WebSocketServer;
  private readonly allowAnyOrigin: boolean;
  private readonly origins: ReadonlySet<string>;
  readonly trustedProxies: TrustedProxies;
  private handshaking = 0;

  constructor(
    private readonly config: Config,
    private readonly hooks: UpgradeHooks,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly noisyLog: LogLimiter,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: config.maxMessageSize,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
    this.allowAnyOrigin = config.allowedOrigins.length === 0 || config.allowedOrigins.includes('*');
    this.origins = new Set(config.allowedOrigins);
    this.trustedProxies = new TrustedProxies(config.trustedProxies);
  }

  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // A socket error before the handshake completes must not crash the process.
    socket.on('error', () => socket.destroy());
    try {
      this.upgrade(req, socket, head);
    } catch (err) {
      // Nothing a request carries may throw out of the server's 'upgrade' listener.
      this.noisyLog.error({ err, url: req.url?.slice(0, 200) }, 'WebSocket upgrade failed');
      this.metrics.error('internal');
      socket.destroy();
    }
  };

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Plain string work: `new URL` throws on targets like `//x:99999/`, and a throw here
    // would take the process down.
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const endpoint = PATHS[path];
    if (endpoint === undefined) {
      this.refuse(socket, 'not_found', `no WebSocket endpoint at ${quote(path)}`, 'not_found');
      return;
    }
    let lifetimeMs = TEST_LIFETIME_MS;
    if (endpoint === 'test') {
      const lifetime = testLifetime(req.url ?? '/');
      if ('error' in lifetime) {
        this.refuse(socket, 'bad_request', lifetime.error, 'bad_request');
        return;
      }
      lifetimeMs = lifetime.lifetimeMs;
    }
    if (this.hooks.draining()) {
      this.refuse(socket, 'draining', undefined, 'draining', { 'Retry-After': '1' });
      return;
    }
    const addr = remoteAddress(req, this.trustedProxies);
    const origin = req.headers.origin;
    if (origin !== undefined && !this.originAllowed(origin)) {
      this.noisyLog.warn(
        { origin: origin.slice(0, 200), remote_addr: addr },
        'WebSocket origin refused',
      );
      this.refuse(socket, 'origin_not_allowed', `origin ${quote(origin)} is not allowed`, 'origin');
      return;
    }
    const upgrade: UpgradeRequest = { endpoint, addr, lifetimeMs };
    const refusal = this.hooks.admit(upgrade, this.handshaking);
    if (refusal === 'per_ip') {
      this.noisyLog.warn(
        { remote_addr: addr },
        'WebSocket upgrade refused: address connection limit',
      );
      this.refuse(
        socket,
        'ip_connection_limit',
        `${this.config.maxConnectionsPerIp} connections from ${addr} are open on this instance (WEBSOCKET_MAX_CONNECTIONS_PER_IP)`,
        'per_ip',
        { 'Retry-After': '10' },
      );
      return;
    }
    if (refusal === 'capacity') {
      this.refuse(socket, 'at_capacity', undefined, 'capacity', { 'Retry-After': '5' });
      return;
    }
    if (refusal === 'busy') {
      this.refuse(
        socket,
        'test_endpoint_busy',
        `${TEST_MAX_LONG_HOLDS} test connections held longer than ${TEST_LIFETIME_MS / 1000} s are open on this instance (the most it allows): hold for ${TEST_LIFETIME_MS / 1000} s or less, or retry later`,
        'capacity',
        { 'Retry-After': '30' },
      );
      return;
    }
    this.handshaking++;
    let settled = false;
    const done = () => {
      if (!settled) this.handshaking--;
      settled = true;
    };
    socket.once('close', done);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      done();
      // Not kept for the connection's life: a listener and its closures per socket add up.
      socket.removeListener('close', done);
      this.hooks.accept(ws, socket, upgrade);
    });
  }

  /** WEBSOCKET_ALLOWED_ORIGINS (docs/configuration.md): a request without Origin is not a
   * browser's and passes; the HTTP streaming transport checks the same list. */
  originAllowed(origin: string | undefined): boolean {
    return origin === undefined || this.allowAnyOrigin || this.origins.has(origin);
  }

  close(): void {
    this.wss.close();
  }

  private refuse(
    socket: Duplex,
    code: ErrorCode,
    message: string | undefined,
    reason: RejectReason,
    headers: Record<string, string> = {},
  ): void {
    this.metrics.rejected(reason);
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const spec: { http?: number; message: string } = ERRORS[code];
    const status = spec.http ?? 400;
    const body = JSON.stringify(errorAnswer(code, message ?? spec.message));
    const lines = [
      `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}`,
      'Connection: close',
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  429: 'Too Many Requests',
  503: 'Service Unavailable',
};
