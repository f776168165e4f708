/**
 * One gateway per test and the clients it serves, torn down after each test: every tracked
 * client is terminated, the gateway is given time to see them go, then it is stopped.
 */
import { afterEach } from 'vitest';
import { TestClient } from './client.js';
import { eventually } from './eventually.js';
import { signToken, startGateway, type TestGateway } from './gateway.js';

export type GatewayOptions = NonNullable<Parameters<typeof startGateway>[1]>;

export type TokenClaims = Parameters<typeof signToken>[0];
export type ClientOptions = NonNullable<ConstructorParameters<typeof TestClient>[1]>;

export interface GatewayFixture {
  /** Starts this test's gateway with the fixture's defaults, overridden by env. */
  start(env?: Record<string, string>, options?: GatewayOptions): Promise<TestGateway>;
  /** The gateway the running test started. */
  readonly tg: TestGateway;
  /** Has the client terminated after the test; returns it. */
  track<T extends TestClient>(client: T): T;
  /** A tracked client on /api/v1/ws, open but not authenticated. */
  connect(options?: ClientOptions): Promise<TestClient>;
  /**
   * A tracked client on /api/v1/ws that said hello and got its welcome, with a token signed
   * with these claims (or this token itself) and `client` as its client version.
   */
  authed(
    token?: TokenClaims | string,
    options?: ClientOptions & { client?: string },
  ): Promise<TestClient>;
}

/**
 * Registers the teardown as an afterEach of the enclosing describe (or of the file, when
 * called at its top level) and returns the fixture. Each test calls start() itself, or a
 * beforeEach does; `defaults` are the environment every start() begins from.
 */
export function useGateway(defaults: Record<string, string> = {}): GatewayFixture {
  let current: TestGateway | undefined;
  const clients: TestClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.ws.terminate();
    const tg = current;
    current = undefined;
    if (tg === undefined) return;
    try {
      // Shutdown spreads its closes over seconds: let the server see these go first.
      await eventually(() => tg.gateway.connections.size === 0, 'clients to disconnect');
    } finally {
      await tg.stop();
    }
  });

  function gateway(): TestGateway {
    if (current === undefined) throw new Error('no gateway started in this test');
    return current;
  }

  function track<T extends TestClient>(client: T): T {
    clients.push(client);
    return client;
  }

  async function connect(options?: ClientOptions): Promise<TestClient> {
    const c = track(new TestClient(`${gateway().ws}/api/v1/ws`, options));
    await c.opened;
    return c;
  }

  async function authed(
    token: TokenClaims | string = {},
    options: ClientOptions & { client?: string } = {},
  ): Promise<TestClient> {
    const { client = 'test/1.0', ...wsOptions } = options;
    const jwt = typeof token === 'string' ? token : await signToken(token);
    const c = await connect(wsOptions);
    c.send({ op: 'hello', token: jwt, client });
    await c.type('welcome');
    return c;
  }

  return {
    async start(env = {}, options = {}) {
      if (current !== undefined) throw new Error('this test already started its gateway');
      current = await startGateway({ ...defaults, ...env }, options);
      return current;
    },
    get tg() {
      return gateway();
    },
    track,
    connect,
    authed,
  };
}
