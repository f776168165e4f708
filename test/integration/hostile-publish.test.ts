/**
 * Hostile publishes in embedded mode (docs/security.md, Publish validation): data built to blow
 * the stack of whatever serializes it, or too big to fan out, is refused with 400 before
 * anything of the batch is stored, and the channel carries on without a gap.
 * test/integration/hostile-cluster.test.ts checks the same in Redis mode.
 */
import { describe, expect, it } from 'vitest';
import { eventually } from '../support/eventually.js';
import type { ErrorBody } from '../support/gateway.js';
import { seqs, type TestClient } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { publish, signToken, type PublishAnswer, type TestGateway } from '../support/gateway.js';
import { nestedArrays, publishRaw, storedSeqs } from '../support/hostile.js';

/** `data` nested 8,000 levels deep, as JSON text (JSON.stringify cannot build it). */
const DEEP_DATA = nestedArrays(8000);

describe('hostile publishes (memory backplane)', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

  async function subscriber(channel: string): Promise<TestClient> {
    const c = await gw.authed({ sub: 'watcher' });
    expect(await c.subscribe(channel)).toMatchObject({ type: 'subscribed', seq: 0 });
    return c;
  }

  /** Nothing was stored on `channel`: the next event is seq 1, live and in history. */
  async function nothingStored(tg: TestGateway, channel: string, live: TestClient) {
    const next = await publish(tg, { channel, data: { after: true } });
    expect(next.status).toBe(200);
    expect((next.body as PublishAnswer).results[0]?.seq).toBe(1);
    await eventually(() => live.events(channel).length >= 1, 'the next event');
    expect(seqs(live.events(channel))).toEqual([1]);
    expect(await storedSeqs(tg, channel, await signToken())).toEqual([1]);
  }

  function expectInvalidEvent(res: { status: number; body: unknown }, where?: string): void {
    expect(res.status).toBe(400);
    const error = (res.body as ErrorBody).error;
    expect(error.code).toBe('invalid_event');
    expect(error.message.length).toBeLessThan(500);
    if (where !== undefined) expect(error.message).toContain(where);
  }

  it('refuses data nested 8,000 levels deep with 400 invalid_event and stores nothing', async () => {
    const tg = await gw.start();
    const live = await subscriber('signals');
    const res = await publishRaw(tg, `{"channel":"signals","data":${DEEP_DATA}}`);
    expectInvalidEvent(res);
    await nothingStored(tg, 'signals', live);
  });

  it('refuses a batch of a valid event and one nested too deep, naming events.1, and stores neither', async () => {
    const tg = await gw.start();
    const live = await subscriber('signals');
    const res = await publishRaw(
      tg,
      `{"events":[{"channel":"signals","data":{"ok":true}},{"channel":"signals","data":${DEEP_DATA}}]}`,
    );
    expectInvalidEvent(res, 'events.1');
    await nothingStored(tg, 'signals', live);
  });

  it('accepts data nested 30 levels and refuses data nested 40 levels', async () => {
    const tg = await gw.start();
    const ok = await publishRaw(tg, `{"channel":"signals","data":${nestedArrays(30, '1')}}`);
    expect(ok.status).toBe(200);
    const deep = await publishRaw(tg, `{"channel":"signals","data":${nestedArrays(40, '1')}}`);
    expectInvalidEvent(deep);
    expect(await storedSeqs(tg, 'signals', await signToken())).toEqual([1]);
  });

  it('refuses a batch whose second event has data over 256 KiB, and stores neither', async () => {
    const tg = await gw.start();
    const live = await subscriber('signals');
    const res = await publish(tg, {
      events: [
        { channel: 'signals', data: { ok: true } },
        { channel: 'signals', data: { pad: 'x'.repeat(300 * 1024) } },
      ],
    });
    expectInvalidEvent(res, 'events.1');
    await nothingStored(tg, 'signals', live);
  });

  it('stores a batch that is valid throughout, in order', async () => {
    const tg = await gw.start();
    const live = await subscriber('signals');
    const res = await publish(tg, {
      events: [
        { channel: 'signals', data: { pad: 'x'.repeat(200 * 1024) } },
        { channel: 'signals', data: { nested: JSON.parse(nestedArrays(20, '1')) as unknown } },
      ],
    });
    expect(res.status).toBe(200);
    expect((res.body as PublishAnswer).results.map((r) => r.seq)).toEqual([1, 2]);
    await eventually(() => live.events('signals').length === 2, 'both events');
  });

  it('keeps publish ids per channel: (signals, x:1) and (signals:x, 1) are two events', async () => {
    const tg = await gw.start();
    const a = await publish(tg, { channel: 'signals', id: 'x:1', data: { a: 1 } });
    const b = await publish(tg, { channel: 'signals:x', id: '1', data: { b: 1 } });
    for (const res of [a, b]) {
      expect(res.status).toBe(200);
      const result = (res.body as PublishAnswer).results[0];
      expect(result?.seq).toBe(1);
      expect(result?.duplicate).toBeUndefined();
    }
    const retry = await publish(tg, { channel: 'signals', id: 'x:1', data: { a: 1 } });
    expect((retry.body as PublishAnswer).results[0]).toMatchObject({ seq: 1, duplicate: true });
    const token = await signToken();
    expect(await storedSeqs(tg, 'signals', token)).toEqual([1]);
    expect(await storedSeqs(tg, 'signals:x', token)).toEqual([1]);
  });
});
