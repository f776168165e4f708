import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestClient } from '../support/client.js';
import { publish, signToken, startGateway, type TestGateway } from '../support/gateway.js';

describe('gateway smoke', () => {
  let tg: TestGateway;
  beforeEach(async () => {
    tg = await startGateway();
  });
  afterEach(async () => {
    await tg.stop();
  });

  it('delivers a published signal to a subscribed client', async () => {
    const c = await TestClient.authed(tg.ws, await signToken());
    const sub = await c.subscribe('signals');
    expect(sub).toMatchObject({ type: 'subscribed', channel: 'signals', seq: 0, recovered: true });
    const res = await publish(tg, { channel: 'signals', data: { symbol: 'EURUSD' } });
    expect(res.status).toBe(200);
    const ev = await c.type('event');
    expect(ev).toMatchObject({ channel: 'signals', seq: 1, key: null, data: { symbol: 'EURUSD' } });
    c.close();
  });
});
