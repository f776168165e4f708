/** Fuzz: fair admission of client connections (src/server/admission.ts), model-based. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Admission, type AdmissionLimits, type Admittable } from '../../src/server/admission.js';
import { params, TIMEOUT } from './runs.js';

/** A connection as admission sees it; eviction closes it, and closing releases it. */
class Conn implements Admittable {
  evictions = 0;
  constructor(
    readonly remoteAddr: string,
    readonly id: number,
    private readonly admission: Admission<Conn>,
  ) {}

  evict(): void {
    this.evictions++;
    this.admission.release(this);
  }
}

/** What should be: the counted connections, the unauthenticated ones oldest first, users. */
interface Model {
  readonly limits: AdmissionLimits;
  readonly open: Set<Conn>;
  readonly unauthenticated: Conn[];
  /** Of those, the ones whose hello is being checked, in the order their hello came. */
  readonly verifying: Conn[];
  readonly users: Map<Conn, string>;
}

interface Real {
  readonly admission: Admission<Conn>;
  /** Every connection ever opened, released or not (commands pick among them). */
  readonly conns: Conn[];
}

const count = <T>(items: Iterable<T>, pred: (item: T) => boolean) => [...items].filter(pred).length;

function checkInvariants(m: Model, r: Real): void {
  const { admission } = r;
  expect(admission.total).toBe(m.open.size);
  expect(admission.total).toBeGreaterThanOrEqual(0);
  expect(admission.total).toBeLessThanOrEqual(m.limits.maxConnections);
  expect(admission.unauthenticatedCount).toBe(m.unauthenticated.length);
  for (const addr of new Set([...m.open].map((c) => c.remoteAddr))) {
    expect(count(m.open, (c) => c.remoteAddr === addr)).toBeLessThanOrEqual(
      m.limits.maxConnectionsPerIp,
    );
  }
  for (const user of new Set(m.users.values())) {
    expect(count(m.users.values(), (u) => u === user)).toBeLessThanOrEqual(
      m.limits.maxConnectionsPerUser,
    );
  }
  const evicted = r.conns.reduce((n, c) => n + c.evictions, 0);
  expect(evicted).toBeLessThanOrEqual(r.conns.length);
}

/** The connection a command acts on: any one ever opened, chosen by `pick`. */
function picked(r: Real, pick: number): Conn | undefined {
  return r.conns[pick % Math.max(1, r.conns.length)];
}

function forget(m: Model, conn: Conn): void {
  m.open.delete(conn);
  for (const list of [m.unauthenticated, m.verifying]) {
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
  }
  m.users.delete(conn);
}

/** A client upgrades from `addr` while `pending` other handshakes are under way. */
class Connect implements fc.Command<Model, Real> {
  constructor(
    readonly addr: string,
    readonly pending: number,
  ) {}

  check(): boolean {
    return true;
  }

  run(m: Model, r: Real): void {
    const fromAddr = count(m.open, (c) => c.remoteAddr === this.addr);
    const full = m.open.size + this.pending >= m.limits.maxConnections;
    // Silent sockets go first, oldest first; then those whose hello is being checked.
    const oldest = m.unauthenticated.find((c) => !m.verifying.includes(c)) ?? m.verifying[0];
    const evictionsBefore = r.conns.map((c) => c.evictions);

    const refusal = r.admission.admit(this.addr, this.pending);

    const evicted = r.conns.filter((c, i) => c.evictions !== evictionsBefore[i]);
    if (fromAddr >= m.limits.maxConnectionsPerIp) {
      expect(refusal).toBe('per_ip');
      expect(evicted).toEqual([]);
      checkInvariants(m, r);
      return;
    }
    if (full || m.unauthenticated.length >= m.limits.maxUnauthenticated) {
      if (oldest === undefined) {
        // Full with no one to evict: the only case for 'capacity'.
        expect(refusal).toBe(full ? 'capacity' : null);
        expect(evicted).toEqual([]);
      } else {
        expect(refusal).toBeNull();
        expect(evicted).toEqual([oldest]);
        expect(oldest.evictions).toBe(1);
        forget(m, oldest);
      }
    } else {
      expect(refusal).toBeNull();
      expect(evicted).toEqual([]);
    }
    if (refusal === null) {
      const conn = new Conn(this.addr, r.conns.length, r.admission);
      r.conns.push(conn);
      r.admission.opened(conn);
      m.open.add(conn);
      m.unauthenticated.push(conn);
      expect(r.admission.unauthenticatedCount).toBeLessThanOrEqual(m.limits.maxUnauthenticated);
    }
    checkInvariants(m, r);
  }

