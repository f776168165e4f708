/**
 * The HTTP surface (docs/http-api.md): health, publish, history, metrics and the admin API.
 * Routes call the hub's services; they hold no state of their own.
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  ArchonError,
  HISTORY_REQUESTS_PER_SECOND,
  HISTORY_REQUESTS_PER_SECOND_PER_ADDRESS,
  isReplayable,
  parseChannel,
  type HistoryAnswer,
} from '../../protocol/index.js';
import { ALERT_STATES } from '../../protocol/admin.js';
import type { AdminApi } from '../admin.js';
import type { AlertListing } from '../alerts.js';
import { mayJoin, type Authenticator } from '../auth.js';
import {
  historyCovers,
  type Backplane,
  type PublishInput,
  type PublishResult,
} from '../backplane/backplane.js';
import type { Metrics } from '../metrics.js';
import { parsePublishBody } from '../publish.js';
import { KeyedBuckets } from '../token-bucket.js';
import { bearer, type TokenSet } from './bearer.js';

export interface RouteDeps {
  readonly server: string;
  readonly draining: () => boolean;
  readonly auth: Authenticator;
  readonly adminTokens: TokenSet;
  readonly publishTokens: TokenSet;
  readonly publish: (events: PublishInput[]) => Promise<PublishResult[]>;
  readonly backplane: Backplane;
  readonly metrics: Metrics;
  /** The Prometheus text of GET /metrics: this instance's registry, or a whole node's. */
  readonly scrape: () => Promise<string>;
  readonly admin: AdminApi;
  readonly alerts: AlertListing;
  /** The client's address (ARCHON_TRUSTED_PROXIES applied). */
  readonly clientAddress: (req: IncomingMessage) => string;
}

export function registerRoutes(app: FastifyInstance, deps: RouteDeps): void {
  app.get('/api/health', async (_req, reply) => {
    if (deps.draining()) return reply.code(503).send({ status: 'draining', server: deps.server });
    const backplane = deps.backplane.healthy() ? 'up' : 'down';
    return { status: backplane === 'up' ? 'ok' : 'degraded', server: deps.server, backplane };
  });

  // RB-003 Step 2: `curl -I …/api/v1/ws/health` must show the upgrade headers. A real
  // upgrade request to this path is answered by the WebSocket handler instead.
  app.route({
    method: ['GET', 'HEAD'],
    url: '/api/v1/ws/health',
    handler: async (req, reply) => {
      // Keep the client's wish to close: setting Connection ourselves would otherwise keep a
      // socket open that Node then refuses further requests on (a proxy reusing it gets 400).
      const close = /\bclose\b/i.test(req.headers.connection ?? '');
      reply
        .header('Upgrade', 'websocket')
        .header('Connection', close ? 'Upgrade, close' : 'Upgrade');
      return {
        status: deps.draining() ? 'draining' : 'ok',
        server: deps.server,
        websocket: '/api/v1/ws',
      };
    },
  });

  app.get('/metrics', async (_req, reply) => {
    reply.type(deps.metrics.registry.contentType);
    return deps.scrape();
  });

  app.post('/api/v1/publish', async (req) => {
    if (!deps.publishTokens.enabled)
      throw new ArchonError('not_found', 'publishing is off: no ARCHON_PUBLISH_TOKENS configured');
    if (!deps.publishTokens.matches(req.headers.authorization))
      throw new ArchonError('unauthorized', 'missing or invalid publish token');
    const events = parsePublishBody(req.body);
    if (!deps.backplane.healthy()) throw new ArchonError('backplane_unavailable');
    return { results: await deps.publish(events) };
  });

  // Each read costs a backplane round trip and up to a whole history: bounded per address
  // (before the token is checked, so refusals cost next to nothing) and per user.
  const perAddress = new KeyedBuckets(
    2 * HISTORY_REQUESTS_PER_SECOND_PER_ADDRESS,
    HISTORY_REQUESTS_PER_SECOND_PER_ADDRESS,
  );
  const perUser = new KeyedBuckets(2 * HISTORY_REQUESTS_PER_SECOND, HISTORY_REQUESTS_PER_SECOND);
  const limit = (reply: FastifyReply, wait: number, who: string, rate: number): void => {
    if (wait === 0) return;
    void reply.header('Retry-After', String(Math.max(1, Math.ceil(wait))));
    throw new ArchonError('rate_limited', `more than ${rate} history requests per second ${who}`);
  };
  app.get('/api/v1/history', async (req, reply) => {
    const now = Date.now();
    limit(
      reply,
      perAddress.take(deps.clientAddress(req.raw), now),
      'from this address',
      HISTORY_REQUESTS_PER_SECOND_PER_ADDRESS,
    );
    const token = bearer(req.headers.authorization);
    if (token === null) throw new ArchonError('unauthorized', 'missing bearer token');
    const principal = await deps.auth.verify(token);
    limit(reply, perUser.take(principal.userId, now), 'for this user', HISTORY_REQUESTS_PER_SECOND);
    const query = HistoryQuery.safeParse(req.query);
    if (!query.success)
      throw new ArchonError(
        'bad_request',
        `invalid query: ${query.error.issues[0]?.path.join('.')} ${query.error.issues[0]?.message}`,
      );
    const { channel: name, since_seq: sinceSeq, epoch } = query.data;
    const channel = parseChannel(name);
    if (!channel)
      throw new ArchonError('unknown_channel', `unknown channel ${JSON.stringify(name)}`);
    if (!isReplayable(channel.class))
      throw new ArchonError(
        'bad_request',
        `${name} is a ${channel.class} channel: it has no history`,
      );
    if (!mayJoin(principal, channel))
      throw new ArchonError('forbidden', `account ${channel.account ?? ''} is not yours`);
    let read = await deps.backplane.history(name, sinceSeq);
    const epochChanged = epoch !== undefined && epoch !== read.epoch;
    if (epochChanged && sinceSeq > 0) read = await deps.backplane.history(name, 0);
    const answer: HistoryAnswer = {
      channel: name,
      epoch: read.epoch,
      seq: read.seq,
      first_seq: read.firstSeq,
      complete: !epochChanged && historyCovers(read, sinceSeq),
      epoch_changed: epochChanged,
      events: read.events,
    };
    return answer;
  });

  registerAdminRoutes(app, deps);
}

