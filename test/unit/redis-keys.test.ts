import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { EXPIRY_BUCKETS, RedisKeys } from '../../src/server/backplane/redis-keys.js';
import { keySlot } from '../../src/server/backplane/redis-slot.js';

describe('Redis key layout', () => {
  it('keeps the names one primary always had (existing data stays where it is)', () => {
    const keys = new RedisKeys('archon:', 'single');
    expect(keys.channel('risk:ACC1')).toEqual({
      meta: 'archon:ch:risk:ACC1:meta',
      stream: 'archon:ch:risk:ACC1:stream',
      state: 'archon:ch:risk:ACC1:state',
      exp: 'archon:ch:risk:ACC1:exp',
      acks: 'archon:ch:risk:ACC1:acks',
      deliv: 'archon:ch:risk:ACC1:deliv',
      events: 'archon:ev:risk:ACC1',
    });
    expect(keys.idempotency('signals', 'x:1')).toBe('archon:idem:7:signals:x:1');
    expect(keys.expiring()).toBe('archon:expiring');
    expect(keys.alertStreams()).toBe('archon:ch:risk:*:stream');
    expect(keys.channelOfStream('archon:ch:risk:ACC1:stream')).toBe('risk:ACC1');
  });

  it('puts every key of a channel, its pub/sub channel and its publish ids in one slot in a cluster', () => {
    const keys = new RedisKeys('archon:', 'cluster');
    const k = keys.channel('positions:ACC7');
    expect(k.meta).toBe('archon:ch:{positions:ACC7}:meta');
    expect(k.events).toBe('archon:ev:{positions:ACC7}');
    const slot = keySlot('positions:ACC7');
    const all = [k.meta, k.stream, k.state, k.exp, k.acks, k.deliv, k.events];
    for (const key of [...all, keys.idempotency('positions:ACC7', 'a}b{c')])
      expect(keySlot(key), key).toBe(slot);
    // Ids stay per channel: (signals, x:1) and (signals:x, 1) are two keys.
    expect(keys.idempotency('signals', 'x:1')).not.toBe(keys.idempotency('signals:x', '1'));
    expect(keys.channelOfStream('archon:ch:{risk:ACC1}:stream')).toBe('risk:ACC1');
  });

  it('spreads channels over the expiry buckets, each in a slot of its own', () => {
    const keys = new RedisKeys('archon:', 'cluster');
    expect(new Set(keys.expiryBuckets().map(keySlot)).size).toBe(EXPIRY_BUCKETS);
    const used = new Set(
      Array.from({ length: 1000 }, (_, i) => keys.expiryBucket(`positions:ACC${i}`)),
    );
    expect(used.size).toBe(EXPIRY_BUCKETS);
  });
});

describe('keySlot', () => {
  it('computes the slot Redis Cluster and ioredis compute, hash tags included', () => {
    const samples = [
      '',
      'a',
      '123456789',
      'archon:ch:{risk:ACC1}:meta',
      '{}x',
      '{a}{b}',
      'a{b',
      'ünïcödé{ключ}',
      ...Array.from({ length: 2000 }, (_, i) => `key:${i}:${(i * 7919).toString(36)}`),
    ];
    for (const key of samples) expect(keySlot(key), key).toBe(calculateSlot(key));
    // The CRC16/XMODEM check value: 0x31C3 for "123456789".
    expect(keySlot('123456789')).toBe(0x31c3 % 16384);
    // An empty tag first: the whole key counts. Redis 7.0's CLUSTER KEYSLOT says 14166;
    // cluster-key-slot 1.1.1 reads the second tag instead (15133). Our keys never have one.
    expect(keySlot('x{}{y}')).toBe(14166);
  });
});
