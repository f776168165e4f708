/**
 * Hostile input on /api/v1/ws (docs/security.md): frames an attacker crafted to crash the
 * process, stall its event loop, get itself echoed back or reorder the answers of the ops
 * before it. The sender is refused, and the gateway keeps serving everyone else.
 */
import { describe, expect, it } from 'vitest';
import { errorsOf, type Message, type TestClient } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { publish, type TestGateway } from '../support/gateway.js';
import { nestedArrays } from '../support/hostile.js';

/** `{"op":[[[…]]]}`: 6,000 nested arrays, 12 KB. */
const DEEP_OP = `{"op":${nestedArrays(6000)}}`;
/** `{"op":"AAA…"}`: a 65,000-character op, just under the default 64 KiB frame limit. */
const LONG_OP = `{"op":"${'A'.repeat(65_000)}"}`;

describe('hostile input on /api/v1/ws', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

  /** The gateway process is alive and serves a brand-new client end to end. */
  async function servesNewClients(tg: TestGateway): Promise<void> {
    const fresh = await gw.authed({ sub: 'newcomer' });
    await fresh.subscribe('signals:after-attack');
    const res = await publish(tg, { channel: 'signals:after-attack', data: { ok: true } });
    expect(res.status).toBe(200);
    expect(await fresh.type('event')).toMatchObject({
      channel: 'signals:after-attack',
      seq: 1,
      data: { ok: true },
    });
  }

  /** The first error the client got: a refusal of malformed input, with a short message. */
  async function refusedShortly(c: TestClient, codes: string[]): Promise<Message> {
    const error = await c.type('error', 10_000);
    expect(codes).toContain(error.code);
    expect(typeof error.message).toBe('string');
    expect((error.message as string).length).toBeLessThan(200);
    return error;
  }

  it('refuses a 12 KB frame of 6,000 nested brackets sent before hello, and keeps serving new clients', async () => {
    const tg = await gw.start();
    expect(Buffer.byteLength(DEEP_OP)).toBeGreaterThan(12_000);
    const attacker = await gw.connect();
    attacker.send(DEEP_OP);
    await refusedShortly(attacker, ['bad_request', 'unknown_op']);
    await servesNewClients(tg);
    expect((await fetch(`${tg.http}/api/health`)).status).toBe(200);
  });

  it('refuses a 12 KB frame of 6,000 nested brackets sent after hello, and keeps serving the sender and new clients', async () => {
    const tg = await gw.start();
    const attacker = await gw.authed({ sub: 'attacker' });
    attacker.send(DEEP_OP);
    await refusedShortly(attacker, ['bad_request', 'unknown_op']);
    // One malformed message is a strike, not a close: the connection still works.
    attacker.send({ op: 'ping' });
    await attacker.type('pong');
    await servesNewClients(tg);
  });

  it('refuses a known op nested deeper than 8 levels as bad_request, and accepts one nested less', async () => {
    const tg = await gw.start();
    const c = await gw.authed({ sub: 'attacker' });
    // An extra field the op does not need, 10 levels deep counting the op itself.
    c.send(`{"op":"subscribe","id":7,"channel":"signals","meta":${nestedArrays(9, '"x"')}}`);
    const error = await refusedShortly(c, ['bad_request', 'invalid_json', 'unknown_op']);
    expect(error.message).not.toContain('[[');
    // 4 levels is fine: the extra field is ignored and the subscribe goes through.
    c.send(`{"op":"subscribe","id":8,"channel":"signals","meta":${nestedArrays(3, '"x"')}}`);
    expect(await c.next((m) => m.id === 8)).toMatchObject({ type: 'subscribed', id: 8 });
    await servesNewClients(tg);
  });

  it('answers a 65 KB op string before hello with a short error and a close reason of at most 123 bytes, and /api/health keeps answering while 5 connections send it', async () => {
    const tg = await gw.start();
    const attackers = await Promise.all(Array.from({ length: 5 }, () => gw.connect()));
    // Twice each: whatever the first one earns, the second one is a close.
    for (const a of attackers) {
      a.send(LONG_OP);
      a.send(LONG_OP);
    }
    const health = await fetch(`${tg.http}/api/health`);
    expect(health.status).toBe(200);
    for (const a of attackers) {
      const error = await refusedShortly(a, ['unauthenticated_limit', 'unknown_op', 'bad_request']);
      expect(error.message).not.toContain('A'.repeat(33));
      const closed = await a.closed;
      expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
      expect(closed.reason).not.toContain('A'.repeat(33));
    }
    await servesNewClients(tg);
  });

  it('quotes an unknown op of at most 32 characters and names the type of a longer one or of a non-string', async () => {
    await gw.start();
    const short = await gw.authed({ sub: 'u1' });
    short.send({ op: 'frobnicate', id: 1 });
    const quoted = await refusedShortly(short, ['unknown_op']);
    expect(quoted).toMatchObject({ id: 1 });
    expect(quoted.message).toContain('frobnicate');

    const long = await gw.authed({ sub: 'u2' });
    const op = `x${'y'.repeat(39)}`;
    long.send({ op, id: 2 });
    const named = await refusedShortly(long, ['unknown_op']);
    expect(named.message).not.toContain(op.slice(0, 33));
    expect(named.message).toMatch(/string/);

    const array = await gw.authed({ sub: 'u3' });
    array.send({ op: ['subscribe'], id: 3 });
    const typed = await refusedShortly(array, ['unknown_op', 'bad_request']);
    expect(typed.message).toMatch(/array/);
    expect(typed.message).not.toContain('["subscribe"]');
  });

  it('closes with 1008 and unauthenticated_limit a connection that sends more than 32 KiB before hello, but not once hello succeeded', async () => {
    await gw.start();
    const attacker = await gw.connect();
    attacker.send({ op: 'hello', token: 'x'.repeat(40 * 1024), client: 'attacker/1' });
    const closed = await attacker.closed;
    expect(closed.code).toBe(1008);
    expect(errorsOf(attacker).map((m) => m.code)).toEqual(['unauthenticated_limit']);

    // After welcome the bound no longer applies: a 40 KB op is an ordinary message.
    const user = await gw.authed({ sub: 'user' });
    user.send({ op: 'subscribe', id: 1, channel: 'signals', pad: 'x'.repeat(40 * 1024) });
    expect(await user.next((m) => m.id === 1)).toMatchObject({ type: 'subscribed', id: 1 });
  });

  it('answers valid ops and malformed messages strictly in arrival order, then closes with 4400', async () => {
    await gw.start();
    const c = await gw.authed();
    c.send({ op: 'subscribe', id: 1, channel: 'signals' });
    c.send('{"op":"subscribe",');
    c.send({ op: 'subscribe', id: 2, channel: 'signals:alpha' });
    c.send({ op: 'frobnicate', id: 3 });
    const closed = await c.closed;
    expect(closed.code).toBe(4400);
    const answers = c.messages
      .filter((m) => m.type !== 'welcome' && m.type !== 'ping')
      .map((m) => [m.type, m.id ?? null, m.code ?? null]);
    expect(answers).toEqual([
      ['subscribed', 1, null],
      ['error', null, 'invalid_json'],
      ['subscribed', 2, null],
      ['error', 3, 'unknown_op'],
    ]);
  });

  it('keeps the answer to a ping sent before a second malformed message', async () => {
    await gw.start();
    const c = await gw.authed();
    c.send('not json');
    c.send({ op: 'ping' });
    c.send('still not json');
    expect((await c.closed).code).toBe(4400);
    expect(c.messages.filter((m) => m.type !== 'welcome').map((m) => m.type)).toEqual([
      'error',
      'pong',
      'error',
    ]);
  });
});