const HistoryQuery = z.object({
  channel: z.string().min(1),
  since_seq: z.coerce.number().int().min(0).default(0),
  epoch: z.string().min(1).optional(),
});

const AlertsQuery = z.object({ state: z.enum(ALERT_STATES).default('unacked') });
const StatsQuery = z.object({ minutes: z.coerce.number().int().min(1).max(60).default(5) });
const BroadcastBody = z.object({
  type: z.literal('system').default('system'),
  message: z.string().trim().min(1).max(1000),
});

function registerAdminRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const admin = deps.admin;
  const guard = async (req: FastifyRequest, _reply: FastifyReply) => {
    // With no admin token configured the admin API does not exist: 404, never open.
    if (!deps.adminTokens.enabled)
      throw new ArchonError('not_found', 'admin API is off: no ARCHON_ADMIN_TOKENS configured');
    if (!deps.adminTokens.matches(req.headers.authorization))
      throw new ArchonError('unauthorized', 'missing or invalid admin token');
  };
  const base = '/api/v1/admin';
  app.get(`${base}/websocket/status`, { preHandler: guard }, () => admin.status());
  app.get(`${base}/websocket/connections`, { preHandler: guard }, () => admin.connections());
  app.post(`${base}/websocket/cleanup`, { preHandler: guard }, () => admin.cleanup());
  app.post(`${base}/websocket/queue/flush`, { preHandler: guard }, () => admin.flush());
  app.get(`${base}/websocket/stats`, { preHandler: guard }, (req) => {
    const query = StatsQuery.safeParse(req.query);
    if (!query.success)
      throw new ArchonError('bad_request', 'minutes must be an integer from 1 to 60');
    return admin.stats(query.data.minutes);
  });
  app.post(`${base}/broadcast`, { preHandler: guard }, (req) => {
    const body = BroadcastBody.safeParse(req.body ?? {});
    if (!body.success) {
      throw new ArchonError(
        'bad_request',
        'expected {"type":"system","message":"…"} with a message of 1 to 1000 characters',
      );
    }
    if (!deps.backplane.healthy()) throw new ArchonError('backplane_unavailable');
    return admin.broadcast(body.data.message);
  });
  app.get(`${base}/alerts`, { preHandler: guard }, async (req) => {
    const query = AlertsQuery.safeParse(req.query);
    if (!query.success)
      throw new ArchonError('bad_request', `state must be one of ${ALERT_STATES.join(', ')}`);
    if (!deps.backplane.healthy()) throw new ArchonError('backplane_unavailable');
    try {
      return await deps.alerts.list(query.data.state);
    } catch (err) {
      deps.metrics.backplaneErrors.inc();
      req.log.warn({ err }, 'Alert listing failed');
      throw new ArchonError('backplane_unavailable', 'backplane unavailable: retry');
    }
  });
}
