/** Fuzz: JWT verification of client tokens (src/server/auth.ts). Signing costs more than the
 * other properties, so these run a third as often. */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { ArchonError } from '../../src/protocol/errors.js';
import { Authenticator, type Principal } from '../../src/server/auth.js';
import {
  anyString,
  edgeNumber,
  hostileString,
  jsonTree,
  numberText,
  prototypeKey,
  render,
} from './arbitraries.js';
import { params, TIMEOUT } from './runs.js';

const SECRET = 'fuzz-secret-0123456789abcdef0123456789abcdef';
const KEY = new TextEncoder().encode(SECRET);
const auth = new Authenticator({ jwtSecret: SECRET });

/** What verify gives: a principal, or the ArchonError it rejected with (nothing else). */
async function verified(token: string): Promise<Principal | ArchonError> {
  try {
    const principal = await auth.verify(token);
    expect(typeof principal.userId).toBe('string');
    expect(principal.userId.length).toBeGreaterThan(0);
    for (const a of principal.accounts) expect(typeof a).toBe('string');
    expect(principal.allAccounts).toBe(principal.accounts.includes('*'));
    if (principal.expiresAt !== null) expect(Number.isNaN(principal.expiresAt)).toBe(false);
    return principal;
  } catch (err) {
    expect(err).toBeInstanceOf(ArchonError);
    expect(['unauthorized', 'token_expired']).toContain((err as ArchonError).code);
    return err as ArchonError;
  }
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** Claim values as JSON text: any JSON, edge numbers, times around now. */
const claimText: fc.Arbitrary<string> = fc.oneof(
  jsonTree(3).map((t) => render(t)),
  numberText,
  hostileString(10).map((s) => JSON.stringify(s)),
  fc.constantFrom('""', '"*"', '["*"]', '[]', '{}', 'null', 'true', '"1h"', '[["ACC1"]]'),
  fc.constantFrom('{"__proto__":["ACC1"]}', '["ACC1",{"__proto__":"x"},["ACC2"],null,"*"]'),
  fc.integer({ min: -100_000, max: 100_000 }).map((d) => String(nowSeconds() + d)),
  fc.double({ min: -100, max: 100, noNaN: true }).map((d) => String(nowSeconds() + d)),
);

const accountsText = fc.oneof(
  { weight: 1, arbitrary: claimText },
  {
    weight: 3,
    arbitrary: fc
      .array(
        fc.oneof(
          { weight: 3, arbitrary: fc.string({ maxLength: 6 }).map((s) => JSON.stringify(s)) },
          { weight: 1, arbitrary: claimText },
        ),
        { maxLength: 5 },
      )
      .map((items) => `[${items.join(',')}]`),
  },
);

const subText = fc.oneof(
  fc.string({ maxLength: 12 }).map((s) => JSON.stringify(s)),
  fc.string({ unit: 'binary', maxLength: 12 }).map((s) => JSON.stringify(s)),
  claimText,
);

const timeText = fc.oneof(
  fc.integer({ min: -3_600, max: 3_600 }).map((d) => String(nowSeconds() + d)),
  edgeNumber.map((n) => (Object.is(n, -0) ? '-0' : JSON.stringify(n))),
  claimText,
);

/** Expiry: mostly ahead (up to far beyond any timer), sometimes anything. */
const expText = fc.oneof(
  fc.integer({ min: 2, max: 10_000_000 }).map((d) => String(nowSeconds() + d)),
  fc.constantFrom('1e308', '9007199254740993', '8640000000000', '4102444800.5', '1e309'),
  timeText,
);

/** Absent five times out of six. */
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 5, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });

/** A claims set as JSON text: each claim maybe missing, of any type, maybe repeated. */
const claimsText = fc
  .tuple(
    fc.option(subText, { nil: undefined, freq: 5 }),
    fc.option(accountsText, { nil: undefined, freq: 5 }),
    fc.option(expText, { nil: undefined, freq: 3 }),
    rarely(timeText),
    rarely(timeText),
    fc.array(
      fc.tuple(fc.oneof(prototypeKey, fc.constantFrom('sub', 'accounts', 'exp')), claimText),
      {
        maxLength: 1,
      },
    ),
  )
  .map(([sub, accounts, exp, nbf, iat, extra]) => {
    const entries: [string, string][] = [];
    if (sub !== undefined) entries.push(['sub', sub]);
    if (accounts !== undefined) entries.push(['accounts', accounts]);
    if (exp !== undefined) entries.push(['exp', exp]);
    if (nbf !== undefined) entries.push(['nbf', nbf]);
    if (iat !== undefined) entries.push(['iat', iat]);
    entries.push(...extra);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
  });

