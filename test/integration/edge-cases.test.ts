/** Inputs and sizes at the edges: each once took a wrong turn somewhere. */
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { clientId } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { publishUntilQueued } from '../support/admin.js';
import { admin, publish, type PublishAnswer } from '../support/gateway.js';

describe('edge cases', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });

  it('refuses an upgrade whose request target is not a valid URL, and keeps serving', async () => {
    const tg = await gw.start();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(tg.port, '127.0.0.1', () => {
        socket.write(
          'GET //x:99999/ HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
      });
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 404/);
    expect((await fetch(`${tg.http}/api/health`)).status).toBe(200);
  });

  it('treats the same publish id on two channels as two events', async () => {
    const tg = await gw.start();
    const a = await publish(tg, {
      channel: 'positions:ACC1',
      key: 'EURUSD',
      data: {},
      id: 'fill-42',
    });
    const b = await publish(tg, {
      channel: 'risk:ACC1',
      data: { level: 'warning' },
      id: 'fill-42',
    });
    expect((a.body as PublishAnswer).results[0]).not.toHaveProperty('duplicate');
    expect((b.body as PublishAnswer).results[0]).toMatchObject({ channel: 'risk:ACC1', seq: 1 });
    expect((b.body as PublishAnswer).results[0]).not.toHaveProperty('duplicate');
  });

  it('replays a gap larger than the client queue without closing the client as slow', async () => {
    const tg = await gw.start({ WEBSOCKET_MESSAGE_QUEUE_SIZE: '10' });
    const first = await gw.authed();
    const sub = await first.subscribe('signals');
    first.close();
    await publish(tg, {
      events: Array.from({ length: 50 }, (_, i) => ({ channel: 'signals', data: { i } })),
    });
    const c = await gw.authed();
    const resumed = await c.subscribe('signals', { epoch: sub.epoch as string, seq: 0 });
    expect(resumed).toMatchObject({ recovered: true, replayed: 50 });
    await eventually(() => c.events('signals').length === 50, 'the whole replay');
    expect(c.events('signals').map((m) => m.seq)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
  });

  it('keeps pings and replies through an operator queue flush', async () => {
    const tg = await gw.start({ WEBSOCKET_PING_INTERVAL: '0.3', WEBSOCKET_PING_TIMEOUT: '0.6' });
    const c = await gw.authed();
    await c.subscribe('signals');
    c.ws.pause();
    await publishUntilQueued(tg, clientId(c));
    await admin(tg, 'POST', '/websocket/queue/flush');
    c.ws.resume();
    // The client answers pings as they come; a dropped ping would have it closed with 4009.
    const answer = setInterval(() => c.send({ op: 'pong' }), 100);
    try {
      await c.type('resync');
      // The subject is that nothing happens for longer than the ping timeout (0.6 s).
      await new Promise((r) => setTimeout(r, 1000));
      expect(c.ws.readyState).toBe(c.ws.OPEN);
    } finally {
      clearInterval(answer);
    }
  });
});
