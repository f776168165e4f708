/**
 * JWT verification for WebSocket clients and the history endpoint. One of: an HS256
 * secret, a PEM public key (RS*, PS*, ES*, EdDSA) or a JWKS URL. The `accounts` claim
 * decides which `positions:` and `risk:` channels a user may join; `"*"` grants all.
 */
import { createPublicKey, webcrypto } from 'node:crypto';
import {
  createRemoteJWKSet,
  errors as joseErrors,
  jwtVerify,
  type JWTVerifyGetKey,
  type KeyObject,
} from 'jose';
import { ArchonError } from '../protocol/index.js';
import type { ChannelInfo } from '../protocol/index.js';

export interface Principal {
  readonly userId: string;
  /** The `accounts` claim, strings only, each once (a few per token: an array costs far less than a Set). */
  readonly accounts: readonly string[];
  readonly allAccounts: boolean;
  /** Token expiry in ms since epoch, or null when the token has no exp. */
  readonly expiresAt: number | null;
}

export interface AuthOptions {
  readonly jwtSecret?: string | undefined;
  readonly jwtPublicKey?: string | undefined;
  readonly jwtJwksUrl?: string | undefined;
  readonly jwtIssuer?: string | undefined;
  readonly jwtAudience?: string | undefined;
}

const ASYMMETRIC = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
];

export class Authenticator {
  /** An HS256 secret is imported once: given raw bytes, jose imports them for every token,
   * which doubled the cost of a sign-in (docs/performance.md, "Reconnect storm"). */
  private readonly key: Promise<webcrypto.CryptoKey> | KeyObject | JWTVerifyGetKey | null;
  private readonly algorithms: string[];

  constructor(private readonly options: AuthOptions) {
    if (options.jwtSecret !== undefined) {
      const key = webcrypto.subtle.importKey(
        'raw',
        new TextEncoder().encode(options.jwtSecret),
        { name: 'HMAC', hash: 'SHA-256' },
        false,
        ['verify'],
      );
      // A failed import (none is expected: the secret is checked) fails ready() at start,
      // never as an unhandled rejection.
      key.catch(() => undefined);
      this.key = key;
      this.algorithms = ['HS256'];
    } else if (options.jwtPublicKey !== undefined) {
      this.key = createPublicKey(options.jwtPublicKey);
      this.algorithms = ASYMMETRIC;
    } else if (options.jwtJwksUrl !== undefined) {
      this.key = createRemoteJWKSet(new URL(options.jwtJwksUrl));
      this.algorithms = ASYMMETRIC;
    } else {
      this.key = null;
      this.algorithms = [];
    }
  }

  /** Resolves once the key is usable; rejects when an HS256 secret cannot be imported, so
   * the gateway fails at start instead of refusing every token. */
  async ready(): Promise<void> {
    if (this.key instanceof Promise) await this.key;
  }

  get configured(): boolean {
    return this.key !== null;
  }

  /** Verifies a token; throws ArchonError('unauthorized' | 'token_expired'). */
  async verify(token: string): Promise<Principal> {
    if (this.key === null) throw new ArchonError('unauthorized', 'no JWT key configured');
    try {
      const verifyOptions = {
        algorithms: this.algorithms,
        ...(this.options.jwtIssuer !== undefined && { issuer: this.options.jwtIssuer }),
        ...(this.options.jwtAudience !== undefined && { audience: this.options.jwtAudience }),
      };
      const key = this.key;
      const { payload } =
        typeof key === 'function'
          ? await jwtVerify(token, key, verifyOptions)
          : await jwtVerify(token, key instanceof Promise ? await key : key, verifyOptions);
      if (typeof payload.sub !== 'string' || payload.sub.length === 0) {
        throw new ArchonError('unauthorized', 'token has no sub claim');
      }
      const accounts = Array.isArray(payload.accounts)
        ? [...new Set(payload.accounts.filter((a): a is string => typeof a === 'string'))]
        : [];
      return {
        userId: payload.sub,
        accounts,
        allAccounts: accounts.includes('*'),
        expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
      };
    } catch (err) {
      if (err instanceof ArchonError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new ArchonError('token_expired');
      // The reason (bad signature, malformed…) helps the client developer; the token does not.
      const reason = err instanceof Error ? err.message : 'invalid token';
      throw new ArchonError('unauthorized', `invalid token: ${reason}`);
    }
  }
}

/** May this user join this channel? Shared channels are open to every signed-in user. */
export function mayJoin(principal: Principal, channel: ChannelInfo): boolean {
  if (channel.account === null) return true;
  return principal.allAccounts || principal.accounts.includes(channel.account);
}
