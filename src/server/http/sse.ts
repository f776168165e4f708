/**
 * The HTTP streaming fallback's routes (docs/protocol.md#http-streaming-fallback): `GET
 * /api/v1/sse` opens a session whose messages are server-sent events, and `POST
 * /api/v1/sse/<client_id>` hands it ops, on whichever instance holds it. Both are checked as
 * a WebSocket upgrade and its messages are: per address before the token, the token, origin,
 * draining, capacity and per-user limits, then the same op parser.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';
import {
  ArchonError,
  MAX_OP_DEPTH,
  parseCursor,
  SSE_MAX_OPS_PER_POST,
  SSE_PATH,
  SSE_REQUESTS_PER_SECOND_PER_ADDRESS,
  type ClientOp,
  type Cursor,
  type SubscribeOp,
} from '../../protocol/index.js';
import type { Principal, Authenticator } from '../auth.js';
import { nestingExceeds, parseClientMessage } from '../inbound.js';
import type { Metrics } from '../metrics.js';
import { KeyedBuckets } from '../token-bucket.js';
import { bearer } from './bearer.js';

/** What a stream's request asked for, once it was admitted. */
export interface StreamRequest {
  readonly res: ServerResponse;
  readonly principal: Principal;
  readonly addr: string;
  readonly client: string | undefined;
  /** `deltas=1`: state updates as deltas, as hello's `deltas` asks (docs/protocol.md#deltas). */
  readonly deltas: boolean;
  /** Where each channel resumes (`Last-Event-ID`, then `since`). */
  readonly resume: Cursor;
  /** The channels of the request, as subscribe ops. */
  readonly subscribe: SubscribeOp[];
}

/** What became of POSTed ops. */
export type DeliverResult = 'accepted' | 'forbidden' | 'unknown' | 'unavailable';

export interface SseDeps {
  readonly auth: Authenticator;
  readonly metrics: Metrics;
  readonly maxSubscriptions: number;
  readonly draining: () => boolean;
  readonly originAllowed: (origin: string | undefined) => boolean;
  readonly clientAddress: (req: IncomingMessage) => string;
  /** Per-address and capacity admission: null when admitted. */
  readonly admit: (addr: string, userId: string) => 'per_ip' | 'capacity' | 'per_user' | null;
  /** Starts an admitted stream's session (the gateway registers it). */
  readonly open: (stream: StreamRequest) => void;
  /** Hands ops to a stream's session, here or on another instance. */
  readonly deliver: (clientId: string, userId: string, ops: ClientOp[]) => Promise<DeliverResult>;
}

/** A POST body: ops as JSON, at most this many bytes. */
const POST_BODY_LIMIT = 64 * 1024;
const CLIENT_ID = /^c_[0-9a-f]{16}$/;

export function registerSse(app: FastifyInstance, deps: SseDeps): void {
  const perAddress = new KeyedBuckets(
    2 * SSE_REQUESTS_PER_SECOND_PER_ADDRESS,
    SSE_REQUESTS_PER_SECOND_PER_ADDRESS,
  );
  const limit = (req: IncomingMessage, reply: FastifyReply): string => {
    const addr = deps.clientAddress(req);
    const wait = perAddress.take(addr, Date.now());
    if (wait > 0) {
      void reply.header('Retry-After', String(Math.max(1, Math.ceil(wait))));
      throw new ArchonError(
        'rate_limited',
        `more than ${SSE_REQUESTS_PER_SECOND_PER_ADDRESS} stream requests per second from this address`,
      );
    }
    return addr;
  };
  const verify = (authorization: string | undefined): Promise<Principal> => {
    const token = bearer(authorization);
    if (token === null)
      throw new ArchonError(
        'unauthorized',
        'missing token: send it as Authorization: Bearer <jwt> (never in the URL)',
      );
    return deps.auth.verify(token);
  };

  app.get(SSE_PATH, async (req, reply) => {
    const addr = limit(req.raw, reply);
    if (deps.draining()) {
      deps.metrics.rejected('draining');
      throw new ArchonError('draining');
    }
    if (!deps.originAllowed(req.headers.origin)) {
      deps.metrics.rejected('origin');
      throw new ArchonError('origin_not_allowed');
    }
    const query = readStreamQuery(
      req.query as Record<string, unknown>,
      req.headers['last-event-id'],
      deps.maxSubscriptions,
    );
    const principal = await verify(req.headers.authorization);
    const refusal = deps.admit(addr, principal.userId);
    if (refusal !== null) {
      deps.metrics.rejected(refusal);
      if (refusal === 'capacity') throw new ArchonError('at_capacity');
      void reply.header('Retry-After', '10');
      throw refusal === 'per_ip'
        ? new ArchonError('ip_connection_limit')
        : new ArchonError('user_connection_limit');
    }
    // From here the response is the stream: Fastify lets go of it.
    void reply.hijack();
    deps.open({ res: reply.raw, principal, addr, ...query });
  });

  // Op bodies are read as text and parsed here, with the WebSocket's parser and its bounds.
  void app.register((scope, _opts, done) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      'application/json',
      { parseAs: 'string', bodyLimit: POST_BODY_LIMIT },
      (_req, body, parsed) => parsed(null, body),
    );
    scope.post<{ Params: { clientId: string } }>(`${SSE_PATH}/:clientId`, async (req, reply) => {
      limit(req.raw, reply);
      const principal = await verify(req.headers.authorization);
      const clientId = req.params.clientId;
      const ops = parseOps(typeof req.body === 'string' ? req.body : '');
      const result = CLIENT_ID.test(clientId)
        ? await deps.deliver(clientId, principal.userId, ops)
        : 'unknown';
      switch (result) {
        case 'accepted':
          return reply.code(202).send({ accepted: ops.length });
        case 'forbidden':
          throw new ArchonError('forbidden', 'this stream belongs to another user');
        case 'unknown':
          throw new ArchonError('sse_session_unknown');
        case 'unavailable':
          throw new ArchonError(
            'backplane_unavailable',
            'the instance holding this stream did not answer: retry',
          );
      }
    });
    done();
  });
}

