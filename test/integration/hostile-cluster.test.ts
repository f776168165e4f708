/**
 * Hostile publishes in cluster mode (docs/security.md, Publish validation): two in-process
 * instances on a redis-server of this file's own (test/support/redis.ts, never the machine's
 * Redis). Publish ids cannot be made to collide across channels, and a batch is stored whole or
 * not at all.
 */
import { describe, expect, it } from 'vitest';
import { seqs, TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import {
  publish,
  signToken,
  type ErrorBody,
  type PublishAnswer,
  type TestGateway,
} from '../support/gateway.js';
import { nestedArrays, publishRaw, storedSeqs } from '../support/hostile.js';
import { useCluster } from '../support/cluster.js';

describe('hostile publishes (Redis backplane)', () => {
  const cluster = useCluster();
  const instance = (server: string) => cluster.instance(server);

  async function subscriber(g: TestGateway, channel: string): Promise<TestClient> {
    const c = await cluster.client(g, { sub: 'watcher' });
    expect(await c.subscribe(channel)).toMatchObject({ type: 'subscribed', seq: 0 });
    return c;
  }

  /** Nothing of a refused batch was stored: the next event is seq 1 everywhere. */
  async function nothingStored(a: TestGateway, b: TestGateway, live: TestClient) {
    const next = await publish(a, { channel: 'signals', data: { after: true } });
    expect(next.status).toBe(200);
    expect((next.body as PublishAnswer).results[0]?.seq).toBe(1);
    await eventually(() => live.events('signals').length >= 1, 'the next event');
    expect(seqs(live.events('signals'))).toEqual([1]);
    expect(await storedSeqs(b, 'signals', await signToken())).toEqual([1]);
  }

  it('keeps publish ids per channel: (signals, x:1) and (signals:x, 1) are two events, both stored', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const first = await publish(a, { channel: 'signals', id: 'x:1', data: { a: 1 } });
    const second = await publish(b, { channel: 'signals:x', id: '1', data: { b: 1 } });
    for (const res of [first, second]) {
      expect(res.status).toBe(200);
      const result = (res.body as PublishAnswer).results[0];
      expect(result?.seq).toBe(1);
      expect(result?.duplicate).toBeUndefined();
    }
    expect((first.body as PublishAnswer).results[0]?.channel).toBe('signals');
    expect((second.body as PublishAnswer).results[0]?.channel).toBe('signals:x');
    const token = await signToken();
    expect(await storedSeqs(a, 'signals', token)).toEqual([1]);
    expect(await storedSeqs(a, 'signals:x', token)).toEqual([1]);
    // Ids still do their job: a retry on either instance is the same event.
    const retry = await publish(b, { channel: 'signals', id: 'x:1', data: { a: 1 } });
    expect((retry.body as PublishAnswer).results[0]).toMatchObject({
      channel: 'signals',
      seq: 1,
      duplicate: true,
    });
  });

  it('refuses a batch of a valid event and one nested 8,000 levels deep, and stores neither', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const live = await subscriber(b, 'signals');
    const res = await publishRaw(
      a,
      `{"events":[{"channel":"signals","data":{"ok":true}},{"channel":"signals","data":${nestedArrays(8000)}}]}`,
    );
    expect(res.status).toBe(400);
    const error = (res.body as ErrorBody).error;
    expect(error.code).toBe('invalid_event');
    expect(error.message).toContain('events.1');
    await nothingStored(a, b, live);
  });

  it('refuses a batch whose second event has data over 256 KiB, and stores neither', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const live = await subscriber(b, 'signals');
    const res = await publish(a, {
      events: [
        { channel: 'signals', data: { ok: true } },
        { channel: 'signals', data: { pad: 'x'.repeat(300 * 1024) } },
      ],
    });
    expect(res.status).toBe(400);
    const error = (res.body as ErrorBody).error;
    expect(error.code).toBe('invalid_event');
    expect(error.message).toContain('events.1');
    await nothingStored(a, b, live);
  });
});
