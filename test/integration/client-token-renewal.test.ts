/**
 * The SDK renews its token in place (docs/client.md, "Tokens renewed in place"): with tokens
 * that live a few seconds, a client stays connected across several lifetimes, its
 * subscription goes on without a gap, and a provider that fails falls back to the reconnect
 * path. Against a real gateway, on Node's global WebSocket.
 */
import { describe, expect, it } from 'vitest';
import type { ChannelEvent, ClientError } from '../../src/client/index.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { publish, signToken } from '../support/gateway.js';
import { useSdk } from '../support/sdk.js';

/** A token valid for `seconds` from now (exp is whole seconds, so up to a second less). */
const shortToken = (seconds: number, accounts = ['ACC1']) =>
  signToken({ accounts, exp: Math.floor(Date.now() / 1000) + seconds });

describe('client SDK: tokens renewed in place', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const sdk = useSdk();

  it('renews 4-second tokens without reconnecting, with every event delivered once', async () => {
    const g = await gw.start();
    let issued = 0;
    const client = sdk(g, {
      token: () => {
        issued++;
        return shortToken(4);
      },
    });
    const refreshed: (number | null)[] = [];
    /** When each renewal was answered: its token must expire after that. */
    const answeredAt: number[] = [];
    const disconnects: number[] = [];
    const errors: ClientError[] = [];
    client.on('refreshed', (r) => {
      refreshed.push(r.expiresAt);
      answeredAt.push(Date.now());
    });
    client.on('disconnect', (d) => disconnects.push(d.code));
    client.on('error', (e) => errors.push(e));
    const got: ChannelEvent[] = [];
    const sub = client.subscribe('signals', (e) => got.push(e));
    await eventually(() => sub.state === 'live', 'the subscription to go live');

    // Three token lifetimes of publishing, one event every 200 ms.
    let n = 0;
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      expect((await publish(g, { channel: 'signals', data: { n: ++n } })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 200));
    }
    await eventually(() => got.length === n, `all ${n} events`);
    expect(disconnects).toEqual([]);
    expect(errors).toEqual([]);
    expect(refreshed.length).toBeGreaterThanOrEqual(2);
    expect(issued).toBe(refreshed.length + 1);
    // Each renewal brought a token still valid when it was answered (not the old one, not
    // null), judged against its own answer, not against a wall clock the machine's load moves.
    expect(refreshed.every((exp, i) => exp !== null && exp > (answeredAt[i] as number))).toBe(true);
    // …and each a later expiry than the one before: a new token every time.
    expect(
      refreshed.every((exp, i) => i === 0 || (exp as number) > (refreshed[i - 1] as number)),
    ).toBe(true);
    expect(got.map((e) => e.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(client.state).toBe('connected');
  }, 30_000);

  it('ends a subscription the renewed token no longer covers', async () => {
    const g = await gw.start();
    let calls = 0;
    const client = sdk(g, {
      token: () => (++calls === 1 ? shortToken(3, ['ACC1', 'ACC2']) : shortToken(60, ['ACC1'])),
    });
    const errors: ClientError[] = [];
    client.on('error', (e) => errors.push(e));
    const kept = client.subscribe('risk:ACC1');
    const lost = client.subscribe('risk:ACC2');
    await eventually(() => kept.state === 'live' && lost.state === 'live', 'both live');
    await eventually(() => lost.state === 'failed', 'risk:ACC2 to end at the renewal', {
      timeoutMs: 5000,
    });
    expect(lost.error).toMatchObject({ code: 'forbidden', channel: 'risk:ACC2' });
    expect(errors).toEqual([expect.objectContaining({ code: 'forbidden', channel: 'risk:ACC2' })]);
    expect(kept.state).toBe('live');
    expect(client.state).toBe('connected');
  }, 15_000);

  it('falls back to a reconnect when the renewal is refused, and loses nothing', async () => {
    const g = await gw.start();
    let calls = 0;
    // The second token is another user's: the gateway refuses it; the connection runs on
    // until the first expires (4001), then the SDK asks again and reconnects.
    const client = sdk(g, {
      token: () => {
        calls++;
        if (calls === 2) return signToken({ sub: 'someone-else', accounts: ['ACC1'] });
        return shortToken(calls === 1 ? 3 : 60);
      },
    });
    const errors: string[] = [];
    const disconnects: number[] = [];
    client.on('error', (e) => errors.push(e.code));
    client.on('disconnect', (d) => disconnects.push(d.code));
    const got: number[] = [];
    const sub = client.subscribe<{ n: number }>('signals', (e) => got.push(e.seq));
    await eventually(() => sub.state === 'live', 'live');
    let n = 0;
    const until = Date.now() + 5000;
    while (Date.now() < until) {
      expect((await publish(g, { channel: 'signals', data: { n: ++n } })).status).toBe(200);
      await new Promise((r) => setTimeout(r, 200));
    }
    await eventually(() => got.length === n, `all ${n} events`);
    expect(errors[0]).toBe('refresh_refused');
    expect(disconnects).toContain(4001);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(client.state).toBe('connected');
  }, 20_000);
});
