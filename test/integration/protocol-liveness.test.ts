/**
 * Wire protocol v1, liveness, broadcast and handshake (docs/protocol.md): server pings, 4009 for
 * a client that stops answering, client pings, system broadcasts to authenticated clients
 * only, and the `archon.v1` subprotocol.
 */
import { describe, expect, it } from 'vitest';
import { TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { admin, signToken } from '../support/gateway.js';

describe('protocol: liveness, broadcast and subprotocol', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

  /** Answers every server ping with a pong, as the SDK does. */
  function answerPings(c: TestClient): void {
    c.ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary && data.toString() === '{"type":"ping"}') c.send({ op: 'pong' });
    });
  }

  function pings(c: TestClient): number {
    return c.messages.filter((m) => m.type === 'ping').length;
  }

  it('sends {"type":"ping"} again and again, every ping interval', async () => {
    await gw.start({ WEBSOCKET_PING_INTERVAL: '0.2', WEBSOCKET_PING_TIMEOUT: '5' });
    const c = await gw.authed();
    answerPings(c);
    await eventually(() => pings(c) >= 3, 'three pings');
    const ping = c.messages.find((m) => m.type === 'ping');
    expect(ping).toEqual({ type: 'ping' });
  });

  it('keeps a client that answers every ping with pong connected across several intervals', async () => {
    await gw.start({ WEBSOCKET_PING_INTERVAL: '0.2', WEBSOCKET_PING_TIMEOUT: '0.2' });
    const c = await gw.authed();
    answerPings(c);
    let closedWith: number | null = null;
    void c.closed.then(({ code }) => (closedWith = code));
    // Five pings answered spans well over interval + timeout several times.
    await eventually(() => pings(c) >= 5 || closedWith !== null, 'five pings');
    expect(closedWith).toBeNull();
    expect(pings(c)).toBeGreaterThanOrEqual(5);
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect(c.messages.filter((m) => m.type === 'error')).toEqual([]);
    // And it is still served.
    c.send({ op: 'ping' });
    await c.type('pong');
  });

  it('closes a client that stops answering pings with 4009', async () => {
    await gw.start({ WEBSOCKET_PING_INTERVAL: '0.2', WEBSOCKET_PING_TIMEOUT: '0.2' });
    const c = await gw.authed();
    const { code } = await c.closed;
    expect(code).toBe(4009);
    expect(pings(c)).toBeGreaterThanOrEqual(1);
    expect(c.messages.filter((m) => m.type === 'error')).toEqual([
      expect.objectContaining({ code: 'ping_timeout' }),
    ]);
  });

  it('answers a client {"op":"ping"} with {"type":"pong"}', async () => {
    await gw.start();
    const c = await gw.authed();
    c.send({ op: 'ping' });
    expect(await c.type('pong')).toEqual({ type: 'pong' });
    expect(c.ws.readyState).toBe(c.ws.OPEN);
  });

  it('delivers an admin broadcast to every authenticated client and to no unauthenticated one', async () => {
    const g = await gw.start();
    const a = await gw.authed();
    const b = await gw.authed();
    await b.subscribe('signals');
    const anonymous = await gw.connect();

    const res = await admin(g, 'POST', '/broadcast', {
      type: 'system',
      message: 'Please refresh your dashboard',
    });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ delivered: 2, servers: 1 });

    for (const c of [a, b]) {
      const notice = await c.type('system');
      expect(notice).toEqual({
        type: 'system',
        message: 'Please refresh your dashboard',
        ts: expect.any(Number) as number,
      });
    }

    // The anonymous connection authenticates afterwards: the notice was never queued for it.
    anonymous.send({ op: 'hello', token: await signToken() });
    await anonymous.type('welcome');
    anonymous.send({ op: 'ping' });
    await anonymous.type('pong');
    expect(anonymous.messages.filter((m) => m.type === 'system')).toEqual([]);
  });

  it('answers with the archon.v1 subprotocol when the client offers it', async () => {
    await gw.start();
    const c = await gw.connect({ protocols: ['archon.v1'] });
    expect(c.ws.protocol).toBe('archon.v1');

    const picky = await gw.connect({ protocols: ['archon.v0', 'archon.v1'] });
    expect(picky.ws.protocol).toBe('archon.v1');
    picky.send({ op: 'hello', token: await signToken() });
    expect(await picky.type('welcome')).toMatchObject({ server: 'test-1' });
  });
});
