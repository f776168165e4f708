/** `?hold=` of /api/v1/ws/test (src/server/diagnostics.ts): read safely, bounded, or refused. */
import { describe, expect, it } from 'vitest';
import { testLifetime } from '../../src/server/diagnostics.js';

describe('test endpoint hold', () => {
  it('keeps a test connection 60 s without hold', () => {
    expect(testLifetime('/api/v1/ws/test')).toEqual({ lifetimeMs: 60_000 });
    expect(testLifetime('/api/v1/ws/test?other=1')).toEqual({ lifetimeMs: 60_000 });
  });

  it('keeps it the seconds asked, from 1 to 300', () => {
    expect(testLifetime('/api/v1/ws/test?hold=1')).toEqual({ lifetimeMs: 1_000 });
    expect(testLifetime('/api/v1/ws/test?hold=100')).toEqual({ lifetimeMs: 100_000 });
    expect(testLifetime('/api/v1/ws/test?hold=300')).toEqual({ lifetimeMs: 300_000 });
  });

  it.each(['', 'x', '0', '301', '1e2', '1.5', '%20', '99999999999999999999', '5&hold=6'])(
    'refuses hold=%s with a message naming the bounds',
    (value) => {
      const r = testLifetime(`/api/v1/ws/test?hold=${value}`);
      expect(r).toEqual({
        error: expect.stringMatching(
          /^hold must be a whole number of seconds from 1 to 300 \(got "/,
        ) as string,
      });
    },
  );

  it('survives targets that would make URL parsing throw', () => {
    expect(testLifetime('//x:99999/?hold=%')).toMatchObject({
      error: expect.any(String) as string,
    });
  });
});
