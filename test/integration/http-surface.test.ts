import { request, type IncomingHttpHeaders } from 'node:http';
/**
 * The unauthenticated HTTP and WebSocket surface an operator and a load balancer use
 * (docs/http-api.md, RB-003 "Manual Check" and Step 2): health, the upgrade-header check, the
 * `wscat` connectivity test and answers for paths that do not exist.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { TestClient } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { expectExactly, publish, type ErrorBody } from '../support/gateway.js';
import { TEST_MAX_LONG_HOLDS } from '../../src/protocol/index.js';
import {
  HealthAnswerSchema,
  HealthMessageSchema,
  TestWelcomeSchema,
} from '../../src/protocol/probes.js';

describe('HTTP surface', () => {
  const gw = useGateway();

  beforeEach(async () => {
    await gw.start();
  });

  /** Opens /api/v1/ws/test the way `wscat -c` does: no subprotocol. */
  async function openTest(): Promise<TestClient> {
    const c = gw.track(new TestClient(`${gw.tg.ws}/api/v1/ws/test`, { protocols: [] }));
    await c.opened;
    return c;
  }

  describe('GET /api/health', () => {
    it('answers 200 with status ok and the server id', async () => {
      const res = await fetch(`${gw.tg.http}/api/health`);
      expect(res.status).toBe(200);
      const body: unknown = await res.json();
      expectExactly('/api/health', HealthAnswerSchema, body);
      expect(body).toEqual({ status: 'ok', server: 'test-1', backplane: 'up' });
    });
  });

  describe('/api/v1/ws/health', () => {
    it('answers HEAD with 200 and the Upgrade and Connection headers the runbook checks', async () => {
      // Like `curl -I`: HTTP/1.1, no Connection header of its own.
      const res = await head(`${gw.tg.http}/api/v1/ws/health`);
      expect(res.status).toBe(200);
      expect(res.headers.upgrade).toBe('websocket');
      expect(res.headers.connection).toBe('Upgrade');
    });

    it("keeps a client's Connection: close, so a proxy never reuses a socket Node would refuse", async () => {
      const res = await head(`${gw.tg.http}/api/v1/ws/health`, { connection: 'close' });
      expect(res.status).toBe(200);
      expect(res.headers.upgrade).toBe('websocket');
      expect(res.headers.connection).toBe('Upgrade, close');
      expect(res.socketClosed).toBe(true);
    });

    it('answers GET with 200, the upgrade headers and the server id', async () => {
      const res = await fetch(`${gw.tg.http}/api/v1/ws/health`);
      expect(res.status).toBe(200);
      expect(res.headers.get('upgrade')).toBe('websocket');
      expect(res.headers.get('connection')).toBe('Upgrade');
      expect(await res.json()).toMatchObject({ status: 'ok', server: 'test-1' });
    });

    it('completes a real WebSocket upgrade, sends one health message and closes with 1000', async () => {
      const c = gw.track(new TestClient(`${gw.tg.ws}/api/v1/ws/health`, { protocols: [] }));
      await c.opened;
      const closed = await c.closed;
      expect(closed.code).toBe(1000);
      expect(c.messages).toEqual([{ type: 'health', status: 'ok', server: 'test-1' }]);
      expectExactly('health message', HealthMessageSchema, c.messages[0]);
    });
  });

  describe('WebSocket /api/v1/ws/test', () => {
    it('welcomes the client naming the server', async () => {
      const c = await openTest();
      const welcome = await c.type('welcome');
      expectExactly('test welcome', TestWelcomeSchema, welcome);
      expect(welcome).toMatchObject({ type: 'welcome', endpoint: 'test', server: 'test-1' });
      expect(welcome.message).toEqual(expect.stringContaining('test-1'));
    });

    it('echoes text back', async () => {
      const c = await openTest();
      await c.type('welcome');
      c.send({ type: 'echo', text: 'hello archon' });
      expect(await c.type('echo')).toEqual({ type: 'echo', text: 'hello archon' });
    });

    it('answers text over 1 KiB with an error message and keeps the connection open', async () => {
      const c = await openTest();
      await c.type('welcome');
      c.send({ type: 'echo', text: 'x'.repeat(2000) });
      const error = await c.type('error');
      expect(error).toMatchObject({ type: 'error', code: 'bad_request' });
      expect(error.message).toEqual(expect.stringContaining('1024'));
      c.send({ type: 'echo', text: 'still here' });
      expect(await c.type('echo')).toEqual({ type: 'echo', text: 'still here' });
      expect(c.ws.readyState).toBe(c.ws.OPEN);
    });

    it('closes a client that sends more than 10 messages a second with 1008', async () => {
      const c = await openTest();
      await c.type('welcome');
      for (let i = 0; i < 15; i++) c.send({ type: 'echo', i });
      const closed = await c.closed;
      expect(closed.code).toBe(1008);
      expect(closed.reason).toMatch(/rate/);
      const echoed = c.messages.filter((m) => m.type === 'echo');
      expect(echoed.length).toBeGreaterThan(0);
      expect(echoed.length).toBeLessThanOrEqual(10);
    });
  });

  describe('WebSocket /api/v1/ws/test?hold=', () => {
    it('says in its welcome how long it stays open and the ping settings of client connections', async () => {
      const c = await openTest();
      expect(await c.type('welcome')).toMatchObject({
        closes_after: 60,
        ping_interval: 30,
        ping_timeout: 10,
      });
    });

    it('holds the connection silent for the seconds asked, then closes with 1000', async () => {
      const c = gw.track(new TestClient(`${gw.tg.ws}/api/v1/ws/test?hold=2`, { protocols: [] }));
      let pings = 0;
      c.ws.on('ping', () => pings++);
      await c.opened;
      expect(await c.type('welcome')).toMatchObject({ closes_after: 2 });
      const closed = await c.closed;
      expect(closed).toEqual({ code: 1000, reason: 'test connection time limit (2 s)' });
      // Nothing but the welcome: no messages, no ping frames, so a proxy sees an idle line.
      expect(c.messages.map((m) => m.type)).toEqual(['welcome']);
      expect(pings).toBe(0);
    });

    it.each(['abc', '0', '301', '1.5', '-1', '99999', '5&hold=6'])(
      'refuses hold=%s with 400 and a JSON bad_request error',
      async (value) => {
        const c = gw.track(
          new TestClient(`${gw.tg.ws}/api/v1/ws/test?hold=${value}`, { protocols: [] }),
        );
        await expect(c.opened).rejects.toThrow('HTTP 400');
        const res = await rawUpgrade(`${gw.tg.http}/api/v1/ws/test?hold=${value}`);
        expect(res.status).toBe(400);
        expect(JSON.parse(res.body)).toEqual({
          error: {
            code: 'bad_request',
            message: expect.stringMatching(
              /^hold must be a whole number of seconds from 1 to 300 \(got "/,
            ) as string,
          },
        });
        // The gateway still serves.
        expect(await (await openTest()).type('welcome')).toMatchObject({ server: 'test-1' });
      },
    );
  });

  describe('long holds on /api/v1/ws/test', () => {
    it(`keeps at most ${TEST_MAX_LONG_HOLDS} holds over a minute open, while the one-minute test stays available`, async () => {
      const held: TestClient[] = [];
      for (let i = 0; i < TEST_MAX_LONG_HOLDS; i++) {
        const c = gw.track(
          new TestClient(`${gw.tg.ws}/api/v1/ws/test?hold=120`, { protocols: [] }),
        );
        await c.opened;
        held.push(c);
      }
      const refused = await rawUpgrade(`${gw.tg.http}/api/v1/ws/test?hold=120`);
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('30');
      expect(JSON.parse(refused.body)).toMatchObject({
        error: {
          code: 'test_endpoint_busy',
          message: expect.stringContaining('hold for 60 s or less') as string,
        },
      });
      // The ordinary test (and a hold of a minute or less) is not affected.
      expect(await (await openTest()).type('welcome')).toMatchObject({ server: 'test-1' });
      const short = gw.track(
        new TestClient(`${gw.tg.ws}/api/v1/ws/test?hold=60`, { protocols: [] }),
      );
      await short.opened;

      // A slot frees when a held connection ends.
      held[0]?.ws.close();
      let again = await rawUpgrade(`${gw.tg.http}/api/v1/ws/test?hold=120`).catch((e: Error) => e);
      for (let tries = 0; !(again instanceof Error) && tries < 50; tries++) {
        await new Promise((r) => setTimeout(r, 50));
        again = await rawUpgrade(`${gw.tg.http}/api/v1/ws/test?hold=120`).catch((e: Error) => e);
      }
      expect(again).toBeInstanceOf(Error);
      expect((again as Error).message).toBe('upgraded');
    });
  });

  describe('unknown paths', () => {
    it('answers an unknown HTTP path with 404 and a JSON not_found error', async () => {
      const res = await fetch(`${gw.tg.http}/api/v1/nothing-here`);
      expect(res.status).toBe(404);
      const body = (await res.json()) as ErrorBody;
      expect(body.error.code).toBe('not_found');
      expect(body.error.message).toContain('/api/v1/nothing-here');
    });

    it('refuses a WebSocket upgrade to an unknown path with 404', async () => {
      const c = gw.track(new TestClient(`${gw.tg.ws}/api/v1/nothing-here`));
      await expect(c.opened).rejects.toThrow('HTTP 404');
      const after = await publish(gw.tg, { channel: 'signals', data: { still: 'working' } });
      expect(after.status).toBe(200);
    });
  });
});

/** A HEAD request with node:http, whose headers (unlike fetch's) the test controls. */
function head(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: IncomingHttpHeaders; socketClosed: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'HEAD', headers }, (res) => {
      res.resume();
      res.on('end', () => {
        // Give the server's close a moment to arrive before asking whether it did.
        setTimeout(
          () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              socketClosed: res.socket?.destroyed ?? req.socket?.destroyed ?? true,
            }),
          50,
        );
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A WebSocket upgrade request by hand, to read the body of a refusal. */
function rawUpgrade(
  url: string,
): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      reject(new Error('upgraded'));
    });
    req.on('error', reject);
    req.end();
  });
}
