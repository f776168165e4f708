/** JWT verification and the account rule, in-process (docs/protocol.md#authentication). */
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseChannel, type ChannelInfo } from '../../src/protocol/index.js';
import { Authenticator, mayJoin } from '../../src/server/auth.js';

const SECRET = 'unit-secret-0123456789abcdef0123456789abcdef';
const key = new TextEncoder().encode(SECRET);

function token(
  claims: Record<string, unknown>,
  options: { sub?: string; exp?: number | string; iss?: string; aud?: string } = {},
) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt();
  if (options.sub !== undefined) jwt.setSubject(options.sub);
  jwt.setExpirationTime(options.exp ?? '1h');
  if (options.iss !== undefined) jwt.setIssuer(options.iss);
  if (options.aud !== undefined) jwt.setAudience(options.aud);
  return jwt.sign(key);
}

function channel(name: string): ChannelInfo {
  const info = parseChannel(name);
  if (!info) throw new Error(name);
  return info;
}

describe('Authenticator', () => {
  const auth = new Authenticator({ jwtSecret: SECRET });

  it('reads the user, the accounts (strings only) and the expiry', async () => {
    const p = await auth.verify(
      await token({ accounts: ['ACC1', 7, 'ACC2'] }, { sub: 'alice', exp: 2_000_000_000 }),
    );
    expect(p.userId).toBe('alice');
    expect([...p.accounts]).toEqual(['ACC1', 'ACC2']);
    expect(p.allAccounts).toBe(false);
    expect(p.expiresAt).toBe(2_000_000_000_000);
  });

  it('refuses an expired token with token_expired and a token without sub with unauthorized', async () => {
    await expect(
      auth.verify(await token({}, { sub: 'alice', exp: Math.floor(Date.now() / 1000) - 60 })),
    ).rejects.toMatchObject({ code: 'token_expired' });
    await expect(auth.verify(await token({ accounts: [] }))).rejects.toMatchObject({
      code: 'unauthorized',
      message: 'token has no sub claim',
    });
  });

  it('refuses a token signed with another key, and anything that is not a JWT', async () => {
    const other = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('another-secret-0123456789abcdef0123456789'));
    await expect(auth.verify(other)).rejects.toMatchObject({ code: 'unauthorized' });
    await expect(auth.verify('not.a.jwt')).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('checks the issuer and audience when they are configured', async () => {
    const strict = new Authenticator({
      jwtSecret: SECRET,
      jwtIssuer: 'idp',
      jwtAudience: 'archon',
    });
    await expect(
      strict.verify(await token({}, { sub: 'a', iss: 'idp', aud: 'archon' })),
    ).resolves.toMatchObject({ userId: 'a' });
    await expect(
      strict.verify(await token({}, { sub: 'a', iss: 'idp', aud: 'billing' })),
    ).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('refuses every token when no key is configured', async () => {
    await expect(new Authenticator({}).verify(await token({}, { sub: 'a' }))).rejects.toMatchObject(
      { code: 'unauthorized', message: 'no JWT key configured' },
    );
  });
});

describe('mayJoin', () => {
  it('opens shared channels to everyone, accounts to their holders, all to "*"', async () => {
    const auth = new Authenticator({ jwtSecret: SECRET });
    const alice = await auth.verify(await token({ accounts: ['ACC1'] }, { sub: 'alice' }));
    const ops = await auth.verify(await token({ accounts: ['*'] }, { sub: 'ops' }));
    expect(mayJoin(alice, channel('signals'))).toBe(true);
    expect(mayJoin(alice, channel('positions:ACC1'))).toBe(true);
    expect(mayJoin(alice, channel('risk:ACC2'))).toBe(false);
    expect(mayJoin(ops, channel('risk:ACC2'))).toBe(true);
  });
});