/** The stream request's query and `Last-Event-ID`, or ArchonError('bad_request'). */
export function readStreamQuery(
  query: Record<string, unknown>,
  lastEventId: string | string[] | undefined,
  maxSubscriptions: number,
): Pick<StreamRequest, 'client' | 'deltas' | 'resume' | 'subscribe'> {
  const text = (name: string): string | undefined => {
    const value = query[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw new ArchonError('bad_request', `${name} is given twice`);
    return value;
  };
  const client = text('client');
  if (client !== undefined && client.length > 100)
    throw new ArchonError('bad_request', 'client is longer than 100 characters');
  const deltasText = text('deltas');
  if (deltasText !== undefined && deltasText !== '0' && deltasText !== '1')
    throw new ArchonError('bad_request', 'deltas must be 1 or 0');
  const deltas = deltasText === '1';
  const resume: Cursor = new Map();
  for (const [name, value] of [
    ['Last-Event-ID', Array.isArray(lastEventId) ? lastEventId.join(',') : lastEventId],
    ['since', text('since')],
  ] as const) {
    if (value === undefined) continue;
    const parsed = parseCursor(value);
    if ('error' in parsed) throw new ArchonError('bad_request', `${name}: ${parsed.error}`);
    for (const [channel, since] of parsed.cursor) resume.set(channel, since);
  }
  const channels = (text('channels') ?? '')
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c.length > 0);
  if (channels.length > maxSubscriptions)
    throw new ArchonError(
      'bad_request',
      `channels names ${channels.length} channels: at most ${maxSubscriptions} (WEBSOCKET_MAX_SUBSCRIPTIONS)`,
    );
  const subscribe: SubscribeOp[] = [];
  for (const channel of new Set(channels)) {
    if (channel.length > 200)
      throw new ArchonError('bad_request', 'a channel name is longer than 200 characters');
    const since = resume.get(channel);
    subscribe.push({ op: 'subscribe', channel, ...(since && { since }) });
  }
  return { client, deltas, resume, subscribe };
}

/**
 * A POST body: one op or an array of 1–SSE_MAX_OPS_PER_POST, each as the WebSocket would
 * take it (hello and pong excepted: the stream's request signed in, and a stream is never
 * pinged). Nothing is accepted unless every op is valid. Total and linear in the text.
 */
export function parseOps(text: string): ClientOp[] {
  if (nestingExceeds(text, MAX_OP_DEPTH + 1))
    throw new ArchonError('bad_request', `body nested deeper than ${MAX_OP_DEPTH + 1} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ArchonError('bad_request', 'body is not valid JSON: send an array of ops');
  }
  const items = Array.isArray(value) ? value : [value];
  if (items.length === 0 || items.length > SSE_MAX_OPS_PER_POST)
    throw new ArchonError(
      'bad_request',
      `send 1 to ${SSE_MAX_OPS_PER_POST} ops per request, not ${items.length}`,
    );
  return items.map((item, i) => {
    const parsed = parseClientMessage(JSON.stringify(item));
    if (!parsed.ok) throw new ArchonError('bad_request', `op ${i}: ${parsed.message}`);
    if (parsed.op.op === 'hello' || parsed.op.op === 'pong')
      throw new ArchonError(
        'bad_request',
        `op ${i}: ${parsed.op.op} is not sent on a stream (its GET request signed in, and it is never pinged)`,
      );
    return parsed.op;
  });
}
