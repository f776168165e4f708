/**
 * Slow consumers (docs/protocol.md#slow-consumers, docs/performance.md): a client that stops
 * reading is closed with 4008 when its queue is full or a message waited longer than
 * WEBSOCKET_BROADCAST_TIMEOUT, it is logged so the operator can find it, and it never slows
 * publishing or other clients.
 */
import { describe, expect, it } from 'vitest';
import { BATCH, bigSignals, connectionOf, publishUntilQueued } from '../support/admin.js';
import { clientId, type TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { publish, type PublishAnswer } from '../support/gateway.js';
import { metricsText } from '../support/metrics.js';

describe('slow consumers', () => {
  const gw = useGateway();

  /** A subscriber to `signals` that then stops reading its socket. */
  async function stoppedSubscriber(): Promise<TestClient> {
    const c = await gw.authed();
    await c.subscribe('signals');
    c.ws.pause();
    return c;
  }

  function slowConsumerLog(id: string): Record<string, unknown> | undefined {
    return gw.tg.logs.find((l) => l.message === 'Slow consumer closed' && l.client_id === id);
  }

  it('closes a client whose queue is full with 4008 and logs it with client_id and queue_depth', async () => {
    const tg = await gw.start({ WEBSOCKET_MESSAGE_QUEUE_SIZE: '10' });
    const slow = await stoppedSubscriber();
    const id = clientId(slow);
    let published = await publishUntilQueued(tg, id);
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
    const metrics = await metricsText(tg);
    expect(metrics).toContain(
      'archon_websocket_errors_total{type="slow_consumer",server="test-1"} 1',
    );
    expect(metrics).toContain('archon_websocket_disconnects_total{code="4008",server="test-1"} 1');
  });

  it('closes a client whose oldest message waited longer than the broadcast timeout with 4008, even with room in its queue', async () => {
    const tg = await gw.start({
      WEBSOCKET_BROADCAST_TIMEOUT: '0.5',
      WEBSOCKET_MESSAGE_QUEUE_SIZE: '100000',
      WEBSOCKET_MESSAGE_QUEUE_BYTES: String(1 << 30),
    });
    const slow = await stoppedSubscriber();
    const id = clientId(slow);
    await publishUntilQueued(tg, id);
    await eventually(() => slowConsumerLog(id) !== undefined, 'the slow consumer to be closed');
    slow.ws.resume();
    const closed = await slow.closed;
    expect(closed.code).toBe(4008);
    expect(closed.reason).toMatch(/queued longer than 0\.5s/);
    expect(slowConsumerLog(id)).toMatchObject({ level: 'WARN', client_id: id });
  });

  it('never holds back publishing or a fast client: the fast client gets every event in order', async () => {
    const tg = await gw.start({ WEBSOCKET_HISTORY_SIZE: '5000' });
    const fast = await gw.authed();
    await fast.subscribe('signals');
    const slow = await stoppedSubscriber();
    const total = 30 * BATCH;
    for (let published = 0; published < total; published += BATCH) {
      const res = await publish(tg, { events: bigSignals(published) });
      expect(res.status).toBe(200);
      expect((res.body as PublishAnswer).results).toHaveLength(BATCH);
    }
    await eventually(() => fast.events('signals').length === total, 'every event', {
      timeoutMs: 15_000,
    });
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
    const tg = await gw.start();
    const vanishing = await stoppedSubscriber();
    const id = clientId(vanishing);
    await publishUntilQueued(tg, id);
    const depth = (await connectionOf(tg, id))?.queue_depth ?? 0;
    expect(depth).toBeGreaterThan(0);
    vanishing.ws.terminate();
    await eventually(
      () => tg.logs.some((l) => l.message === 'WebSocket send failed' && l.client_id === id),
      'the send failure to be logged',
    );
    const entry = tg.logs.find((l) => l.message === 'WebSocket send failed');
    expect(entry).toMatchObject({
      level: 'ERROR',
      client_id: id,
      error: 'Connection closed',
      queue_depth: depth,
    });
    const metrics = await metricsText(tg);
    expect(metrics).toContain(
      'archon_websocket_errors_total{type="send_failed",server="test-1"} 1',
    );
  });
});
