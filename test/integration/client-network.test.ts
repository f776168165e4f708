/**
 * The client SDK on a bad network, through a TCP proxy the test controls: heartbeats, a link
 * that silently stops delivering (stale → reconnect), and a link so slow the gateway queues
 * for it until an operator flush (resync → resubscribe with since).
 */
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ArchonClient,
  type ArchonClientOptions,
  type ConnectionState,
  type DisconnectInfo,
  type Gap,
} from '../../src/client/index.js';
import { publishUntilQueued } from '../support/admin.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { useSdk } from '../support/sdk.js';
import { admin, publish, type TestGateway } from '../support/gateway.js';

interface Proxy {
  readonly port: number;
  /** Existing connections turn into a black hole: nothing passes, not even a close. */
  freeze(): void;
  /** Stops reading from the gateway: its socket buffers fill, then its queue. */
  stall(): void;
  release(): void;
  close(): void;
}

async function startProxy(targetPort: number): Promise<Proxy> {
  const pairs: { down: Socket; up: Socket; frozen: boolean }[] = [];
  const server = createServer((down) => {
    const up = connect(targetPort, '127.0.0.1');
    const pair = { down, up, frozen: false };
    pairs.push(pair);
    down.on('data', (d: Buffer) => {
      if (!pair.frozen) up.write(d);
    });
    up.on('data', (d: Buffer) => {
      if (!pair.frozen) down.write(d);
    });
    const end = () => {
      if (pair.frozen) return;
      down.destroy();
      up.destroy();
    };
    down.on('close', end);
    up.on('close', end);
    down.on('error', () => {});
    up.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('proxy has no port');
  return {
    port: address.port,
    freeze: () => pairs.forEach((p) => (p.frozen = true)),
    stall: () => pairs.forEach((p) => p.up.pause()),
    release: () => pairs.forEach((p) => p.up.resume()),
    close: () => {
      for (const p of pairs) {
        p.down.destroy();
        p.up.destroy();
      }
      server.close();
    },
  };
}

describe('client SDK: liveness and slow links', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const proxies: Proxy[] = [];
  afterEach(() => {
    for (const p of proxies.splice(0)) p.close();
  });
  // Registered last, so its clients close first.
  const sdk = useSdk();

  async function viaProxy(
    g: TestGateway,
    options: Partial<ArchonClientOptions> = {},
  ): Promise<ArchonClient> {
    const proxy = await startProxy(g.port);
    proxies.push(proxy);
    return sdk(g, { url: `ws://127.0.0.1:${proxy.port}/api/v1/ws`, ...options });
  }

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it('answers every ping: the gateway keeps a quiet connection over many ping intervals', async () => {
    const g = await gw.start({ WEBSOCKET_PING_INTERVAL: '0.4', WEBSOCKET_PING_TIMEOUT: '0.8' });
    const client = sdk(g);
    const closes: DisconnectInfo[] = [];
    client.on('disconnect', (d) => closes.push(d));
    await eventually(() => client.state === 'connected', 'connected');
    const id = client.welcome?.clientId;
    // The subject is that nothing happens: four ping intervals (0.4 s) pass without a close.
    await sleep(1800);
    expect(closes).toEqual([]);
    expect(client.welcome?.clientId).toBe(id);
    expect([...g.gateway.connections].map((c) => c.info('test-1').client_id)).toEqual([id]);
  });

  it('goes stale when the link stops delivering, then drops it, reconnects and resumes', async () => {
    const g = await gw.start({ WEBSOCKET_PING_INTERVAL: '0.3', WEBSOCKET_PING_TIMEOUT: '0.6' });
    const client = await viaProxy(g);
    const seqs: number[] = [];
    const sub = client.subscribe('signals', (e) => seqs.push(e.seq));
    await eventually(() => sub.state === 'live', 'live');
    const first = client.welcome?.clientId;
    const states: ConnectionState[] = [];
    client.on('state', (s) => states.push(s));
    const closes: DisconnectInfo[] = [];
    client.on('disconnect', (d) => closes.push(d));

    proxies[0]?.freeze();
    await publish(g, { channel: 'signals', data: {} }); // lost in the black hole
    await eventually(() => states.includes('stale'), 'stale');
    await eventually(
      () => client.state === 'connected' && client.welcome?.clientId !== first,
      'a new connection',
    );
    expect(states.slice(0, 3)).toEqual(['stale', 'reconnecting', 'connected']);
    expect(closes[0]).toMatchObject({ code: 1006, action: 'reconnect' });
    expect(closes[0]?.reason).toMatch(/nothing heard/);

    await eventually(() => seqs.length === 1, 'the lost event, replayed');
    await publish(g, { channel: 'signals', data: {} });
    await eventually(() => seqs.length === 2, 'a live event');
    expect(seqs).toEqual([1, 2]);
  });

  it('resubscribes with since on resync after an operator queue flush, losing nothing', async () => {
    const g = await gw.start({ WEBSOCKET_HISTORY_SIZE: '5000' });
    const client = await viaProxy(g);
    const seqs: number[] = [];
    const gaps: Gap[] = [];
    client.on('gap', (gap) => gaps.push(gap));
    const resyncs: string[][] = [];
    client.on('resync', (channels) => resyncs.push([...channels]));
    const sub = client.subscribe('signals', (e) => seqs.push(e.seq));
    await eventually(() => sub.state === 'live', 'live');
    const id = client.welcome?.clientId;
    if (id === undefined) throw new Error('no welcome');

    proxies[0]?.stall();
    let last = await publishUntilQueued(g, id);
    const flushed = await admin(g, 'POST', '/websocket/queue/flush');
    expect(flushed.body).toMatchObject({ clients: 1 });
    const more = await publish(g, {
      events: [1, 2, 3].map(() => ({ channel: 'signals', data: {} })),
    });
    expect(more.status).toBe(200);
    last += 3;
    proxies[0]?.release();

    await eventually(() => seqs.length === last, 'every event', { timeoutMs: 10_000 });
    expect(seqs).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    expect(resyncs).toEqual([['signals']]);
    expect(gaps).toEqual([]);
    expect(client.welcome?.clientId).toBe(id); // the same connection throughout
  });
});
