/**
 * The client SDK follows the close-code policy of src/protocol/close-codes.ts: the gateway
 * closes the SDK's connection with a code, and the SDK stops, reconnects, or backs off.
 */
import { describe, expect, it } from 'vitest';
import {
  type ClientError,
  type ConnectionState,
  type DisconnectInfo,
  type RetryInfo,
} from '../../src/client/index.js';
import { eventually } from '../support/eventually.js';
import { useGateway } from '../support/fixture.js';
import { useSdk } from '../support/sdk.js';
import { publish, type TestGateway } from '../support/gateway.js';

describe('client SDK: close codes', () => {
  const gw = useGateway({ WEBSOCKET_SHUTDOWN_TIMEOUT: '2' });
  const sdk = useSdk({ backoff: { baseMs: 20, capMs: 100 } });

  /** Closes the SDK's connection from the gateway with this code. */
  function closeFromServer(g: TestGateway, code: number): void {
    const [conn] = g.gateway.connections;
    if (!conn) throw new Error('no connection to close');
    conn.close(code, `closed with ${code} by the test`);
  }

  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  it.each([4400, 4003])(
    'stops on close code %i without retrying, and reports why',
    async (code) => {
      const g = await gw.start();
      const client = sdk(g);
      const states: ConnectionState[] = [];
      client.on('state', (s) => states.push(s));
      const errors: ClientError[] = [];
      client.on('error', (e) => errors.push(e));
      await eventually(() => client.state === 'connected', 'connected');

      closeFromServer(g, code);
      await eventually(() => client.state === 'closed', 'closed');
      expect(errors).toEqual([expect.objectContaining({ code: 'closed', closeCode: code })]);
      expect(client.nextRetryAt).toBeNull();
      // The subject is that nothing happens: many backoff windows later, still no new
      // connection.
      await sleep(300);
      expect(g.gateway.connections.size).toBe(0);
      expect(states).toEqual(['connected', 'closed']);
    },
  );

  it.each([4008, 4009, 4010, 1011])(
    'reconnects after close code %i and resumes the subscription',
    async (code) => {
      const g = await gw.start();
      const client = sdk(g);
      const seqs: number[] = [];
      const sub = client.subscribe('signals', (e) => seqs.push(e.seq));
      await eventually(() => sub.state === 'live', 'live');
      await publish(g, { channel: 'signals', data: {} });
      await eventually(() => seqs.length === 1, 'an event');
      const first = client.welcome?.clientId;

      const closes: DisconnectInfo[] = [];
      client.on('disconnect', (d) => closes.push(d));
      closeFromServer(g, code);
      // Not a poll for `reconnecting`: with these short delays it may last only milliseconds.
      await eventually(() => closes.length === 1, 'the close');
      expect(closes[0]).toMatchObject({ code, action: 'reconnect' });
      await publish(g, { channel: 'signals', data: {} });
      await eventually(
        () => client.state === 'connected' && client.welcome?.clientId !== first,
        'reconnected',
      );
      await publish(g, { channel: 'signals', data: {} });
      await eventually(() => seqs.length === 3, 'the missed and the next event');
      expect(seqs).toEqual([1, 2, 3]);
    },
  );

  it('backs off longer after 1013 (at capacity): at least half the slow window', async () => {
    const g = await gw.start();
    const client = sdk(g, { backoff: { baseMs: 20, capMs: 2000, slowMs: 400 } });
    const retries: RetryInfo[] = [];
    client.on('retry', (r) => retries.push(r));
    await eventually(() => client.state === 'connected', 'connected');

    closeFromServer(g, 1013);
    await eventually(() => retries.length === 1, 'a planned retry');
    const [retry] = retries;
    expect(retry?.delayMs).toBeGreaterThanOrEqual(200);
    expect(retry?.delayMs).toBeLessThanOrEqual(400);
    expect(client.nextRetryAt).toBe(retry?.at);
    await eventually(() => client.state === 'connected', 'reconnected');
  });
});
