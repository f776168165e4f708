/**
 * Wire protocol v1, tokens renewed in place (docs/protocol.md#refresh): a new token for the
 * same user moves the connection's expiry and re-checks its subscriptions against the new
 * accounts; a refused one changes nothing. Against a real gateway over real sockets.
 */
import { describe, expect, it } from 'vitest';
import { errorsOf } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { publish, signToken } from '../support/gateway.js';

const inSeconds = (s: number) => Math.floor(Date.now() / 1000) + s;

describe('protocol: refresh', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

  it('keeps a connection open past its first token expiry once refreshed', async () => {
    const g = await gw.start();
    // exp is in whole seconds: two seconds ahead leaves at least one second of validity.
    const c = await gw.authed(await signToken({ exp: inSeconds(2) }));
    c.send({ op: 'subscribe', id: 1, channel: 'signals' });
    await c.type('subscribed');
    const exp = inSeconds(60);
    c.send({ op: 'refresh', id: 'r1', token: await signToken({ exp }) });
    expect(await c.type('refreshed')).toEqual({
      type: 'refreshed',
      id: 'r1',
      expires_at: exp * 1000,
    });
    // Past the first token's expiry (the sweep runs every second): still open, still served.
    await new Promise((r) => setTimeout(r, 3000));
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect((await publish(g, { channel: 'signals', data: { n: 1 } })).status).toBe(200);
    expect(await c.type('event')).toMatchObject({ channel: 'signals', seq: 1 });
    expect(errorsOf(c)).toEqual([]);
  });

  it('ends the subscriptions a narrower token no longer covers, and only those', async () => {
    const g = await gw.start();
    const c = await gw.authed(await signToken({ accounts: ['ACC1', 'ACC2'] }));
    for (const [id, channel] of ['signals', 'risk:ACC1', 'risk:ACC2', 'positions:ACC2'].entries())
      c.send({ op: 'subscribe', id, channel });
    for (let i = 0; i < 4; i++) await c.type('subscribed');
    c.send({ op: 'refresh', id: 7, token: await signToken({ accounts: ['ACC1'] }) });
    await c.type('refreshed');
    const ended = c.messages.filter((m) => m.type === 'unsubscribed');
    expect(ended.map((m) => m.channel).sort()).toEqual(['positions:ACC2', 'risk:ACC2']);
    expect(ended.every((m) => m.reason === 'forbidden' && m.id === undefined)).toBe(true);
    // The `unsubscribed` messages come before the answer.
    const types = c.messages.map((m) => m.type);
    expect(types.lastIndexOf('unsubscribed')).toBeLessThan(types.indexOf('refreshed'));

    // Nothing of an ended channel arrives after it; the others go on.
    const answer = await publish(g, {
      events: [
        { channel: 'risk:ACC2', data: { n: 1 } },
        { channel: 'risk:ACC1', data: { n: 2 } },
      ],
    });
    expect(answer.status).toBe(200);
    expect(await c.type('event')).toMatchObject({ channel: 'risk:ACC1' });
    c.send({ op: 'ping' });
    await c.type('pong');
    expect(c.messages.filter((m) => m.type === 'event').map((m) => m.channel)).toEqual([
      'risk:ACC1',
    ]);
    // And the account is now refused on subscribe, as for any token without it.
    c.send({ op: 'subscribe', id: 9, channel: 'risk:ACC2' });
    expect(await c.next((m) => m.type === 'error')).toMatchObject({ id: 9, code: 'forbidden' });
  });

  it('refuses a token for another user and changes nothing', async () => {
    await gw.start();
    const c = await gw.authed(await signToken({ sub: 'user-1', exp: inSeconds(2) }));
    c.send({
      op: 'refresh',
      id: 'r',
      token: await signToken({ sub: 'user-2', exp: inSeconds(60) }),
    });
    const error = await c.next((m) => m.type === 'error');
    expect(error).toMatchObject({ id: 'r', code: 'refresh_refused' });
    expect(String(error.message)).toContain('user-2');
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    // The old token still rules: the connection ends when it expires.
    const { code } = await c.closed;
    expect(code).toBe(4001);
    expect(errorsOf(c).map((e) => e.code)).toEqual(['refresh_refused', 'token_expired']);
  });

  it('refuses an invalid or expired token, keeps the connection and its subscriptions', async () => {
    const g = await gw.start();
    const c = await gw.authed(await signToken());
    c.send({ op: 'subscribe', id: 1, channel: 'signals' });
    await c.type('subscribed');
    const forged = await signToken({}, 'not-the-gateway-secret-0123456789abcdef');
    const expired = await signToken({ exp: inSeconds(-60) });
    c.send({ op: 'refresh', id: 1, token: forged });
    c.send({ op: 'refresh', id: 2, token: expired });
    c.send({ op: 'refresh', id: 3, token: 'not.a.jwt' });
    c.send({ op: 'ping' });
    await c.type('pong');
    expect(errorsOf(c).map((e) => [e.id, e.code])).toEqual([
      [1, 'refresh_refused'],
      [2, 'refresh_refused'],
      [3, 'refresh_refused'],
    ]);
    expect(String(errorsOf(c)[1]?.message)).toMatch(/exp/);
    expect((await publish(g, { channel: 'signals', data: {} })).status).toBe(200);
    expect(await c.type('event')).toMatchObject({ seq: 1 });
    expect(c.ws.readyState).toBe(c.ws.OPEN);
  });

  it('is answered in order with the ops around it, and needs hello first', async () => {
    await gw.start();
    const c = await gw.authed(await signToken({ accounts: ['ACC1'] }));
    c.send({ op: 'subscribe', id: 1, channel: 'positions:ACC1' });
    c.send({ op: 'refresh', id: 2, token: await signToken({ accounts: [] }) });
    c.send({ op: 'subscribe', id: 3, channel: 'positions:ACC1' });
    await c.next((m) => m.type === 'error' && m.id === 3);
    const seen = c.messages
      .filter((m) => m.type !== 'welcome')
      .map((m) => `${String(m.type)}:${JSON.stringify(m.id ?? m.reason)}`);
    expect(seen).toEqual([
      'subscribed:1',
      'snapshot:undefined',
      'unsubscribed:"forbidden"',
      'refreshed:2',
      'error:3',
    ]);

    const fresh = await gw.connect();
    fresh.send({ op: 'refresh', token: await signToken() });
    const { code } = await fresh.closed;
    expect(code).toBe(4001);
    expect(errorsOf(fresh)).toEqual([expect.objectContaining({ code: 'not_authenticated' })]);
  });
});