const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64url');

/** A compact JWS over arbitrary header and payload text, signed with the real secret. */
function rawToken(header: string, payload: string, signature: 'valid' | 'wrong' | 'empty'): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const mac = createHmac('sha256', signature === 'wrong' ? `${SECRET}x` : SECRET)
    .update(input)
    .digest();
  return `${input}.${signature === 'empty' ? '' : b64(mac)}`;
}

/** A token for these claims signed by jose; by hand when jose refuses to sign them (it
 * refuses non-finite times, such as an `exp` of 1e309). */
async function signed(claims: Record<string, unknown>, text: string): Promise<string> {
  try {
    return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(KEY);
  } catch {
    return rawToken('{"alg":"HS256"}', text, 'valid');
  }
}

const headerText = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('{"alg":"HS256"}', '{"alg":"HS256","typ":"JWT"}') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      '{"alg":"none"}',
      '{"alg":"RS256"}',
      '{"alg":"hs256"}',
      '{"alg":"HS256","crit":["b64"],"b64":false}',
      '{"alg":"HS256","crit":["exp"]}',
      '{"alg":"HS256","crit":[]}',
      '{"alg":"HS256","b64":true,"crit":["b64"]}',
      '{"alg":"HS256","__proto__":{"alg":"none"}}',
      '{"alg":"HS256","alg":"none"}',
      '{"alg":"HS256","kid":{"__proto__":1}}',
      '{"alg":"HS256","typ":{}}',
      '{}',
      '[]',
      'null',
      '',
    ),
  },
  { weight: 1, arbitrary: jsonTree(3).map((t) => render(t)) },
  { weight: 1, arbitrary: anyString },
);

describe('Authenticator.verify', () => {
  it(
    'resolves a well-formed principal or rejects with unauthorized/token_expired, whatever the claims',
    async () => {
      await fc.assert(
        fc.asyncProperty(claimsText, async (text) => {
          const claims = JSON.parse(text) as Record<string, unknown>;
          const token = await signed(claims, text);
          const result = await verified(token);
          if (result instanceof ArchonError) return;
          // The claims jose decodes again: what the principal must be built from.
          expect(result.userId).toBe(claims.sub);
          const accounts = Array.isArray(claims.accounts) ? (claims.accounts as unknown[]) : [];
          expect([...result.accounts].sort()).toEqual(
            [...new Set(accounts.filter((a) => typeof a === 'string'))].sort(),
          );
          if (typeof claims.exp === 'number') {
            expect(result.expiresAt).toBe(claims.exp * 1000);
            expect(claims.exp).toBeGreaterThan(nowSeconds() - 5);
          } else {
            expect(result.expiresAt).toBeNull();
          }
        }),
        params(0.3),
      );
    },
    TIMEOUT,
  );

  it(
    'rejects with unauthorized/token_expired on arbitrary headers and payloads under a valid HMAC',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          headerText,
          fc.oneof(
            { weight: 4, arbitrary: claimsText },
            { weight: 1, arbitrary: jsonTree(3).map((t) => render(t)) },
            { weight: 1, arbitrary: anyString },
          ),
          fc.constantFrom<'valid' | 'wrong' | 'empty'>('valid', 'valid', 'wrong', 'empty'),
          async (header, payload, signature) => {
            const result = await verified(rawToken(header, payload, signature));
            if (signature !== 'valid') expect(result).toBeInstanceOf(ArchonError);
          },
        ),
        params(0.3),
      );
    },
    TIMEOUT,
  );

  it(
    'rejects arbitrary strings as tokens with an ArchonError',
    async () => {
      const tokenLike = fc.oneof(
        anyString,
        fc
          .array(fc.oneof(fc.base64String({ maxLength: 40 }), anyString), {
            minLength: 1,
            maxLength: 5,
          })
          .map((parts) => parts.join('.')),
        fc.constantFrom('', '.', '..', '...', 'a.b.c', 'Bearer x.y.z', ' '.repeat(10)),
      );
      await fc.assert(
        fc.asyncProperty(tokenLike, async (token) => {
          expect(await verified(token)).toBeInstanceOf(ArchonError);
        }),
        params(0.3),
      );
    },
    TIMEOUT,
  );
});
