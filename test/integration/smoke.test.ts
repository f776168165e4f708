import { describe, expect, it } from 'vitest';
import { useGateway } from '../support/fixture.js';
import { publish } from '../support/gateway.js';

describe('gateway smoke', () => {
  const gw = useGateway();

  it('delivers a published signal to a subscribed client', async () => {
    const tg = await gw.start();
    const c = await gw.authed();
    const sub = await c.subscribe('signals');
    expect(sub).toMatchObject({ type: 'subscribed', channel: 'signals', seq: 0, recovered: true });
    const res = await publish(tg, { channel: 'signals', data: { symbol: 'EURUSD' } });
    expect(res.status).toBe(200);
    const ev = await c.type('event');
    expect(ev).toMatchObject({ channel: 'signals', seq: 1, key: null, data: { symbol: 'EURUSD' } });
    c.close();
  });
});
