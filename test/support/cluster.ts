/** Gateways in cluster mode on a Redis of the test's own, emptied between tests. */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { TestClient } from './client.js';
import { signToken, startGateway, type TestGateway } from './gateway.js';
import { startRedis, type TestRedis } from './redis.js';

export interface ClusterFixture {
  readonly redis: () => TestRedis;
  /** A gateway on the fixture's Redis, stopped after the test. */
  readonly instance: (server: string, env?: Record<string, string>) => Promise<TestGateway>;
  /** Keeps a client to close after the test. */
  readonly track: (client: TestClient) => TestClient;
  /** An authenticated client of `g`, closed after the test. */
  readonly client: (
    g: TestGateway,
    claims?: { sub?: string; accounts?: string[] },
  ) => Promise<TestClient>;
}

/** Call inside a `describe`: starts one redis-server for it and empties it after each test. */
export function useCluster(): ClusterFixture {
  let redis: TestRedis | null = null;
  const gateways: TestGateway[] = [];
  const clients: TestClient[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    await Promise.all(gateways.splice(0).map((g) => g.stop()));
    // Each test starts from an empty Redis.
    await redis?.restart();
  });
  const current = (): TestRedis => {
    if (!redis) throw new Error('the cluster fixture has no Redis yet (use it inside a test)');
    return redis;
  };
  const track = (c: TestClient): TestClient => {
    clients.push(c);
    return c;
  };
  return {
    redis: current,
    track,
    instance: async (server, env = {}) => {
      const g = await startGateway({
        ARCHON_REDIS_URL: current().url,
        ARCHON_SERVER_ID: server,
        WEBSOCKET_SHUTDOWN_TIMEOUT: '2',
        ...env,
      });
      gateways.push(g);
      return g;
    },
    client: async (g, claims = {}) => track(await TestClient.authed(g.ws, await signToken(claims))),
  };
}
