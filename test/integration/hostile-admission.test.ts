/**
 * Admission under attack (docs/security.md, Fair admission): sockets that never say hello, one
 * user or one address opening more than its share, and floods of /api/v1/ws/health upgrades
 * must not keep real users out or hold server resources for long.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import type { ErrorBody } from '../support/gateway.js';
import { errorsOf, TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { publish, signToken } from '../support/gateway.js';
import { metricValue } from '../support/metrics.js';
import { rawUpgrade, type RawUpgrade } from '../support/hostile.js';

describe('admission under attack', () => {
  // Silent sockets must stay silent for the whole test, not be closed by the auth timeout.
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2', WEBSOCKET_AUTH_TIMEOUT: '60' });
  let jwks: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((resolve) => (jwks ? jwks.close(() => resolve()) : resolve()));
    jwks = undefined;
  });

  /** `n` sockets opened one after the other (oldest first) that never send hello. */
  async function silentSockets(n: number): Promise<TestClient[]> {
    const sockets: TestClient[] = [];
    for (let i = 0; i < n; i++) sockets.push(await gw.connect());
    return sockets;
  }

  /** A user connects, authenticates, subscribes and receives an event. */
  async function userIsServed(sub: string, options: { localAddress?: string } = {}) {
    const user = await gw.authed({ sub }, options);
    const channel = `signals:${sub}`;
    await user.subscribe(channel);
    expect((await publish(gw.tg, { channel, data: { for: sub } })).status).toBe(200);
    expect(await user.type('event')).toMatchObject({ channel, seq: 1, data: { for: sub } });
    return user;
  }

  describe('sockets that never send hello', () => {
    it('do not keep a real user out at WEBSOCKET_MAX_CONNECTIONS: the oldest one is closed with 1013 and unauthenticated_evicted', async () => {
      const tg = await gw.start({ WEBSOCKET_MAX_CONNECTIONS: '20' });
      const silent = await silentSockets(20);
      await userIsServed('real-user');
      const [oldest, ...rest] = silent as [TestClient, ...TestClient[]];
      expect((await oldest.closed).code).toBe(1013);
      expect(errorsOf(oldest).map((m) => m.code)).toEqual(['unauthenticated_evicted']);
      for (const s of rest) expect(s.ws.readyState).toBe(s.ws.OPEN);
      expect(tg.gateway.connections.size).toBeLessThanOrEqual(20);
    });

    it('are capped by WEBSOCKET_MAX_UNAUTHENTICATED: each newcomer over the cap closes the oldest silent one, authenticated users stay', async () => {
      await gw.start({ WEBSOCKET_MAX_UNAUTHENTICATED: '5', WEBSOCKET_MAX_CONNECTIONS: '100' });
      const users = [await gw.authed({ sub: 'u1' }), await gw.authed({ sub: 'u2' })];
      const silent = await silentSockets(8);
      for (const evicted of silent.slice(0, 3)) {
        expect((await evicted.closed).code).toBe(1013);
        expect(errorsOf(evicted).map((m) => m.code)).toEqual(['unauthenticated_evicted']);
      }
      for (const s of silent.slice(3)) expect(s.ws.readyState).toBe(s.ws.OPEN);
      for (const u of users) {
        u.send({ op: 'ping' });
        await u.type('pong');
      }
      await userIsServed('late-user');
    });

    it('evicts silent sockets before a client whose token is still being checked', async () => {
      // The key server answers only when the test says so: the client's hello stays pending
      // while newcomers overflow the unauthenticated cap.
      const { publicKey, privateKey } = await generateKeyPair('ES256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
      let answer: () => void = () => {};
      const keysAsked = new Promise<void>((asked) => {
        jwks = createServer((_req, res) => {
          asked();
          answer = () => {
            res.setHeader('content-type', 'application/json');
            res.end(JSON.stringify({ keys: [jwk] }));
          };
        });
      });
      await new Promise<void>((resolve) => jwks?.listen(0, '127.0.0.1', resolve));
      const port = (jwks?.address() as AddressInfo).port;
      await gw.start({
        ARCHON_JWT_SECRET: '',
        ARCHON_JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
        WEBSOCKET_MAX_UNAUTHENTICATED: '3',
      });
      const trader = await gw.connect();
      const token = await new SignJWT({ accounts: ['ACC1'] })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject('trader')
        .setExpirationTime('1h')
        .sign(privateKey);
      trader.send({ op: 'hello', token });
      await keysAsked;
      // Six newcomers against a cap of three: each evicts the oldest silent socket, never the
      // trader (the oldest of all, but waiting on its key).
      const silent = await silentSockets(6);
      for (const evicted of silent.slice(0, 4)) expect((await evicted.closed).code).toBe(1013);
      expect(trader.ws.readyState).toBe(trader.ws.OPEN);
      answer();
      expect(await trader.type('welcome')).toMatchObject({ type: 'welcome' });
    });

    it('still answers 503 at_capacity when the instance is full of authenticated users', async () => {
      const tg = await gw.start({ WEBSOCKET_MAX_CONNECTIONS: '3' });
      const users = [
        await gw.authed({ sub: 'u1' }),
        await gw.authed({ sub: 'u2' }),
        await gw.authed({ sub: 'u3' }),
      ];
      const refused = await rawUpgrade(tg, '/api/v1/ws', { protocol: 'archon.v1' });
      expect(refused.status).toBe(503);
      expect((JSON.parse(refused.body) as ErrorBody).error.code).toBe('at_capacity');
      for (const u of users) expect(u.ws.readyState).toBe(u.ws.OPEN);
    });
  });

  describe('WEBSOCKET_MAX_CONNECTIONS_PER_USER', () => {
    it('refuses a 4th hello of the same user with user_connection_limit and 1013, and lets other users in', async () => {
      const tg = await gw.start({ WEBSOCKET_MAX_CONNECTIONS_PER_USER: '3' });
      const alice = [
        await gw.authed({ sub: 'alice' }),
        await gw.authed({ sub: 'alice' }),
        await gw.authed({ sub: 'alice' }),
      ];
      const fourth = await gw.connect();
      fourth.send({ op: 'hello', token: await signToken({ sub: 'alice' }), client: 'test/1.0' });
      expect((await fourth.closed).code).toBe(1013);
      expect(errorsOf(fourth).map((m) => m.code)).toEqual(['user_connection_limit']);
      expect(fourth.messages.some((m) => m.type === 'welcome')).toBe(false);

      await userIsServed('bob');
      for (const a of alice) {
        a.send({ op: 'ping' });
        await a.type('pong');
      }
      expect(
        await metricValue(tg, 'archon_websocket_connections_rejected_total', {
          reason: 'per_user',
        }),
      ).toBe(1);

      // A slot freed by one of alice's connections is hers again.
      const before = tg.gateway.connections.size;
      alice[0]?.close();
      await eventually(() => tg.gateway.connections.size < before, 'the server to see the close');
      await gw.authed({ sub: 'alice' });
    });
  });

  describe('WEBSOCKET_MAX_CONNECTIONS_PER_IP', () => {
    it('refuses the 4th upgrade from 127.0.0.1 with HTTP 429 ip_connection_limit and Retry-After, and lets another address in', async () => {
      const tg = await gw.start({ WEBSOCKET_MAX_CONNECTIONS_PER_IP: '3' });
      await gw.authed({ sub: 'u1' });
      await gw.authed({ sub: 'u2' });
      await gw.authed({ sub: 'u3' });
      const fourth = gw.track(new TestClient(`${tg.ws}/api/v1/ws`));
      await expect(fourth.opened).rejects.toThrow('HTTP 429');
      const refused = await rawUpgrade(tg, '/api/v1/ws', { protocol: 'archon.v1' });
      expect(refused.status).toBe(429);
      expect(refused.headers['retry-after']).toMatch(/^\d+$/);
      expect((JSON.parse(refused.body) as ErrorBody).error.code).toBe('ip_connection_limit');

      await userIsServed('elsewhere', { localAddress: '127.0.0.2' });
      expect(
        await metricValue(tg, 'archon_websocket_connections_rejected_total', { reason: 'per_ip' }),
      ).toBe(2);
    });

    it('counts the client address from X-Forwarded-For when the peer is a trusted proxy', async () => {
      const tg = await gw.start({
        WEBSOCKET_MAX_CONNECTIONS_PER_IP: '2',
        ARCHON_TRUSTED_PROXIES: '127.0.0.1',
      });
      const behind = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
      await gw.authed({ sub: 'u1' }, behind('203.0.113.7'));
      await gw.authed({ sub: 'u2' }, behind('203.0.113.7'));
      const third = gw.track(new TestClient(`${tg.ws}/api/v1/ws`, behind('203.0.113.7')));
      await expect(third.opened).rejects.toThrow('HTTP 429');
      // Other clients behind the same proxy are other addresses.
      await gw.authed({ sub: 'u3' }, behind('203.0.113.8'));
      await gw.authed({ sub: 'u4' }, behind('198.51.100.1, 203.0.113.9'));
    });
  });

  describe('/api/v1/ws/health', () => {
    it('caps health upgrades at once: of 130 sent together some are answered 503 at_capacity', async () => {
      const tg = await gw.start();
      const answers = await Promise.all(
        Array.from({ length: 130 }, () => rawUpgrade(tg, '/api/v1/ws/health')),
      );
      try {
        const upgraded = answers.filter((a) => a.status === 101);
        const refused = answers.filter((a) => a.status !== 101);
        expect(upgraded.length).toBeGreaterThan(0);
        expect(refused.length).toBeGreaterThan(0);
        for (const r of refused) {
          expect(r.status).toBe(503);
          expect((JSON.parse(r.body) as ErrorBody).error.code).toBe('at_capacity');
        }
        expect((await fetch(`${tg.http}/api/health`)).status).toBe(200);
      } finally {
        for (const a of answers) a.socket.destroy();
      }
    });

    it('cuts a health socket whose peer never answers the close', async () => {
      const tg = await gw.start();
      const health: RawUpgrade = await rawUpgrade(tg, '/api/v1/ws/health');
      try {
        expect(health.status).toBe(101);
        // This side never writes again: no close frame answers the server's.
        await eventually(() => health.socket.closed, 'the server to cut the socket', {
          timeoutMs: 10_000,
        });
        expect(health.received()).toContain('"type":"health"');
      } finally {
        health.socket.destroy();
      }
    });
  });
});
