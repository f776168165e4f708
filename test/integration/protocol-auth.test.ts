/**
 * Wire protocol v1, authentication (docs/protocol.md#authentication): hello first, within the
 * auth timeout, with a valid unexpired JWT; 4001 for every way of getting that wrong; tokens
 * never logged.
 */
import { describe, expect, it } from 'vitest';
import { errorsOf } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { ADMIN_TOKEN, JWT_SECRET, PUBLISH_TOKEN, publish, signToken } from '../support/gateway.js';

const FAST = {
  WEBSOCKET_AUTH_TIMEOUT: '0.3',
  WEBSOCKET_PING_INTERVAL: '7',
  WEBSOCKET_PING_TIMEOUT: '3',
  WEBSOCKET_SHUTDOWN_TIMEOUT: '2',
};

describe('protocol: authentication', () => {
  const gw = useGateway(FAST);

  it('answers hello with a welcome naming the client id, the server and the ping timings', async () => {
    await gw.start();
    const c = await gw.connect();
    c.send({ op: 'hello', token: await signToken(), client: 'archon-dashboard/1.4.2' });
    const welcome = await c.type('welcome');
    expect(welcome).toMatchObject({
      type: 'welcome',
      server: 'test-1',
      ping_interval: 7,
      ping_timeout: 3,
    });
    expect(welcome.client_id).toEqual(expect.stringMatching(/^c_[0-9a-f]+$/));

    // Each connection gets its own id.
    const other = await gw.connect();
    other.send({ op: 'hello', token: await signToken({ sub: 'user-2' }) });
    const otherWelcome = await other.type('welcome');
    expect(otherWelcome.client_id).not.toBe(welcome.client_id);
  });

  it('accepts a hello and a subscribe sent back to back without waiting for the welcome', async () => {
    const g = await gw.start();
    const c = await gw.connect();
    const token = await signToken();
    // Both frames leave in the same turn: the server must handle them in order.
    c.send({ op: 'hello', token });
    c.send({ op: 'subscribe', id: 1, channel: 'signals' });
    const subscribed = await c.next((m) => m.type === 'subscribed' || m.type === 'error');
    expect(subscribed).toMatchObject({ type: 'subscribed', id: 1, channel: 'signals' });
    const types = c.messages.map((m) => m.type);
    expect(types.indexOf('welcome')).toBeGreaterThanOrEqual(0);
    expect(types.indexOf('welcome')).toBeLessThan(types.indexOf('subscribed'));
    expect(errorsOf(c)).toEqual([]);

    const res = await publish(g, { channel: 'signals', data: { n: 1 } });
    expect(res.status).toBe(200);
    expect(await c.type('event')).toMatchObject({ channel: 'signals', seq: 1 });
  });

  it('closes a client that sends no hello within the auth timeout with auth_timeout and 4001', async () => {
    await gw.start();
    const c = await gw.connect();
    const { code } = await c.closed;
    expect(code).toBe(4001);
    expect(errorsOf(c)).toEqual([expect.objectContaining({ code: 'auth_timeout' })]);
    expect(c.messages.some((m) => m.type === 'welcome')).toBe(false);
  });

  it('refuses a token signed with the wrong secret with unauthorized and 4001', async () => {
    await gw.start({ WEBSOCKET_AUTH_TIMEOUT: '5' });
    const c = await gw.connect();
    const forged = await signToken({}, 'not-the-gateway-secret-0123456789abcdef');
    c.send({ op: 'hello', token: forged });
    const { code } = await c.closed;
    expect(code).toBe(4001);
    expect(errorsOf(c)).toEqual([expect.objectContaining({ code: 'unauthorized' })]);
    expect(c.messages.some((m) => m.type === 'welcome')).toBe(false);
  });

  it('refuses a token that has already expired at hello with token_expired and 4001', async () => {
    await gw.start({ WEBSOCKET_AUTH_TIMEOUT: '5' });
    const c = await gw.connect();
    const expired = await signToken({ exp: Math.floor(Date.now() / 1000) - 60 });
    c.send({ op: 'hello', token: expired });
    const { code } = await c.closed;
    expect(code).toBe(4001);
    expect(errorsOf(c)).toEqual([expect.objectContaining({ code: 'token_expired' })]);
    expect(c.messages.some((m) => m.type === 'welcome')).toBe(false);
  });

  it('closes a connection with token_expired and 4001 when its token expires while connected', async () => {
    await gw.start();
    // exp is in whole seconds: two seconds ahead leaves at least one second of validity.
    const token = await signToken({ exp: Math.floor(Date.now() / 1000) + 2 });
    const c = await gw.authed(token);
    // Still served while the token is valid.
    c.send({ op: 'ping' });
    await c.type('pong');
    expect(c.ws.readyState).toBe(c.ws.OPEN);

    const { code } = await c.closed;
    expect(code).toBe(4001);
    expect(errorsOf(c)).toEqual([expect.objectContaining({ code: 'token_expired' })]);
  });

  it('closes a client whose first message is a subscribe with not_authenticated and 4001', async () => {
    await gw.start({ WEBSOCKET_AUTH_TIMEOUT: '5' });
    const c = await gw.connect();
    c.send({ op: 'subscribe', id: 1, channel: 'signals' });
    const { code } = await c.closed;
    expect(code).toBe(4001);
    expect(errorsOf(c)).toEqual([expect.objectContaining({ code: 'not_authenticated' })]);
    expect(c.messages.some((m) => m.type === 'subscribed')).toBe(false);
  });

  it('never writes a token or a secret to the gateway logs', async () => {
    const g = await gw.start({ WEBSOCKET_AUTH_TIMEOUT: '5' });
    const good = await signToken({ sub: 'user-log' });
    const forged = await signToken({ sub: 'user-log' }, 'another-secret-0123456789abcdef0123456');
    const expired = await signToken({ exp: Math.floor(Date.now() / 1000) - 60 });

    // A successful hello (logged at debug), a bad signature and an expired token (logged
    // as authentication failures), and the same tokens on the HTTP history endpoint.
    const ok = await gw.authed(good);
    await ok.subscribe('signals');
    for (const token of [forged, expired, 'not.a.jwt']) {
      const c = await gw.connect();
      c.send({ op: 'hello', token });
      expect((await c.closed).code).toBe(4001);
    }
    for (const token of [good, forged, expired]) {
      await fetch(`${g.http}/api/v1/history?channel=signals`, {
        headers: { authorization: `Bearer ${token}` },
      });
    }
    expect(
      (await publish(g, { channel: 'signals', data: { n: 1 } }, 'pub_wrong_token_xyz')).status,
    ).toBe(401);

    const text = g.logText();
    // The log did record the failures, so the check below looks at real log lines.
    expect(g.logs.some((l) => l.message === 'Authentication failed')).toBe(true);
    for (const secret of [good, forged, expired, JWT_SECRET, ADMIN_TOKEN, PUBLISH_TOKEN]) {
      expect(text).not.toContain(secret);
    }
    // Not even the signature part of a token on its own.
    for (const token of [good, forged, expired]) {
      const signature = token.split('.')[2] ?? '';
      expect(signature.length).toBeGreaterThan(10);
      expect(text).not.toContain(signature);
    }
    expect(text).not.toContain('pub_wrong_token_xyz');
  });
});
