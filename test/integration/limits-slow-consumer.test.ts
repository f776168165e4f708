/**
 * Slow consumers (DESIGN §2, §9): a client that stops reading is closed with 4008 when its
 * queue is full or a message waited longer than WEBSOCKET_BROADCAST_TIMEOUT, it is logged
 * so the operator can find it, and it never slows publishing or other clients.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TestClient, until } from '../support/client.js';
import { admin, publish, signToken, startGateway, type TestGateway } from '../support/gateway.js';

interface ConnectionInfo {
  client_id: string;
  queue_depth: number;
  state: string;
}

/** 20 KB of padding: large events fill a stopped client's socket and kernel buffers fast. */
const PAD = 'x'.repeat(20_000);
const BATCH = 40;

function clientId(c: TestClient): string {
  const welcome = c.messages.find((m) => m.type === 'welcome');
  if (typeof welcome?.client_id !== 'string') throw new Error('client has no welcome');
  return welcome.client_id;
}

function bigSignals(from: number): { channel: string; data: { n: number; pad: string } }[] {
  return Array.from({ length: BATCH }, (_, i) => ({
    channel: 'signals',
    data: { n: from + i + 1, pad: PAD },
  }));
}

describe('slow consumers', () => {
  let tg: TestGateway;
  const clients: TestClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    await until(() => tg.gateway.connections.size === 0, 5000, 'clients to disconnect');
    await tg.stop();
  });

  /** A subscriber to `signals` that then stops reading its socket. */
  async function stoppedSubscriber(): Promise<TestClient> {
    const c = await TestClient.authed(tg.ws, await signToken());
    clients.push(c);
    await c.subscribe('signals');
    c.ws.pause();
    return c;
  }

  async function connection(id: string): Promise<ConnectionInfo | undefined> {
    const res = await admin(tg, 'GET', '/websocket/connections');
    return (res.body as ConnectionInfo[]).find((c) => c.client_id === id);
  }

  function slowConsumerLog(id: string): Record<string, unknown> | undefined {
    return tg.logs.find((l) => l.message === 'Slow consumer closed' && l.client_id === id);
  }

  /**
   * Publishes large signals in batches until the gateway holds messages queued for the
   * stopped client, or has already let it go. Returns how many events were published.
   */
  async function publishUntilQueued(id: string): Promise<number> {
    let published = 0;
    for (let batch = 0; batch < 60; batch++) {
      const res = await publish(tg, { events: bigSignals(published) });
      expect(res.status).toBe(200);
      published += BATCH;
      const conn = await connection(id);
      if (conn === undefined || conn.state !== 'open' || conn.queue_depth > 0) return published;
    }
    throw new Error('the stopped client never had messages queued');
  }

  it('closes a client whose queue is full with 4008 and logs it with client_id and queue_depth', async () => {
    tg = await startGateway({ WEBSOCKET_MESSAGE_QUEUE_SIZE: '10' });
    const slow = await stoppedSubscriber();
    const id = clientId(slow);
    let published = await publishUntilQueued(id);
    while (slowConsumerLog(id) === undefined && published < 2000) {
      expect((await publish(tg, { events: bigSignals(published) })).status).toBe(200);
      published += BATCH;
    }
    slow.ws.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(4008);
    expect(closed.reason).toMatch(/queue full \(10 messages\)/);

    const entry = slowConsumerLog(id);
    expect(entry).toMatchObject({ level: 'WARN', client_id: id, user_id: 'user-1' });
    expect(entry?.queue_depth).toBe(10);
    const metrics = await (await fetch(`${tg.http}/metrics`)).text();
    expect(metrics).toContain(
      'archon_websocket_errors_total{type="slow_consumer",server="test-1"} 1',
    );
    expect(metrics).toContain('archon_websocket_disconnects_total{code="4008",server="test-1"} 1');
  });

  it('closes a client whose oldest message waited longer than the broadcast timeout with 4008, even with room in its queue', async () => {
    tg = await startGateway({
      WEBSOCKET_BROADCAST_TIMEOUT: '0.5',
      WEBSOCKET_MESSAGE_QUEUE_SIZE: '100000',
      WEBSOCKET_MESSAGE_QUEUE_BYTES: String(1 << 30),
    });
    const slow = await stoppedSubscriber();
    const id = clientId(slow);
    await publishUntilQueued(id);
    await until(() => slowConsumerLog(id) !== undefined, 5000, 'the slow consumer to be closed');
    slow.ws.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(4008);
    expect(closed.reason).toMatch(/queued longer than 0\.5s/);
    expect(slowConsumerLog(id)).toMatchObject({ level: 'WARN', client_id: id });
  });

  it('never holds back publishing or a fast client: the fast client gets every event in order', async () => {
    tg = await startGateway({ WEBSOCKET_HISTORY_SIZE: '5000' });
    const fast = await TestClient.authed(tg.ws, await signToken());
    clients.push(fast);
    await fast.subscribe('signals');
    const slow = await stoppedSubscriber();
    const total = 30 * BATCH;
    for (let published = 0; published < total; published += BATCH) {
      const res = await publish(tg, { events: bigSignals(published) });
      expect(res.status).toBe(200);
      expect((res.body as { results: unknown[] }).results).toHaveLength(BATCH);
    }
    await until(() => fast.events('signals').length === total, 15_000, 'every event');
    const received = fast.events('signals');
    expect(received.map((e) => e.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(received.map((e) => (e.data as { n: number }).n)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    // The slow client was let go (4008) rather than allowed to hold messages for ever.
    slow.ws.resume();
    expect((await slow.closed).code).toBe(4008);
    expect(fast.ws.readyState).toBe(fast.ws.OPEN);
  });

  it('logs an ERROR with client_id and queue_depth when a peer vanishes with messages still queued', async () => {
    tg = await startGateway();
    const vanishing = await stoppedSubscriber();
    const id = clientId(vanishing);
    await publishUntilQueued(id);
    const depth = (await connection(id))?.queue_depth ?? 0;
    expect(depth).toBeGreaterThan(0);
    vanishing.ws.terminate();
    await until(
      () => tg.logs.some((l) => l.message === 'WebSocket send failed' && l.client_id === id),
      5000,
      'the send failure to be logged',
    );
    const entry = tg.logs.find((l) => l.message === 'WebSocket send failed');
    expect(entry).toMatchObject({
      level: 'ERROR',
      client_id: id,
      error: 'Connection closed',
      queue_depth: depth,
    });
    const metrics = await (await fetch(`${tg.http}/metrics`)).text();
    expect(metrics).toContain(
      'archon_websocket_errors_total{type="send_failed",server="test-1"} 1',
    );
  });
});
