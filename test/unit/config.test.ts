import { describe, expect, it } from 'vitest';
import { availableParallelism } from 'node:os';
import { ConfigError, ENV_NAMES, flagFor, loadConfig } from '../../src/server/config.js';
import { restartDelay } from '../../src/server/workers.js';

const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
};

describe('loadConfig', () => {
  it('applies the runbook defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8000,
      // Durations are set in seconds and held in milliseconds.
      pingIntervalMs: 30_000,
      pingTimeoutMs: 10_000,
      maxConnections: 10000,
      queueSize: 1000,
      broadcastTimeoutMs: 5000,
      authTimeoutMs: 5000,
      maxMessageSize: 65536,
      historySize: 1000,
      historyTtlMs: 300_000,
      shutdownTimeoutMs: 30_000,
      logLevel: 'info',
    });
    expect(c.serverId.length).toBeGreaterThan(0);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads lists and numbers from the environment', () => {
    const c = loadConfig({
      ARCHON_ADMIN_TOKENS: 'a, b,,c',
      WEBSOCKET_PING_INTERVAL: '0.5',
      WEBSOCKET_ALLOWED_ORIGINS: 'https://x.example',
    });
    expect(c.adminTokens).toEqual(['a', 'b', 'c']);
    expect(c.pingIntervalMs).toBe(500);
    expect(c.allowedOrigins).toEqual(['https://x.example']);
  });

  it('names the variable, the value and what is allowed for a bad number', () => {
    expect(problems({ WEBSOCKET_PING_INTERVAL: 'abc' })).toEqual([
      'WEBSOCKET_PING_INTERVAL="abc" is not allowed: expected a number of seconds > 0 and ≤ 3600',
    ]);
    expect(problems({ WEBSOCKET_MAX_CONNECTIONS: '1.5' })[0]).toMatch(
      /^WEBSOCKET_MAX_CONNECTIONS="1.5" is not allowed: expected an integer from 1 to 1000000$/,
    );
    expect(problems({ PORT: '70000' })[0]).toMatch(/^PORT="70000"/);
    expect(problems({ LOG_LEVEL: 'loud' })[0]).toMatch(
      /LOG_LEVEL="loud" is not allowed: expected one of trace/,
    );
  });

  it('reports every bad variable at once', () => {
    expect(problems({ WEBSOCKET_PING_TIMEOUT: '0', WEBSOCKET_HISTORY_SIZE: '-1' })).toHaveLength(2);
  });

  it('never echoes a secret in an error', () => {
    const [message] = problems({ ARCHON_JWT_SECRET: 'short-secret' });
    expect(message).toMatch(
      /^ARCHON_JWT_SECRET=\(hidden\) is not allowed: expected an HS256 secret/,
    );
    expect(message).not.toContain('short-secret');
  });

  it('takes a Redis Cluster by its nodes, and keeps a plain redis:// URL as one primary', () => {
    expect(
      loadConfig({ ARCHON_REDIS_URL: 'redis+cluster://10.0.0.1:7000,10.0.0.2:7001/' }).redisUrl,
    ).toBe('redis+cluster://10.0.0.1:7000,10.0.0.2:7001/');
    expect(loadConfig({ ARCHON_REDIS_URL: 'rediss+cluster://:pw@redis-a:7000' }).redisUrl).toBe(
      'rediss+cluster://:pw@redis-a:7000',
    );
    expect(loadConfig({ ARCHON_REDIS_URL: 'redis://127.0.0.1:6380/0' }).redisUrl).toBe(
      'redis://127.0.0.1:6380/0',
    );
  });

  it('names the Redis URL without its password, why it was refused and the forms allowed', () => {
    const [message] = problems({ ARCHON_REDIS_URL: 'redis+cluster://ops:s3cret@h1:7000,h2:x/' });
    expect(message).toBe(
      'ARCHON_REDIS_URL="redis+cluster://ops:***@h1:7000,h2:x/" is not allowed ' +
        '(node 2 of 2 is not host:port): expected a redis:// or rediss:// URL (one Redis primary), ' +
        'or redis+cluster://host1:port1,host2:port2/ (rediss+cluster:// for TLS) naming nodes of a ' +
        'Redis Cluster',
    );
    expect(problems({ ARCHON_REDIS_URL: 'http://h:1' })[0]).toMatch(
      /^ARCHON_REDIS_URL="http:\/\/h:1" is not allowed \(not a redis:\/\/, rediss:\/\/, redis\+cluster:\/\/ or rediss\+cluster:\/\/ URL\): expected a redis:\/\//,
    );
    expect(problems({ ARCHON_REDIS_URL: 'redis+cluster://h1:7000/0' })[0]).toContain(
      'a cluster URL is redis+cluster://host1:port1,host2:port2/',
    );
  });

  it('refuses two JWT key sources at once', () => {
    expect(
      problems({
        ARCHON_JWT_SECRET: 'x'.repeat(32),
        ARCHON_JWT_JWKS_URL: 'https://idp.example/jwks',
      })[0],
    ).toMatch(/exclusive/);
  });

  it('runs one worker by default, N on request, and one per core with auto', () => {
    const redis = { ARCHON_REDIS_URL: 'redis://127.0.0.1:6379' };
    expect(loadConfig({}).workers).toBe(1);
    expect(loadConfig({ ...redis, ARCHON_WORKERS: '3' }).workers).toBe(3);
    expect(loadConfig({ ...redis, ARCHON_WORKERS: 'auto' }).workers).toBe(availableParallelism());
  });

  it('names ARCHON_WORKERS, the value and what is allowed for a bad worker count', () => {
    expect(problems({ ARCHON_WORKERS: 'many' })).toEqual([
      'ARCHON_WORKERS="many" is not allowed: expected an integer from 1 to 256, or auto (one per core: os.availableParallelism())',
    ]);
    expect(problems({ ARCHON_WORKERS: '0' })[0]).toMatch(/^ARCHON_WORKERS="0" is not allowed/);
  });

  it('refuses more than one worker without Redis, and a server id too long for the worker ids', () => {
    expect(problems({ ARCHON_WORKERS: '2' })).toEqual([
      'ARCHON_WORKERS=2 needs ARCHON_REDIS_URL: workers share channels, history and acknowledgements only through Redis (docs/cluster.md#workers-every-core-of-a-node)',
    ]);
    expect(
      problems({
        ARCHON_WORKERS: '12',
        ARCHON_REDIS_URL: 'redis://127.0.0.1:6379',
        ARCHON_SERVER_ID: 'a'.repeat(62),
      })[0],
    ).toMatch(/too long for ARCHON_WORKERS=12: the workers' ids \(a+:w12\) must fit in 64/);
  });

  it('maps every variable to a serve flag', () => {
    expect(flagFor('WEBSOCKET_PING_INTERVAL')).toBe('--ping-interval');
    expect(flagFor('ARCHON_JWT_SECRET')).toBe('--jwt-secret');
    expect(flagFor('PORT')).toBe('--port');
    expect(new Set(ENV_NAMES.map(flagFor)).size).toBe(ENV_NAMES.length);
  });
});

describe('restartDelay', () => {
  it('waits 1 s, doubling to 30 s while workers die young, and starts over after one lived 60 s', () => {
    const delays: number[] = [];
    let delay: number | null = null;
    for (let i = 0; i < 7; i++) delays.push((delay = restartDelay(delay, 500)));
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16000, 30000, 30000]);
    expect(restartDelay(30_000, 60_000)).toBe(1000);
  });
});
