/**
 * Where a page gets its token: the URL fragment (`#token=…`, which browsers never send to the
 * server, so it does not end up in access logs) or the sign-in form, then sessionStorage so
 * a reload keeps it and closing the tab forgets it. The fragment is removed from the address
 * bar at once, so the token is not left on screen or in a copied link.
 */

export interface Session {
  readonly token: string;
  /** `#accounts=A,B` alongside the token, when given (a `*` token needs it). */
  readonly accounts: readonly string[];
}

export function readSession(storageKey: string): Session | null {
  const hash = new URLSearchParams(location.hash.replace(/^#/, ''));
  const fromHash = hash.get('token');
  const accounts = (hash.get('accounts') ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a.length > 0);
  if (fromHash) {
    saveSession(storageKey, { token: fromHash, accounts });
    history.replaceState(null, '', location.pathname + location.search);
    return { token: fromHash, accounts };
  }
  const stored = sessionStorage.getItem(storageKey);
  if (stored === null) return null;
  try {
    const parsed = JSON.parse(stored) as Partial<Session>;
    if (typeof parsed.token !== 'string') return null;
    return {
      token: parsed.token,
      accounts: Array.isArray(parsed.accounts)
        ? parsed.accounts.filter((a) => typeof a === 'string')
        : [],
    };
  } catch {
    return null;
  }
}

export function saveSession(storageKey: string, session: Session): void {
  sessionStorage.setItem(storageKey, JSON.stringify(session));
}

export function clearSession(storageKey: string): void {
  sessionStorage.removeItem(storageKey);
}

/** The claims the dashboard shows; the gateway, not the page, decides what a token may do. */
export interface Claims {
  readonly sub: string | null;
  readonly name: string | null;
  readonly accounts: readonly string[];
  /** Expiry, ms since the Unix epoch. */
  readonly exp: number | null;
}

/** Reads a JWT's payload without verifying it; null when it is not a JWT at all. */
export function readClaims(token: string): Claims | null {
  const part = token.split('.')[1];
  if (token.split('.').length !== 3 || !part) return null;
  try {
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    return {
      sub: str(payload.sub),
      name: str(payload.name),
      accounts: Array.isArray(payload.accounts)
        ? payload.accounts.filter((a): a is string => typeof a === 'string')
        : [],
      exp: typeof payload.exp === 'number' ? payload.exp * 1000 : null,
    };
  } catch {
    return null;
  }
}
