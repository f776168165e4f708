/**
 * ioredis, loaded the first time cluster mode needs it: an embedded gateway never loads it,
 * which keeps about 9 MB out of its resident memory (docs/performance.md, "Startup").
 */
import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';

let loaded: typeof IORedis | null = null;

export function ioredis(): typeof IORedis {
  loaded ??= createRequire(import.meta.url)('ioredis') as typeof IORedis;
  return loaded;
}
