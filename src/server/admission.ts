/**
 * Fair admission of client connections (docs/security.md): who may open a socket and who
 * makes room when the instance is full. Sockets that have not sent a valid `hello` have a
 * small cap of their own and are the first to go when capacity is tight; one address and
 * one user can each hold only so many connections. A connection stops counting the moment
 * it starts closing, so the one evicted makes room for the one arriving.
 */

/** What admission needs of a connection. */
export interface Admittable {
  readonly remoteAddr: string;
  /** Closes it to make room (the oldest unauthenticated one, when the instance is full). */
  evict(): void;
}

export interface AdmissionLimits {
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  readonly maxConnectionsPerUser: number;
  readonly maxUnauthenticated: number;
}

/** Why an upgrade is refused: a per-address limit, or a full instance with no one to evict. */
export type UpgradeRefusal = 'per_ip' | 'capacity';

export class Admission<C extends Admittable = Admittable> {
  private readonly byIp = new Map<string, number>();
  private readonly byUser = new Map<string, number>();
  /** Connections with no successful hello yet, oldest first (a Set keeps insertion order). */
  private readonly unauthenticated = new Set<C>();
  private readonly users = new Map<C, string>();
  private counted = 0;

  constructor(private readonly limits: AdmissionLimits) {}

  /** Open connections that count against the limits (closing ones do not). */
  get total(): number {
    return this.counted;
  }

  get unauthenticatedCount(): number {
    return this.unauthenticated.size;
  }

  /**
   * May one more connection from `addr` open (with `pending` handshakes under way)? When the
   * instance or the unauthenticated cap is full, evicts the oldest unauthenticated connection
   * to make room; refuses only when there is none.
   */
  admit(addr: string, pending = 0): UpgradeRefusal | null {
    if ((this.byIp.get(addr) ?? 0) >= this.limits.maxConnectionsPerIp) return 'per_ip';
    const full = this.counted + pending >= this.limits.maxConnections;
    if (full || this.unauthenticated.size >= this.limits.maxUnauthenticated) {
      const oldest = this.unauthenticated.values().next();
      if (oldest.done === true) return full ? 'capacity' : null;
      this.release(oldest.value);
      oldest.value.evict();
    }
    return null;
  }

  /** A connection was accepted: it counts, as unauthenticated, until hello or close. */
  opened(conn: C): void {
    this.counted++;
    this.byIp.set(conn.remoteAddr, (this.byIp.get(conn.remoteAddr) ?? 0) + 1);
    this.unauthenticated.add(conn);
  }

  /** A hello succeeded for `userId`: false when that user already holds their limit. */
  authenticated(conn: C, userId: string): boolean {
    if (!this.unauthenticated.has(conn)) return false; // already released (evicted, closing)
    const held = this.byUser.get(userId) ?? 0;
    if (held >= this.limits.maxConnectionsPerUser) return false;
    this.unauthenticated.delete(conn);
    this.byUser.set(userId, held + 1);
    this.users.set(conn, userId);
    return true;
  }

  /** The connection is closing or closed: it no longer counts. Safe to call twice. */
  release(conn: C): void {
    const wasUnauthenticated = this.unauthenticated.delete(conn);
    const user = this.users.get(conn);
    if (!wasUnauthenticated && user === undefined) return;
    this.counted--;
    decrement(this.byIp, conn.remoteAddr);
    if (user !== undefined) {
      this.users.delete(conn);
      decrement(this.byUser, user);
    }
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 0) - 1;
  if (n <= 0) map.delete(key);
  else map.set(key, n);
}
