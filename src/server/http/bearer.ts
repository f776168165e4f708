/** Bearer-token checks for the admin and publish APIs, in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Several tokens may be valid at once, for rotation. Comparing digests keeps the compare
 * constant-time whatever the lengths, and every configured token is always compared. */
export class TokenSet {
  private readonly digests: Buffer[];

  constructor(tokens: readonly string[]) {
    this.digests = tokens.map(digest);
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  matches(authorization: string | undefined): boolean {
    const token = bearer(authorization);
    if (token === null) return false;
    const candidate = digest(token);
    let ok = false;
    for (const d of this.digests) ok = timingSafeEqual(d, candidate) || ok;
    return ok;
  }
}

export function bearer(authorization: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return match?.[1] ?? null;
}
