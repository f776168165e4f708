/**
 * WebSocket upgrades, handled on the HTTP server before `ws` sees them: the path, draining,
 * origin and capacity are checked at the handshake, so a refused client gets a plain HTTP
 * answer (403 / 503 with Retry-After) instead of a socket that opens and closes at once.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { SUBPROTOCOL, TEST_MAX_LONG_HOLDS, type ErrorCode, ERRORS } from '../protocol/index.js';
import type { Config } from './config.js';
import { testLifetime, TEST_LIFETIME_MS } from './diagnostics.js';
import type { Logger } from './logging.js';
import type { Metrics } from './metrics.js';

export type Endpoint = 'client' | 'test' | 'health';

const PATHS: Record<string, Endpoint> = {
  '/api/v1/ws': 'client',
  '/api/v1/ws/test': 'test',
  '/api/v1/ws/health': 'health',
};

export interface UpgradeHooks {
  readonly draining: () => boolean;
  /** Connections open or being opened on an endpoint. */
  readonly count: (endpoint: Endpoint) => number;
  readonly limit: (endpoint: Endpoint) => number;
  /** Test connections open with a `?hold=` longer than the default minute. */
  readonly longHolds: () => number;
  readonly accept: (
    endpoint: Endpoint,
    ws: WebSocket,
    socket: Duplex,
    req: IncomingMessage,
  ) => void;
}

/**
 * The client's address. Behind a load balancer the socket's peer is the proxy: when that
 * peer is one of ARCHON_TRUSTED_PROXIES, X-Forwarded-For is read from the right, skipping
 * trusted proxies, and the first other address is the client. A header from anyone else is
 * ignored, so a client cannot pass itself off as another address.
 */
export function remoteAddress(
  req: IncomingMessage,
  trusted: ReadonlySet<string> = new Set(),
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
  readonly trustedProxies: ReadonlySet<string>;
  private handshaking = 0;

  constructor(
    private readonly config: Config,
    private readonly hooks: UpgradeHooks,
    private readonly metrics: Metrics,
    private readonly log: Logger,
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
    this.trustedProxies = new Set(config.trustedProxies);
  }

  readonly handle = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // A socket error before the handshake completes must not crash the process.
    socket.on('error', () => socket.destroy());
    // Plain string work: `new URL` throws on targets like `//x:99999/`, and a throw here
    // would take the process down.
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const endpoint = PATHS[path];
    if (endpoint === undefined) {
      this.refuse(socket, 'not_found', `no WebSocket endpoint at ${path}`, 'not_found');
      return;
    }
    let longHold = false;
    if (endpoint === 'test') {
      const lifetime = testLifetime(req.url ?? '/');
      if ('error' in lifetime) {
        this.refuse(socket, 'bad_request', lifetime.error, 'bad_request');
        return;
      }
      longHold = lifetime.lifetimeMs > TEST_LIFETIME_MS;
    }
    if (this.hooks.draining()) {
      this.refuse(socket, 'draining', undefined, 'draining', { 'Retry-After': '1' });
      return;
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !this.allowAnyOrigin && !this.origins.has(origin)) {
      this.log.warn(
        { origin, remote_addr: remoteAddress(req, this.trustedProxies) },
        'WebSocket origin refused',
      );
      this.refuse(socket, 'origin_not_allowed', `origin ${origin} is not allowed`, 'origin');
      return;
    }
    if (this.hooks.count(endpoint) + this.handshaking >= this.hooks.limit(endpoint)) {
      this.refuse(socket, 'at_capacity', undefined, 'capacity', { 'Retry-After': '5' });
      return;
    }
    if (longHold && this.hooks.longHolds() >= TEST_MAX_LONG_HOLDS) {
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
      this.hooks.accept(endpoint, ws, socket, req);
    });
  };

  close(): void {
    this.wss.close();
  }

  private refuse(
    socket: Duplex,
    code: ErrorCode,
    message: string | undefined,
    reason: string,
    headers: Record<string, string> = {},
  ): void {
    this.metrics.rejected.inc({ reason });
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const spec: { http?: number; message: string } = ERRORS[code];
    const status = spec.http ?? 400;
    const body = JSON.stringify({ error: { code, message: message ?? spec.message } });
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
  503: 'Service Unavailable',
};
