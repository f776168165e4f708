/** SDK clients for a test: built against a test gateway with fast retries, closed after it. */
import { afterEach } from 'vitest';
import { ArchonClient, type ArchonClientOptions } from '../../src/client/index.js';
import { signToken, type TestGateway } from './gateway.js';

export type SdkFactory = (g: TestGateway, options?: Partial<ArchonClientOptions>) => ArchonClient;

/**
 * Call inside a `describe`, after `useGateway` (hooks run in reverse order, so the clients
 * close before the gateway stops). `defaults` override the test defaults for every client.
 */
export function useSdk(defaults: Partial<ArchonClientOptions> = {}): SdkFactory {
  const clients: ArchonClient[] = [];
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  return (g, options = {}) => {
    const client = new ArchonClient({
      url: `${g.ws}/api/v1/ws`,
      // History is read from the gateway itself, also when `url` goes through a proxy.
      httpUrl: g.http,
      token: () => signToken({ accounts: ['ACC1'] }),
      backoff: { baseMs: 20, capMs: 200 },
      network: null,
      ...defaults,
      ...options,
    });
    clients.push(client);
    return client;
  };
}
