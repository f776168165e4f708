/**
 * Fair admission of client connections (docs/security.md): who may open a socket and who
 * makes room when the instance is full. Sockets that have not completed `hello` have a
 * small cap of their own and are the first to go when capacity is tight, silent ones before
 * those whose token is being checked (a flood of new sockets must not push out a real
 * client waiting on its key server); one address and one user can each hold only so many
 * connections. A connection stops counting the moment it starts closing, so the one evicted
 * makes room for the one arriving.
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
  /** Connections that have sent nothing valid yet, oldest first (a Set keeps insertion
   * order), and those whose hello is being checked: together the unauthenticated ones. */
  private readonly silent = new Set<C>();
  private readonly verifying = new Set<C>();
  private readonly users = new Map<C, string>();
  private counted = 0;

  constructor(private readonly limits: AdmissionLimits) {}

  /** Open connections that count against the limits (closing ones do not). */
  get total(): number {
    return this.counted;
  }

  get unauthenticatedCount(): number {
    return this.silent.size + this.verifying.size;
  }

  /**
   * May one more connection from `addr` open (with `pending` handshakes under way)? When the
   * instance or the unauthenticated cap is full, evicts the oldest unauthenticated connection
   * to make room; refuses only when there is none.
   */
  admit(addr: string, pending = 0): UpgradeRefusal | null {
    if ((this.byIp.get(addr) ?? 0) >= this.limits.maxConnectionsPerIp) return 'per_ip';
    const full = this.counted + pending >= this.limits.maxConnections;
    if (full || this.unauthenticatedCount >= this.limits.maxUnauthenticated) {
      const oldest = this.silent.values().next().value ?? this.verifying.values().next().value;
      if (oldest === undefined) return full ? 'capacity' : null;
      this.release(oldest);
      oldest.evict();
    }
    return null;
  }

  /** Whether `userId` holds their connection limit already (an HTTP stream is refused
   * before it starts, with 429). */
  userFull(userId: string): boolean {
    return (this.byUser.get(userId) ?? 0) >= this.limits.maxConnectionsPerUser;
  }

  /** A connection was accepted: it counts, as unauthenticated, until hello or close. */
  opened(conn: C): void {
    this.counted++;
    this.byIp.set(conn.remoteAddr, (this.byIp.get(conn.remoteAddr) ?? 0) + 1);
    this.silent.add(conn);
  }

  /** Its hello arrived and the token is being checked: evicted only after every silent one. */
  helloReceived(conn: C): void {
    if (this.silent.delete(conn)) this.verifying.add(conn);
  }

  /** A hello succeeded for `userId`: false when that user already holds their limit. */
  authenticated(conn: C, userId: string): boolean {
    if (!this.silent.has(conn) && !this.verifying.has(conn)) return false; // released already
    const held = this.byUser.get(userId) ?? 0;
    if (held >= this.limits.maxConnectionsPerUser) return false;
    this.silent.delete(conn);
    this.verifying.delete(conn);
    this.byUser.set(userId, held + 1);
    this.users.set(conn, userId);
    return true;
  }

  /** The connection is closing or closed: it no longer counts. Safe to call twice. */
  release(conn: C): void {
    const wasUnauthenticated = this.silent.delete(conn) || this.verifying.delete(conn);
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
