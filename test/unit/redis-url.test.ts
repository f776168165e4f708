import { describe, expect, it } from 'vitest';
import {
  describeRedisTarget,
  parseRedisUrl,
  redactRedisUrl,
} from '../../src/server/backplane/redis-url.js';

describe('ARCHON_REDIS_URL forms', () => {
  it('reads a redis+cluster:// URL as seed nodes, with credentials and TLS', () => {
    expect(parseRedisUrl('redis+cluster://10.0.0.1:7000,redis-b:7001,[::1]:7002/')).toEqual({
      kind: 'cluster',
      tls: false,
      seeds: [
        { host: '10.0.0.1', port: 7000 },
        { host: 'redis-b', port: 7001 },
        { host: '::1', port: 7002 },
      ],
    });
    expect(parseRedisUrl('rediss+cluster://app:p%40ss@redis-a')).toEqual({
      kind: 'cluster',
      tls: true,
      seeds: [{ host: 'redis-a', port: 6379 }],
      username: 'app',
      password: 'p@ss',
    });
  });

  it('keeps redis:// and rediss:// as one primary, given to ioredis as written', () => {
    expect(parseRedisUrl('redis://:pw@127.0.0.1:6380/2')).toEqual({
      kind: 'single',
      url: 'redis://:pw@127.0.0.1:6380/2',
    });
    expect(parseRedisUrl('rediss://redis.example')).toMatchObject({ kind: 'single' });
  });

  it('says why a URL is refused without echoing its parts', () => {
    expect(parseRedisUrl('redis+cluster://a:b@c@h:1/')).toEqual({
      problem: 'node 1 of 1 is not host:port',
    });
    expect(parseRedisUrl('redis+cluster://h:70000/')).toEqual({
      problem: 'node 1 of 1 is not host:port',
    });
    expect(parseRedisUrl('redis+cluster://h:1/0')).toHaveProperty('problem');
    expect(parseRedisUrl('redis+cluster://')).toHaveProperty('problem');
    expect(parseRedisUrl('cluster://h:1')).toHaveProperty('problem');
  });

  it('shows a URL without its password', () => {
    expect(redactRedisUrl('redis+cluster://ops:s3cret@h1:7000/')).toBe(
      'redis+cluster://ops:***@h1:7000/',
    );
    expect(redactRedisUrl('redis://s3cret@h1')).toBe('redis://***@h1');
    expect(redactRedisUrl('redis://h1:6379')).toBe('redis://h1:6379');
    const target = parseRedisUrl('rediss+cluster://ops:s3cret@h1:7000,[::1]:7001');
    if ('problem' in target) throw new Error(target.problem);
    expect(describeRedisTarget(target)).toBe('rediss+cluster://h1:7000,[::1]:7001/');
  });
});
