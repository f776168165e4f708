/**
 * GET / and GET /ops (docs/http-api.md, docs/web.md): the built pages served by the gateway,
 * with the headers that keep them safe (same-origin CSP, no framing) and fresh (pages
 * revalidated, hashed assets cached for good), and a clear answer when the pages were never
 * built.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { registerWeb } from '../../src/server/http/web.js';
import { useGateway } from '../support/fixture.js';

describe('the web pages', () => {
  const gw = useGateway();

  for (const [path, script] of [
    ['/', /src="\/assets\/dashboard-[\w-]+\.js"/],
    ['/ops', /src="\/assets\/ops-[\w-]+\.js"/],
  ] as const) {
    it(`serves ${path} with a same-origin CSP, no framing and revalidation`, async () => {
      const tg = await gw.start();
      const res = await fetch(`${tg.http}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(res.headers.get('cache-control')).toBe('no-cache');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("default-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain('unsafe-inline');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      const html = await res.text();
      expect(html).toMatch(script);
      // No inline script: everything the page runs comes from /assets/.
      expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    });
  }

  it('caches hashed assets for good and answers 404 JSON for unknown paths', async () => {
    const tg = await gw.start();
    const html = await (await fetch(`${tg.http}/`)).text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const res = await fetch(`${tg.http}${asset}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.headers.get('content-type')).toMatch(/javascript/);
    const missing = await fetch(`${tg.http}/assets/nope.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } });
  });

  describe('when the pages were never built', () => {
    const dir = mkdtempSync(join(tmpdir(), 'archon-web-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('answers / and /ops with 503 and the command that builds them', async () => {
      const app = Fastify();
      registerWeb(app, `${dir}/`);
      for (const path of ['/', '/ops']) {
        const res = await app.inject({ method: 'GET', url: path });
        expect(res.statusCode).toBe(503);
        expect(res.body).toContain('npm run build');
      }
      await app.close();
    });
  });
});
