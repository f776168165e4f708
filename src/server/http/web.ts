/**
 * The trader dashboard (`/`) and the operator console (`/ops`): static files built by Vite
 * into dist/web (`npm run build`). The pages hold no secrets; each asks for its token.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** dist/web of this package, from src/server/http (tests) or dist/server/http (built). */
export const WEB_DIR = fileURLToPath(new URL('../../../dist/web/', import.meta.url));

const PAGES: Readonly<Record<string, string>> = { '/': 'index.html', '/ops': 'ops.html' };

/**
 * Same-origin everything: scripts, styles and the API/WebSocket. No inline script or style
 * is allowed, so injected markup cannot run.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'Cache-Control': 'no-cache',
  'Content-Security-Policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'Referrer-Policy': 'no-referrer',
  'X-Content-Type-Options': 'nosniff',
};

export function registerWeb(app: FastifyInstance, dir = WEB_DIR): void {
  const built = Object.values(PAGES).every((page) => existsSync(`${dir}${page}`));
  if (!built) {
    for (const path of Object.keys(PAGES))
      app.get(path, (_req, reply) =>
        reply
          .code(503)
          .type('text/plain; charset=utf-8')
          .send(`The web pages are not built (no ${dir}). Run: npm run build\n`),
      );
    return;
  }
  void app.register(fastifyStatic, {
    root: dir,
    prefix: '/',
    wildcard: false,
    index: false,
    cacheControl: false,
    setHeaders(res, path) {
      // Vite puts a content hash in every asset name: cache them for good.
      if (path.includes('/assets/'))
        res.header('Cache-Control', 'public, max-age=31536000, immutable');
      else if (path.endsWith('.html'))
        for (const [k, v] of Object.entries(PAGE_HEADERS)) res.header(k, v);
      else res.header('Cache-Control', 'public, max-age=3600');
    },
  });
  for (const [path, file] of Object.entries(PAGES))
    app.get(path, (_req, reply: FastifyReply) => reply.headers(PAGE_HEADERS).sendFile(file));
}
