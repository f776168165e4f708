/**
 * Wire protocol v1, bad input (docs/protocol.md#limits-and-protocol-errors): one malformed
 * message gets an error, a second closes with 4400; oversize messages close with 1009, floods
 * with 1008; and whatever a client sends, the gateway keeps serving everyone else.
 */
import { describe, expect, it } from 'vitest';
import { errorsOf, type TestClient } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { publish, type TestGateway } from '../support/gateway.js';

describe('protocol: bad input', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

  /** The connection still works: a ping is answered. */
  async function stillServed(c: TestClient): Promise<void> {
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    c.send({ op: 'ping' });
    await c.type('pong');
  }

  /** The gateway process is alive and serves a brand-new client end to end. */
  async function gatewayServesNewClients(g: TestGateway): Promise<void> {
    const fresh = await gw.authed();
    await fresh.subscribe('signals:after-bad-input');
    const res = await publish(g, { channel: 'signals:after-bad-input', data: { ok: true } });
    expect(res.status).toBe(200);
    expect(await fresh.type('event')).toMatchObject({
      channel: 'signals:after-bad-input',
      data: { ok: true },
    });
  }

  it('answers a message that is not JSON with invalid_json and keeps the connection open', async () => {
    const g = await gw.start();
    const c = await gw.authed();
    c.send('{"op":"subscribe",');
    expect(await c.type('error')).toMatchObject({ type: 'error', code: 'invalid_json' });
    await stillServed(c);
    await gatewayServesNewClients(g);
  });

  it('closes with 4400 on a second malformed message', async () => {
    const g = await gw.start();
    const c = await gw.authed();
    c.send('not json');
    expect(await c.type('error')).toMatchObject({ code: 'invalid_json' });
    c.send('still not json');
    const { code } = await c.closed;
    expect(code).toBe(4400);
    expect(errorsOf(c).map((m) => m.code)).toEqual(['invalid_json', 'invalid_json']);
    await gatewayServesNewClients(g);
  });

  it('answers an unknown op with unknown_op and the request id', async () => {
    const g = await gw.start();
    const c = await gw.authed();
    c.send({ op: 'frobnicate', id: 12 });
    expect(await c.type('error')).toMatchObject({ type: 'error', id: 12, code: 'unknown_op' });
    await stillServed(c);
    await gatewayServesNewClients(g);
  });

  it('answers a binary frame with an error instead of treating it as a message', async () => {
    const g = await gw.start();
    const c = await gw.authed();
    c.ws.send(Buffer.from(JSON.stringify({ op: 'ping' })), { binary: true });
    const error = await c.next((m) => m.type === 'error' || m.type === 'pong');
    expect(error).toMatchObject({ type: 'error', code: 'bad_request' });
    await stillServed(c);
    await gatewayServesNewClients(g);
  });

  it('closes with 1009 on a message larger than WEBSOCKET_MAX_MESSAGE_SIZE', async () => {
    const g = await gw.start({ WEBSOCKET_MAX_MESSAGE_SIZE: '1024' });
    const c = await gw.authed();
    // Just under the limit is fine…
    c.send({ op: 'subscribe', id: 1, channel: 'signals', pad: 'x'.repeat(900) });
    expect(await c.type('subscribed')).toMatchObject({ id: 1 });
    // …over it is not.
    c.send({ op: 'subscribe', id: 2, channel: 'signals', pad: 'x'.repeat(2048) });
    const { code } = await c.closed;
    expect(code).toBe(1009);
    await gatewayServesNewClients(g);
  });

  it('closes with 1008 a client that sends more than WEBSOCKET_MAX_MESSAGES_PER_SECOND', async () => {
    const g = await gw.start({ WEBSOCKET_MAX_MESSAGES_PER_SECOND: '5' });
    const c = await gw.authed();
    for (let i = 0; i < 20; i++) c.send({ op: 'ping' });
    const { code } = await c.closed;
    expect(code).toBe(1008);
    expect(errorsOf(c)).toEqual([expect.objectContaining({ code: 'rate_limited' })]);
    // Fewer pongs than pings: the flood was cut, not served.
    expect(c.messages.filter((m) => m.type === 'pong').length).toBeLessThan(20);
    await gatewayServesNewClients(g);
  });
});