  toString(): string {
    return `connect(${this.addr}, pending=${this.pending})`;
  }
}

/** A connection's hello succeeds for `user`; refused over the user's limit (then it closes,
 * when `closeOnRefusal`). */
class Authenticate implements fc.Command<Model, Real> {
  constructor(
    readonly pick: number,
    readonly user: string,
    readonly closeOnRefusal: boolean,
  ) {}

  check(): boolean {
    return true;
  }

  run(m: Model, r: Real): void {
    const conn = picked(r, this.pick);
    if (conn === undefined) return;
    const held = count(m.users.values(), (u) => u === this.user);
    const expected = m.unauthenticated.includes(conn) && held < m.limits.maxConnectionsPerUser;
    const ok = r.admission.authenticated(conn, this.user);
    expect(ok).toBe(expected);
    if (ok) {
      m.unauthenticated.splice(m.unauthenticated.indexOf(conn), 1);
      if (m.verifying.includes(conn)) m.verifying.splice(m.verifying.indexOf(conn), 1);
      m.users.set(conn, this.user);
    } else if (this.closeOnRefusal) {
      r.admission.release(conn);
      forget(m, conn);
    }
    checkInvariants(m, r);
  }

  toString(): string {
    return `authenticate(#${this.pick}, ${this.user}, close=${this.closeOnRefusal})`;
  }
}

/** A connection's hello arrives: its token is being checked. */
class HelloReceived implements fc.Command<Model, Real> {
  constructor(readonly pick: number) {}

  check(): boolean {
    return true;
  }

  run(m: Model, r: Real): void {
    const conn = picked(r, this.pick);
    if (conn === undefined) return;
    r.admission.helloReceived(conn);
    if (m.unauthenticated.includes(conn) && !m.verifying.includes(conn)) m.verifying.push(conn);
    checkInvariants(m, r);
  }

  toString(): string {
    return `hello(#${this.pick})`;
  }
}

/** A connection closes (maybe again: release must be idempotent). */
class Release implements fc.Command<Model, Real> {
  constructor(
    readonly pick: number,
    readonly times: number,
  ) {}

  check(): boolean {
    return true;
  }

  run(m: Model, r: Real): void {
    const conn = picked(r, this.pick);
    if (conn === undefined) return;
    for (let i = 0; i < this.times; i++) r.admission.release(conn);
    forget(m, conn);
    checkInvariants(m, r);
  }

  toString(): string {
    return `release(#${this.pick}) x${this.times}`;
  }
}

const addr = fc.constantFrom('10.0.0.1', '10.0.0.2', '::1');
const user = fc.constantFrom('alice', 'bob', 'carol');

const commands = fc.commands(
  [
    fc
      .tuple(addr, fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 3 })))
      .map(([a, p]) => new Connect(a, p)),
    fc
      .tuple(fc.nat({ max: 100 }), user, fc.boolean())
      .map(([i, u, close]) => new Authenticate(i, u, close)),
    fc
      .tuple(fc.nat({ max: 100 }), fc.integer({ min: 1, max: 2 }))
      .map(([i, n]) => new Release(i, n)),
    fc.nat({ max: 100 }).map((i) => new HelloReceived(i)),
  ],
  { maxCommands: 60 },
);

const limitsArb: fc.Arbitrary<AdmissionLimits> = fc.record({
  maxConnections: fc.integer({ min: 1, max: 8 }),
  maxConnectionsPerIp: fc.integer({ min: 1, max: 5 }),
  maxConnectionsPerUser: fc.integer({ min: 1, max: 3 }),
  maxUnauthenticated: fc.integer({ min: 1, max: 5 }),
});

describe('Admission', () => {
  it(
    'keeps every limit, and evicts silent sockets before hellos being checked, after every step of random connects, hellos and closes',
    () => {
      fc.assert(
        fc.property(limitsArb, commands, (limits, cmds) => {
          const admission = new Admission<Conn>(limits);
          fc.modelRun(
            () => ({
              model: {
                limits,
                open: new Set<Conn>(),
                unauthenticated: [],
                verifying: [],
                users: new Map<Conn, string>(),
              },
              real: { admission, conns: [] },
            }),
            cmds,
          );
        }),
        params(0.5),
      );
    },
    TIMEOUT,
  );
});
