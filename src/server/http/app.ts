/**
 * The HTTP application (docs/http-api.md): Fastify with every route, one error format
 * (`{"error":{"code","message"}}` from the catalogue) and JSON bodies only.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { ArchonError, ERRORS, errorAnswer } from '../../protocol/index.js';
import type { Logger } from '../logging.js';
import { registerRoutes, type RouteDeps } from './routes.js';
import { registerSse, type SseDeps } from './sse.js';
import { registerWeb } from './web.js';

export function createHttpApp(log: Logger, deps: RouteDeps, sse: SseDeps): FastifyInstance {
  // Fastify's own request logs would drown the operator's signal: the error handler logs
  // what fails, and the gateway logs what matters.
  const app = Fastify({ logger: false, bodyLimit: 1 << 20 });
  // Every body is JSON: a text/plain one is refused as such, not parsed as a string that
  // then fails validation with a confusing message.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const archon = toArchonError(err);
    if (archon.code === 'internal') log.error({ err, url: req.url }, 'Request failed');
    if (archon.httpStatus === 503) void reply.header('Retry-After', '1');
    void reply.code(archon.httpStatus).send(errorAnswer(archon.code, archon.message));
  });
  app.setNotFoundHandler((req, reply) => {
    void reply
      .code(404)
      .send(errorAnswer('not_found', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
  registerRoutes(app, deps);
  registerSse(app, sse);
  registerWeb(app);
  return app;
}

function toArchonError(err: FastifyError | ArchonError): ArchonError {
  if (err instanceof ArchonError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ArchonError('payload_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ArchonError('bad_request', 'Content-Type must be application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ArchonError('bad_request', 'request body is empty: send JSON');
    default:
      if (err.statusCode === 400 || err instanceof SyntaxError)
        return new ArchonError('bad_request', err.message);
      return new ArchonError('internal', ERRORS.internal.message);
  }
}
