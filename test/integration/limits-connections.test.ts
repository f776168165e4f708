/**
 * Limits applied at the WebSocket handshake (DESIGN §3–5): the connection cap
 * (WEBSOCKET_MAX_CONNECTIONS) and the origin allow-list (WEBSOCKET_ALLOWED_ORIGINS). A refused
 * client gets a plain HTTP answer, never a socket that opens and closes at once.
 */
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { TestClient, until } from '../support/client.js';
import { signToken, startGateway, type TestGateway } from '../support/gateway.js';

interface RefusedUpgrade {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: { error: { code: string; message: string } };
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

async function metricValue(tg: TestGateway, series: string): Promise<number> {
  const text = await (await fetch(`${tg.http}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series));
  return line === undefined ? 0 : Number(line.split(' ').at(-1));
}

describe('handshake limits', () => {
  let tg: TestGateway;
  const clients: TestClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    await until(() => tg.gateway.connections.size === 0, 5000, 'clients to disconnect');
    await tg.stop();
  });

  async function authed(options: { origin?: string } = {}): Promise<TestClient> {
    const c = new TestClient(`${tg.ws}/api/v1/ws`, options);
    clients.push(c);
    await c.opened;
    c.send({ op: 'hello', token: await signToken(), client: 'test/1.0' });
    await c.type('welcome');
    return c;
  }

  describe('WEBSOCKET_MAX_CONNECTIONS', () => {
    it('refuses the connection over the cap with HTTP 503 and counts it as a capacity rejection', async () => {
      tg = await startGateway({ WEBSOCKET_MAX_CONNECTIONS: '3' });
      await authed();
      await authed();
      await authed();
      const fourth = new TestClient(`${tg.ws}/api/v1/ws`);
      clients.push(fourth);
      await expect(fourth.opened).rejects.toThrow('HTTP 503');
      expect(tg.gateway.connections.size).toBe(3);
      expect(
        await metricValue(
          tg,
          'archon_websocket_connections_rejected_total{reason="capacity",server="test-1"}',
        ),
      ).toBe(1);
    });

    it('answers the refused upgrade with a JSON at_capacity error and Retry-After', async () => {
      tg = await startGateway({ WEBSOCKET_MAX_CONNECTIONS: '1' });
      await authed();
      const refused = await refusedUpgrade(tg, '/api/v1/ws');
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('5');
      expect(refused.body.error.code).toBe('at_capacity');
    });

    it('accepts a new connection once one of the connections at the cap has gone', async () => {
      tg = await startGateway({ WEBSOCKET_MAX_CONNECTIONS: '3' });
      const first = await authed();
      await authed();
      await authed();
      first.ws.close(1000);
      await first.closed;
      await until(() => tg.gateway.connections.size === 2, 5000, 'the server to see the close');
      const replacement = await authed();
      await replacement.subscribe('signals');
      expect(tg.gateway.connections.size).toBe(3);
    });

    it('counts connections that have not sent hello yet against the cap', async () => {
      tg = await startGateway({ WEBSOCKET_MAX_CONNECTIONS: '2' });
      const silent = new TestClient(`${tg.ws}/api/v1/ws`);
      clients.push(silent);
      await silent.opened;
      await authed();
      const third = new TestClient(`${tg.ws}/api/v1/ws`);
      clients.push(third);
      await expect(third.opened).rejects.toThrow('HTTP 503');
    });

    it('keeps the connectivity test endpoint open when client connections are at the cap', async () => {
      tg = await startGateway({ WEBSOCKET_MAX_CONNECTIONS: '1' });
      await authed();
      const probe = new TestClient(`${tg.ws}/api/v1/ws/test`, { protocols: [] });
      clients.push(probe);
      await probe.opened;
      expect(await probe.type('welcome')).toMatchObject({ server: 'test-1' });
    });
  });

  describe('WEBSOCKET_ALLOWED_ORIGINS', () => {
    it('refuses an origin that is not listed with HTTP 403', async () => {
      tg = await startGateway({ WEBSOCKET_ALLOWED_ORIGINS: 'https://good.example' });
      const evil = new TestClient(`${tg.ws}/api/v1/ws`, { origin: 'https://evil.example' });
      clients.push(evil);
      await expect(evil.opened).rejects.toThrow('HTTP 403');
      const refused = await refusedUpgrade(tg, '/api/v1/ws', { origin: 'https://evil.example' });
      expect(refused.status).toBe(403);
      expect(refused.body.error.code).toBe('origin_not_allowed');
      expect(refused.body.error.message).toContain('https://evil.example');
      expect(
        await metricValue(
          tg,
          'archon_websocket_connections_rejected_total{reason="origin",server="test-1"}',
        ),
      ).toBe(2);
      expect(tg.logs.some((l) => l.message === 'WebSocket origin refused')).toBe(true);
    });

    it('accepts a listed origin', async () => {
      tg = await startGateway({
        WEBSOCKET_ALLOWED_ORIGINS: 'https://good.example,https://other.example',
      });
      const good = await authed({ origin: 'https://good.example' });
      const other = await authed({ origin: 'https://other.example' });
      expect(await good.subscribe('signals')).toMatchObject({ type: 'subscribed' });
      expect(await other.subscribe('signals')).toMatchObject({ type: 'subscribed' });
    });

    it('accepts a client that sends no Origin header (not a browser)', async () => {
      tg = await startGateway({ WEBSOCKET_ALLOWED_ORIGINS: 'https://good.example' });
      const server = await authed();
      expect(await server.subscribe('signals')).toMatchObject({ type: 'subscribed' });
    });

    it('accepts any origin when none is configured', async () => {
      tg = await startGateway();
      const any = await authed({ origin: 'https://anything.example' });
      expect(await any.subscribe('signals')).toMatchObject({ type: 'subscribed' });
    });
  });
});
