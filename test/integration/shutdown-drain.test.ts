/**
 * Graceful shutdown of a gateway in this process (docs/protocol.md#server-shutdown): health
 * turns 503, new upgrades get 503, clients are closed with 1012 after what was queued for them
 * is written, and shutdown finishes within WEBSOCKET_SHUTDOWN_TIMEOUT whatever the clients do.
 */
import { describe, expect, it } from 'vitest';
import { TestClient } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { expectExactly } from '../support/gateway.js';
import { HealthAnswerSchema } from '../../src/protocol/probes.js';

describe('graceful shutdown', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '3' });

  it('answers health with 503 draining and refuses new upgrades with 503 while draining', async () => {
    const tg = await gw.start();
    const polite = [await gw.authed(), await gw.authed(), await gw.authed()];
    // A client that stopped reading never answers the close: it keeps the gateway draining
    // until the shutdown deadline, so the checks below cannot race the end of the drain.
    const stuck = await gw.authed();
    stuck.ws.pause();

    const stopping = tg.gateway.shutdown();
    const health = await fetch(`${tg.http}/api/health`);
    expect(health.status).toBe(503);
    const body: unknown = await health.json();
    expectExactly('/api/health', HealthAnswerSchema, body);
    expect(body).toEqual({ status: 'draining', server: 'test-1' });
    const late = gw.track(new TestClient(`${tg.ws}/api/v1/ws`));
    await expect(late.opened).rejects.toThrow('HTTP 503');

    for (const c of polite)
      expect(await c.closed).toEqual({ code: 1012, reason: 'server restarting' });
    await stopping;
    stuck.ws.resume();
    expect((await stuck.closed).code).toBe(1012);
  });

  it('closes every connected client with 1012', async () => {
    const tg = await gw.start();
    const all = [
      await gw.authed(),
      await gw.authed(),
      await gw.authed(),
      await gw.authed(),
      await gw.authed(),
    ];
    await all[0]?.subscribe('signals');
    await tg.gateway.shutdown();
    const codes = await Promise.all(all.map(async (c) => (await c.closed).code));
    expect(codes).toEqual([1012, 1012, 1012, 1012, 1012]);
    expect(tg.gateway.connections.size).toBe(0);
  });

  it('writes the messages queued before shutdown before the 1012 close', async () => {
    const tg = await gw.start();
    const c = await gw.authed();
    await c.subscribe('signals');
    // Published in this turn: fan-out queues them, and the write would come on the next turn;
    // shutdown starts before that turn, so it must write them itself before closing.
    const published = tg.gateway.publish(
      Array.from({ length: 50 }, (_, i) => ({ channel: 'signals', key: null, data: { n: i + 1 } })),
    );
    const stopping = tg.gateway.shutdown();
    expect(c.ws.readyState).toBe(c.ws.OPEN);
    expect(c.events('signals')).toHaveLength(0);
    expect((await published).map((r) => r.seq)).toHaveLength(50);
    const closed = await c.closed;
    expect(closed.code).toBe(1012);
    expect(c.events('signals').map((e) => e.seq)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    expect(c.messages.at(-1)).toMatchObject({ type: 'event', seq: 50 });
    await stopping;
  });

  it('finishes within WEBSOCKET_SHUTDOWN_TIMEOUT even when a client never answers the close', async () => {
    const tg = await gw.start();
    await gw.authed();
    const stuck = await gw.authed();
    stuck.ws.pause();
    const started = Date.now();
    await tg.gateway.shutdown();
    const elapsed = Date.now() - started;
    // The deadline is the contract an orchestrator's kill timer relies on.
    expect(elapsed).toBeLessThanOrEqual(3000);
    stuck.ws.resume();
    expect((await stuck.closed).code).toBe(1012);
    const refused = await fetch(`${tg.http}/api/health`).then(
      (res) => res.status,
      () => 'refused',
    );
    expect(refused).toBe('refused');
  });

  it('shuts down once when asked twice (a second SIGTERM during the drain)', async () => {
    const tg = await gw.start();
    const c = await gw.authed();
    const first = tg.gateway.shutdown();
    const second = tg.gateway.shutdown();
    expect(second).toBe(first);
    await Promise.all([first, second]);
    expect((await c.closed).code).toBe(1012);
    expect(tg.logs.filter((l) => l.message === 'Shutdown complete')).toHaveLength(1);
  });
});
