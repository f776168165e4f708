/**
 * Token renewal in place (src/client/renewal.ts), on a fake clock: when it renews, that a
 * provider handing back its cached token does not make it loop, that a gateway without
 * `refresh` stops it, and that nothing outlives stop().
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TokenRenewal, tokenTimes, type RenewalHost } from '../../src/client/renewal.js';

/** An unsigned JWT-shaped token with these claims (the client never verifies). */
function jwt(claims: Record<string, number>): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'HS256' })}.${part({ sub: 'u', ...claims })}.sig`;
}

const T0 = 1_800_000_000_000;

function host(fresh: () => Promise<string | null>) {
  const sent: { token: string; id: string; at: number }[] = [];
  const failures: string[] = [];
  const h: RenewalHost = {
    fresh,
    send: (token, id) => sent.push({ token, id, at: Date.now() }),
    failed: (code) => failures.push(code),
    random: () => 0.5,
    now: () => Date.now(),
  };
  return { h, sent, failures };
}

describe('token renewal', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(T0);
  });
  afterEach(() => vi.useRealTimers());

  it('reads exp and iat in ms, and nothing from a token that is not a JWT', () => {
    expect(tokenTimes(jwt({ exp: 2000, iat: 1000 }))).toEqual({ exp: 2_000_000, iat: 1_000_000 });
    expect(tokenTimes('not a jwt')).toEqual({ exp: null, iat: null });
    expect(tokenTimes('a.!!!.c')).toEqual({ exp: null, iat: null });
  });

  it('renews when a fifth of the lifetime is left, then from the new token', async () => {
    const iat = T0 / 1000;
    let n = 0;
    const { h, sent } = host(() => Promise.resolve(jwt({ iat, exp: iat + 3600 + ++n * 3600 })));
    const r = new TokenRenewal(h);
    r.start(jwt({ iat, exp: iat + 3600 }));
    await vi.advanceTimersByTimeAsync(2879_000); // 80 % of an hour minus a second
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.at - T0).toBe(2880_000); // random 0.5: 20 % left
    expect(r.awaits(sent[0]!.id)).toBe(true);
    expect(r.renewed()).toBe(sent[0]!.token);
    r.stop();
  });

  it('does not loop on a provider that hands back its cached token', async () => {
    const iat = T0 / 1000;
    const token = jwt({ iat, exp: iat + 100 });
    let asked = 0;
    const { h, sent } = host(() => {
      asked++;
      return Promise.resolve(token);
    });
    const r = new TokenRenewal(h);
    r.start(token);
    await vi.advanceTimersByTimeAsync(100_000);
    expect(sent).toEqual([]); // nothing fresher: never sent
    expect(asked).toBeGreaterThanOrEqual(1);
    expect(asked).toBeLessThanOrEqual(5); // tries are at least 10 s (a tenth) apart
    r.stop();
  });

  it('stops for good on a gateway that does not know refresh', async () => {
    const iat = T0 / 1000;
    let asked = 0;
    const { h, sent, failures } = host(() => {
      asked++;
      return Promise.resolve(jwt({ iat, exp: iat + 7200 }));
    });
    const r = new TokenRenewal(h);
    r.start(jwt({ iat, exp: iat + 3600 }));
    await vi.advanceTimersByTimeAsync(3000_000);
    expect(sent).toHaveLength(1);
    r.refused('unknown_op', 'unknown op "refresh"');
    await vi.advanceTimersByTimeAsync(600_000);
    expect(failures).toEqual(['unknown_op']);
    expect(asked).toBe(1);
  });

  it('retries a refused renewal at half the time left, and nothing runs after stop()', async () => {
    const iat = T0 / 1000;
    let release: (token: string) => void = () => {};
    let asked = 0;
    const { h, sent } = host(() => {
      asked++;
      return new Promise<string>((resolve) => (release = resolve));
    });
    const r = new TokenRenewal(h);
    r.start(jwt({ iat, exp: iat + 1000 }));
    await vi.advanceTimersByTimeAsync(800_000);
    release(jwt({ iat, exp: iat + 2000 }));
    await vi.advanceTimersByTimeAsync(0);
    expect(sent).toHaveLength(1);
    r.refused('refresh_refused', 'another user');
    await vi.advanceTimersByTimeAsync(100_000); // half of the 200 s left
    expect(asked).toBe(2);
    // The connection ends while the provider is asked: its answer is dropped.
    r.stop();
    release(jwt({ iat, exp: iat + 3000 }));
    await vi.advanceTimersByTimeAsync(1000_000);
    expect(sent).toHaveLength(1);
    expect(asked).toBe(2);
    expect(vi.getTimerCount()).toBe(0);
  });
});
