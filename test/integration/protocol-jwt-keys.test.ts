/** The two asymmetric ways to verify client tokens: a PEM public key and a JWKS URL. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { useGateway } from '../support/fixture.js';

function sign(key: CryptoKey, alg: string, kid?: string): Promise<string> {
  return new SignJWT({ accounts: ['ACC1'] })
    .setProtectedHeader({ alg, ...(kid !== undefined && { kid }) })
    .setSubject('user-rsa')
    .setExpirationTime('1h')
    .sign(key);
}

describe('JWT verification with public keys', () => {
  const gw = useGateway();
  let jwks: Server | undefined;

  afterEach(async () => {
    await new Promise<void>((resolve) => (jwks ? jwks.close(() => resolve()) : resolve()));
    jwks = undefined;
  });

  it('accepts an RS256 token signed by the key in ARCHON_JWT_PUBLIC_KEY and refuses another key', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const other = await generateKeyPair('RS256');
    await gw.start({ ARCHON_JWT_SECRET: '', ARCHON_JWT_PUBLIC_KEY: await exportSPKI(publicKey) });

    const good = await gw.authed(await sign(privateKey, 'RS256'));
    expect(good.messages.find((m) => m.type === 'welcome')).toBeDefined();

    const bad = await gw.connect();
    bad.send({ op: 'hello', token: await sign(other.privateKey, 'RS256') });
    expect(await bad.type('error')).toMatchObject({ code: 'unauthorized' });
    expect((await bad.closed).code).toBe(4001);
  });

  it('accepts an ES256 token whose key it fetches from ARCHON_JWT_JWKS_URL', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwks = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwks?.listen(0, '127.0.0.1', resolve));
    const port = (jwks.address() as AddressInfo).port;
    await gw.start({
      ARCHON_JWT_SECRET: '',
      ARCHON_JWT_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
    });

    const c = await gw.authed(await sign(privateKey, 'ES256', 'k1'));
    const sub = await c.subscribe('positions:ACC1');
    expect(sub).toMatchObject({ type: 'subscribed', channel: 'positions:ACC1' });
  });
});
