/**
 * Floods (docs/security.md): while each attack runs, a legitimate user subscribed to `signals`
 * must receive every published event in order (seq 1..N, no gap, no duplicate) and get a `pong`
 * to its `ping`. The attackers are refused as documented; nobody else notices.
 */
import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { BATCH, bigSignals } from '../support/admin.js';
import { clientId, errorsOf, type TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { publish, signToken, type ErrorBody } from '../support/gateway.js';
import { bystander, expectEverySignal, history, serveBystander } from '../support/hostile.js';

/** Signals published to the bystander during each flood. */
const N = 30;

describe('floods while a legitimate user is served', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2', WEBSOCKET_AUTH_TIMEOUT: '60' });

  /** Opens `n` sockets at once; none of them says hello. */
  function openMany(n: number): Promise<TestClient[]> {
    return Promise.all(Array.from({ length: n }, () => gw.connect()));
  }

  it('of idle sockets that never send hello, at the unauthenticated cap: the oldest are evicted with 1013', async () => {
    const tg = await gw.start({ WEBSOCKET_MAX_UNAUTHENTICATED: '10' });
    const legit = await bystander(gw);
    let idle: TestClient[] = [];
    const flood = async () => {
      for (let wave = 0; wave < 3; wave++) idle = idle.concat(await openMany(10));
    };
    await Promise.all([flood(), serveBystander(tg, legit, N)]);
    // At most 10 stay: every newcomer over the cap made the oldest idle socket go.
    await eventually(
      () => idle.filter((s) => s.ws.readyState === s.ws.OPEN).length <= 10,
      'the idle sockets to be back under the cap of 10',
      { timeoutMs: 10_000 },
    );
    // Each wave made room by closing the one before it: the newest 10 are the ones left.
    for (const s of idle.slice(20)) expect(s.ws.readyState).toBe(s.ws.OPEN);
    const evicted = idle.slice(0, 20);
    for (const s of evicted) {
      expect((await s.closed).code).toBe(1013);
      expect(errorsOf(s).map((m) => m.code)).toEqual(['unauthenticated_evicted']);
    }
    await expectEverySignal(legit, N);
  });

  it('of garbage frames from many sockets: each sender is closed with 4400', async () => {
    const tg = await gw.start();
    const legit = await bystander(gw);
    const attackers = [
      ...(await openMany(15)),
      ...(await Promise.all(Array.from({ length: 5 }, (_, i) => gw.authed({ sub: `g${i}` })))),
    ];
    const flood = async () => {
      for (const a of attackers) {
        a.send('\u0000\u0001 not json');
        a.send('{"op":');
      }
      await Promise.all(attackers.map((a) => a.closed));
    };
    await Promise.all([flood(), serveBystander(tg, legit, N)]);
    for (const a of attackers) expect((await a.closed).code).toBe(4400);
    await expectEverySignal(legit, N);
  });

  it('of frames larger than WEBSOCKET_MAX_MESSAGE_SIZE: each sender is closed with 1009', async () => {
    const tg = await gw.start({ WEBSOCKET_MAX_MESSAGE_SIZE: '1024' });
    const legit = await bystander(gw);
    const attackers = [
      ...(await openMany(5)),
      ...(await Promise.all(Array.from({ length: 5 }, (_, i) => gw.authed({ sub: `o${i}` })))),
    ];
    const flood = async () => {
      for (const a of attackers) a.send({ op: 'ping', pad: 'x'.repeat(8 * 1024) });
      await Promise.all(attackers.map((a) => a.closed));
    };
    await Promise.all([flood(), serveBystander(tg, legit, N)]);
    for (const a of attackers) expect((await a.closed).code).toBe(1009);
    await expectEverySignal(legit, N);
  });

  it('of ping ops from an authenticated client: it is closed with 1008 rate_limited', async () => {
    const tg = await gw.start({ WEBSOCKET_MAX_MESSAGES_PER_SECOND: '20' });
    const legit = await bystander(gw);
    const attacker = await gw.authed({ sub: 'pinger' });
    const flood = async () => {
      for (let i = 0; i < 500 && attacker.ws.readyState === attacker.ws.OPEN; i++)
        attacker.send({ op: 'ping' });
      await attacker.closed;
    };
    await Promise.all([flood(), serveBystander(tg, legit, N)]);
    expect((await attacker.closed).code).toBe(1008);
    expect(errorsOf(attacker).map((m) => m.code)).toEqual(['rate_limited']);
    expect(attacker.messages.filter((m) => m.type === 'pong').length).toBeLessThan(500);
    await expectEverySignal(legit, N);
  });

  it('of subscribers that stop reading: they are closed with 4008, the reader gets every event', async () => {
    const tg = await gw.start({
      WEBSOCKET_MESSAGE_QUEUE_SIZE: '50',
      WEBSOCKET_BROADCAST_TIMEOUT: '1',
      WEBSOCKET_HISTORY_SIZE: '5000',
    });
    const legit = await bystander(gw);
    const stalled: TestClient[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await gw.authed({ sub: `stalled-${i}` });
      await c.subscribe('signals');
      c.ws.pause();
      stalled.push(c);
    }
    const ids = stalled.map(clientId);
    const gone = () => {
      const closed = tg.logs.filter((l) => l.message === 'Slow consumer closed');
      return ids.every((id) => closed.some((l) => l.client_id === id));
    };
    let published = 0;
    // Large events fill the stalled sockets fast; stop once all four were let go.
    while (!gone() && published < 40 * BATCH) {
      const res = await publish(tg, { events: bigSignals(published) });
      expect(res.status).toBe(200);
      published += BATCH;
      if (published === 2 * BATCH) {
        legit.send({ op: 'ping' });
        await legit.type('pong', 10_000);
      }
    }
    for (const c of stalled) {
      c.ws.resume();
      expect((await c.closed).code).toBe(4008);
    }
    await expectEverySignal(legit, published);
  });

  it('of GET /api/v1/history from one user: 429 rate_limited with Retry-After, another user still gets 200', async () => {
    const tg = await gw.start();
    const legit = await bystander(gw);
    const flooder = await signToken({ sub: 'flooder' });
    const answers: Awaited<ReturnType<typeof history>>[] = [];
    const flood = async () => {
      answers.push(
        ...(await Promise.all(
          Array.from({ length: 60 }, () => history(tg, 'channel=signals&since_seq=0', flooder)),
        )),
      );
    };
    await Promise.all([flood(), serveBystander(tg, legit, N)]);
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    for (const a of limited) {
      expect((a.body as ErrorBody).error.code).toBe('rate_limited');
      expect(a.headers.get('retry-after')).toMatch(/^\d+$/);
    }
    for (const a of answers) expect([200, 429]).toContain(a.status);
    const other = await history(tg, 'channel=signals&since_seq=0', await signToken({ sub: 'u2' }));
    expect(other.status).toBe(200);
    await expectEverySignal(legit, N);
  });

  it('of GET /api/v1/history with made-up tokens from one address: refused 429 before any token is checked, other addresses still served', async () => {
    const tg = await gw.start();
    // Past the address's burst (100) the answers are 429, never 401: the token is not read.
    const answers = await Promise.all(
      Array.from({ length: 150 }, () => history(tg, 'channel=signals&since_seq=0', 'not-a-jwt')),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s !== 401 && s !== 429)).toEqual([]);
    const refused = answers.find((a) => a.status === 429);
    expect((refused?.body as ErrorBody).error.message).toContain('from this address');
    // Another address, with a real token, is served.
    const token = await signToken({ sub: 'elsewhere' });
    const other = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${tg.http}/api/v1/history?channel=signals&since_seq=0`,
        { localAddress: '127.0.0.2', headers: { authorization: `Bearer ${token}` } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(other).toBe(200);
  });
});
