/**
 * What an operator sees after an attack (docs/security.md, What the operator sees): every
 * refusal counted by its error code, the new rejection reasons, the unauthenticated gauge, and
 * the new limits in the status answer.
 */
import { describe, expect, it } from 'vitest';
import type { StatusAnswer } from '../../src/protocol/index.js';
import { errorsOf, TestClient } from '../support/client.js';
import { useGateway } from '../support/fixture.js';
import { admin, signToken } from '../support/gateway.js';
import { metricsText, parseSamples, valueOf } from '../support/metrics.js';

describe('metrics and status after an attack', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2', WEBSOCKET_AUTH_TIMEOUT: '60' });

  it('counts each refusal by its error code and reason, and reports the unauthenticated connections', async () => {
    const tg = await gw.start({
      WEBSOCKET_MAX_UNAUTHENTICATED: '2',
      WEBSOCKET_MAX_CONNECTIONS_PER_USER: '1',
      WEBSOCKET_MAX_CONNECTIONS_PER_IP: '8',
    });

    // A malformed message.
    const sloppy = await gw.authed({ sub: 'sloppy' });
    sloppy.send('not json');
    expect(await sloppy.type('error')).toMatchObject({ code: 'invalid_json' });

    // Too much before hello.
    const chatty = await gw.connect();
    chatty.send({ op: 'hello', token: 'x'.repeat(40 * 1024) });
    expect((await chatty.closed).code).toBe(1008);

    // A second connection of a user allowed one.
    await gw.authed({ sub: 'alice' });
    const again = await gw.connect();
    again.send({ op: 'hello', token: await signToken({ sub: 'alice' }) });
    expect((await again.closed).code).toBe(1013);

    // Nine connections from one address over a limit of eight.
    for (let i = 0; i < 8; i++) await gw.authed({ sub: `ip-${i}` }, { localAddress: '127.0.0.3' });
    const ninth = gw.track(new TestClient(`${tg.ws}/api/v1/ws`, { localAddress: '127.0.0.3' }));
    await expect(ninth.opened).rejects.toThrow('HTTP 429');

    // Three silent sockets over a cap of two: the oldest goes.
    const [oldest] = [await gw.connect(), await gw.connect(), await gw.connect()];
    expect((await oldest.closed).code).toBe(1013);
    expect(errorsOf(oldest).map((m) => m.code)).toEqual(['unauthenticated_evicted']);

    const samples = parseSamples(await metricsText(tg));
    const errors = (type: string) => valueOf(samples, 'archon_websocket_errors_total', { type });
    expect(errors('invalid_json')).toBe(1);
    expect(errors('unauthenticated_limit')).toBe(1);
    expect(errors('user_connection_limit')).toBe(1);
    expect(errors('unauthenticated_evicted')).toBe(1);
    const rejected = (reason: string) =>
      valueOf(samples, 'archon_websocket_connections_rejected_total', { reason });
    expect(rejected('per_user')).toBe(1);
    expect(rejected('per_ip')).toBe(1);
    expect(samples.some((s) => s.name === 'archon_websocket_connections_unauthenticated')).toBe(
      true,
    );
    expect(valueOf(samples, 'archon_websocket_connections_unauthenticated')).toBe(2);

    const status = await admin(tg, 'GET', '/websocket/status');
    expect(status.status).toBe(200);
    expect(status.body as StatusAnswer).toMatchObject({
      unauthenticated_connections: 2,
      max_unauthenticated: 2,
      max_connections_per_user: 1,
      max_connections_per_ip: 8,
    });
  });
});
