/**
 * Limits applied at the WebSocket handshake (docs/protocol.md, docs/configuration.md): the
 * connection cap (WEBSOCKET_MAX_CONNECTIONS) and the origin allow-list
 * (WEBSOCKET_ALLOWED_ORIGINS). A refused client gets a plain HTTP answer, never a socket that
 * opens and closes at once.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { errorsOf, TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import type { ErrorBody, TestGateway } from '../support/gateway.js';
import { metricValue } from '../support/metrics.js';

interface RefusedUpgrade {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ErrorBody;
}

/** Sends a raw upgrade request and resolves with the HTTP answer it expects instead of 101. */
function refusedUpgrade(
  tg: TestGateway,
  path: string,
  headers: Record<string, string> = {},
): Promise<RefusedUpgrade> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: tg.port,
      path,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
        'sec-websocket-protocol': 'archon.v1',
        ...headers,
      },
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      reject(new Error('the upgrade was accepted'));
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: JSON.parse(text) as RefusedUpgrade['body'],
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

describe('handshake limits', () => {
  const gw = useGateway();

  describe('WEBSOCKET_MAX_CONNECTIONS', () => {
    it('refuses the connection over the cap with HTTP 503 and counts it as a capacity rejection', async () => {
      const tg = await gw.start({ WEBSOCKET_MAX_CONNECTIONS: '3' });
      await gw.authed();
      await gw.authed();
      await gw.authed();
      const fourth = gw.track(new TestClient(`${tg.ws}/api/v1/ws`));
      await expect(fourth.opened).rejects.toThrow('HTTP 503');
      expect(tg.gateway.connections.size).toBe(3);
      expect(
        await metricValue(tg, 'archon_websocket_connections_rejected_total', {
          reason: 'capacity',
          server: 'test-1',
        }),
      ).toBe(1);
    });

    it('answers the refused upgrade with a JSON at_capacity error and Retry-After', async () => {
      const tg = await gw.start({ WEBSOCKET_MAX_CONNECTIONS: '1' });
      await gw.authed();
      const refused = await refusedUpgrade(tg, '/api/v1/ws');
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect(refused.body.error.code).toBe('at_capacity');
    });

    it('accepts a new connection once one of the connections at the cap has gone', async () => {
      const tg = await gw.start({ WEBSOCKET_MAX_CONNECTIONS: '3' });
      const first = await gw.authed();
      await gw.authed();
      await gw.authed();
      first.ws.close(1000);
      await first.closed;
      await eventually(() => tg.gateway.connections.size === 2, 'the server to see the close');
      const replacement = await gw.authed();
      await replacement.subscribe('signals');
      expect(tg.gateway.connections.size).toBe(3);
    });

    it('makes room at the cap by closing the oldest connection that has not sent hello (1013)', async () => {
      const tg = await gw.start({ WEBSOCKET_MAX_CONNECTIONS: '2' });
      const silent = await gw.connect(); // open, but silent: no hello
      await gw.authed();
      const third = await gw.authed();
      await third.subscribe('signals');
      expect((await silent.closed).code).toBe(1013);
      expect(errorsOf(silent).map((m) => m.code)).toEqual(['unauthenticated_evicted']);
      // Everyone left is authenticated: the next one is refused at the handshake.
      const fourth = gw.track(new TestClient(`${tg.ws}/api/v1/ws`));
      await expect(fourth.opened).rejects.toThrow('HTTP 503');
    });

    it('keeps the connectivity test endpoint open when client connections are at the cap', async () => {
      const tg = await gw.start({ WEBSOCKET_MAX_CONNECTIONS: '1' });
      await gw.authed();
      const probe = gw.track(new TestClient(`${tg.ws}/api/v1/ws/test`, { protocols: [] }));
      await probe.opened;
      expect(await probe.type('welcome')).toMatchObject({ server: 'test-1' });
    });
  });

  describe('WEBSOCKET_ALLOWED_ORIGINS', () => {
    it('refuses an origin that is not listed with HTTP 403', async () => {
      const tg = await gw.start({ WEBSOCKET_ALLOWED_ORIGINS: 'https://good.example' });
      const evil = gw.track(
        new TestClient(`${tg.ws}/api/v1/ws`, { origin: 'https://evil.example' }),
      );
      await expect(evil.opened).rejects.toThrow('HTTP 403');
      const refused = await refusedUpgrade(tg, '/api/v1/ws', { origin: 'https://evil.example' });
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('origin_not_allowed');
      expect(refused.body.error.message).toContain('https://evil.example');
      expect(
        await metricValue(tg, 'archon_websocket_connections_rejected_total', {
          reason: 'origin',
          server: 'test-1',
        }),
      ).toBe(2);
      expect(tg.logs.some((l) => l.message === 'WebSocket origin refused')).toBe(true);
    });

    it('accepts a listed origin', async () => {
      await gw.start({
        WEBSOCKET_ALLOWED_ORIGINS: 'https://good.example,https://other.example',
      });
      const good = await gw.authed({}, { origin: 'https://good.example' });
      const other = await gw.authed({}, { origin: 'https://other.example' });
      expect(await good.subscribe('signals')).toMatchObject({ type: 'subscribed' });
      expect(await other.subscribe('signals')).toMatchObject({ type: 'subscribed' });
    });

    it('accepts a client that sends no Origin header (not a browser)', async () => {
      await gw.start({ WEBSOCKET_ALLOWED_ORIGINS: 'https://good.example' });
      const server = await gw.authed();
      expect(await server.subscribe('signals')).toMatchObject({ type: 'subscribed' });
    });

    it('accepts any origin when none is configured', async () => {
      await gw.start();
      const any = await gw.authed({}, { origin: 'https://anything.example' });
      expect(await any.subscribe('signals')).toMatchObject({ type: 'subscribed' });
    });
  });
});
