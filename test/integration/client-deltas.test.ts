/**
 * The SDK with deltas on (its default) against a real gateway: after a random run of sets and
 * deletes its store holds exactly what a fresh subscription's snapshot holds, every value the
 * application saw is the full one published, and patches did travel on the SDK's own socket.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { StoreChange } from '../../src/client/index.js';
import { TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { useSdk } from '../support/sdk.js';
import { publish, signToken, type TestGateway } from '../support/gateway.js';

const CHANNEL = 'positions:ACC1';
const KEYS = ['EURUSD', 'GBPUSD', 'XAUUSD', 'BTCUSD', 'AAPL'];

/** A deterministic uniform generator (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Value = Record<string, unknown>;

/** The next value of a key: mostly a tick (a few fields move), sometimes a reshaped value. */
function next(random: () => number, previous: Value | undefined, n: number): Value | null {
  const roll = random();
  if (previous !== undefined && roll < 0.12) return null;
  if (previous === undefined || roll < 0.25) {
    return {
      side: random() < 0.5 ? 'long' : 'short',
      size: Math.floor(random() * 20) * 10_000,
      price: n,
      greeks: { delta: random(), gamma: random() },
      tags: ['fx', n],
      // A member that is null from the start: a patch cannot set it, so this goes in full.
      ...(random() < 0.2 && { closed_at: null }),
    };
  }
  const value: Value = { ...previous, price: n, pnl: Math.round(random() * 1e4) / 100 };
  if (random() < 0.3) value.greeks = { ...(previous.greeks as Value), delta: random() };
  if (random() < 0.15) delete value.size;
  if (random() < 0.15) value.tags = ['fx', n, random() < 0.5];
  return value;
}

/** Counts the deltas reaching every WebSocket the SDK opens (sockets stay real: this only
 * listens beside the SDK). */
function countDeltas(): { readonly count: number } {
  const Native = globalThis.WebSocket;
  const counter = { count: 0 };
  globalThis.WebSocket = class extends Native {
    constructor(url: string | URL, protocols?: ConstructorParameters<typeof Native>[1]) {
      super(url, protocols);
      this.addEventListener('message', (ev: MessageEvent) => {
        if (typeof ev.data === 'string' && ev.data.includes('"base_seq":')) counter.count++;
      });
    }
  };
  restore.push(() => (globalThis.WebSocket = Native));
  return counter;
}
const restore: (() => void)[] = [];
afterEach(() => {
  for (const undo of restore.splice(0)) undo();
});

describe('client SDK with deltas', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const sdk = useSdk();

  async function publishOk(g: TestGateway, body: unknown): Promise<{ seq: number }[]> {
    const res = await publish(g, body);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return (res.body as { results: { seq: number }[] }).results;
  }

  /** What a fresh subscription's snapshot holds. */
  async function snapshotOf(g: TestGateway): Promise<Map<string, unknown>> {
    const c = gw.track(await TestClient.authed(g.ws, await signToken()));
    await c.subscribe(CHANNEL);
    const snapshot = await c.type('snapshot');
    const entries = snapshot.entries as { key: string; data: unknown }[];
    return new Map(entries.map((e) => [e.key, e.data]));
  }

  it('keeps its store equal to a fresh snapshot after a random run of sets and deletes', async () => {
    const deltas = countDeltas();
    const g = await gw.start();
    const client = sdk(g);
    const store = client.positions<Value>('ACC1');
    const changes: StoreChange<Value>[] = [];
    store.on('change', (c) => changes.push(c));
    await eventually(() => store.ready, 'the snapshot');
    expect(client.welcome?.deltas).toBe(true);

    const random = seeded(7);
    const model = new Map<string, Value>();
    const published = new Map<number, Value | null>();
    for (let batch = 0, n = 0; batch < 60; batch++) {
      const events = Array.from({ length: 1 + Math.floor(random() * 6) }, () => {
        const key = KEYS[Math.floor(random() * KEYS.length)] as string;
        const data = next(random, model.get(key), ++n);
        if (data === null) model.delete(key);
        else model.set(key, data);
        return { channel: CHANNEL, key, data };
      });
      const results = await publishOk(g, { events });
      results.forEach((r, i) => published.set(r.seq, events[i]?.data ?? null));
    }
    const [last] = await publishOk(g, { channel: CHANNEL, key: 'SENTINEL', data: { done: 1 } });
    published.set(last?.seq ?? 0, { done: 1 });
    await eventually(() => store.subscription.position?.seq === last?.seq, 'the last update');

    const snapshot = await snapshotOf(g);
    expect(new Map(store.entries())).toEqual(snapshot);
    expect(snapshot.size).toBeGreaterThan(1);
    // Every value handed over is the one published at its seq, never a patch.
    for (const change of changes) {
      if (change.kind === 'set') expect(change.value).toEqual(published.get(change.seq));
      if (change.kind === 'delete') expect(published.get(change.seq)).toBeNull();
    }
    expect(changes.filter((c) => c.kind === 'set').length).toBeGreaterThan(100);
    expect(deltas.count).toBeGreaterThan(50);
  });

  it('asks for no deltas with deltas: false, and receives none', async () => {
    const deltas = countDeltas();
    const g = await gw.start();
    const client = sdk(g, { deltas: false });
    const store = client.positions<Value>('ACC1');
    await eventually(() => store.ready, 'the snapshot');
    expect(client.welcome?.deltas).toBe(false);
    let seq = 0;
    for (let n = 1; n <= 5; n++)
      [{ seq }] = (await publishOk(g, {
        channel: CHANNEL,
        key: 'EURUSD',
        data: { side: 'long', size: 10, price: n },
      })) as [{ seq: number }];
    await eventually(() => store.subscription.position?.seq === seq, 'the last update');
    expect(store.get('EURUSD')).toEqual({ side: 'long', size: 10, price: 5 });
    expect(deltas.count).toBe(0);
  });
});
