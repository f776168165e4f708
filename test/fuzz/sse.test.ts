/** Fuzz: the HTTP streaming transport's inputs (src/protocol/sse.ts, src/server/http/sse.ts):
 * the resume cursor, the stream request's query and the POSTed ops. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArchonError, formatCursor, parseCursor, type Since } from '../../src/protocol/index.js';
import { SSE_MAX_CURSOR_LENGTH, SSE_MAX_OPS_PER_POST } from '../../src/protocol/sse.js';
import { parseOps, readStreamQuery } from '../../src/server/http/sse.js';
import {
  anyJsValue,
  anyString,
  deepTree,
  hostileString,
  render,
  validChannel,
} from './arbitraries.js';
import { params, TIMEOUT } from './runs.js';

const epoch = fc.stringMatching(/^[A-Za-z0-9_-]{0,64}$/);
const position = fc.record({ epoch, seq: fc.integer({ min: 0, max: 999_999_999_999_999 }) });
const cursor = fc.uniqueArray(fc.tuple(validChannel, position), {
  maxLength: 8,
  selector: ([channel]) => channel,
});

/** Runs `fn`; what it throws must be an ArchonError with a short message. */
function refusedOrDone<T>(fn: () => T): T | null {
  try {
    return fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ArchonError);
    expect((err as ArchonError).message.length).toBeLessThan(400);
    return null;
  }
}

describe('fuzz: the HTTP streaming transport', () => {
  it(
    'reads back every cursor it writes',
    () => {
      fc.assert(
        fc.property(cursor, (entries) => {
          const parsed = parseCursor(formatCursor(entries as [string, Since][]));
          expect(parsed).toEqual({ cursor: new Map(entries) });
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'parses any text as a cursor or a short error, never throwing',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(anyString, hostileString(400), fc.string({ maxLength: 2000 })),
          (text) => {
            const parsed = parseCursor(text);
            if ('error' in parsed) expect(parsed.error.length).toBeLessThan(200);
            else
              for (const [, since] of parsed.cursor)
                expect(Number.isSafeInteger(since.seq)).toBe(true);
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it('refuses a cursor past its length bound without reading it', () => {
    const long = Array.from({ length: 2000 }, (_, i) => `signals:s${i}@e:1`).join(',');
    expect(long.length).toBeGreaterThan(SSE_MAX_CURSOR_LENGTH);
    expect(parseCursor(long)).toEqual({ error: `longer than ${SSE_MAX_CURSOR_LENGTH} characters` });
  });

  it(
    'reads any stream query into at most the allowed subscriptions, or refuses it with bad_request',
    () => {
      const value = fc.oneof(anyString, fc.array(fc.string(), { maxLength: 3 }), anyJsValue());
      fc.assert(
        fc.property(
          fc.dictionary(fc.constantFrom('channels', 'since', 'client', 'deltas', 'x'), value),
          fc.option(fc.oneof(anyString, fc.array(anyString, { maxLength: 3 })), { nil: undefined }),
          fc.integer({ min: 1, max: 20 }),
          (query, lastEventId, max) => {
            const read = refusedOrDone(() => readStreamQuery(query, lastEventId, max));
            if (read === null) return;
            expect(read.subscribe.length).toBeLessThanOrEqual(max);
            for (const op of read.subscribe) {
              expect(op.op).toBe('subscribe');
              expect(op.channel.length).toBeGreaterThan(0);
              if (op.since) expect(read.resume.get(op.channel)).toEqual(op.since);
            }
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'takes a POST body as 1 to 32 valid ops or refuses all of it, whatever it holds',
    () => {
      const op = fc.oneof(
        fc.record({ op: fc.constant('subscribe'), id: fc.integer(), channel: validChannel }),
        fc.record({ op: fc.constant('ping') }),
        fc.record({ op: fc.constantFrom('hello', 'pong', 'nope'), token: fc.string() }),
        anyJsValue({ maxDepth: 3 }),
      );
      const body = fc.oneof(
        fc.array(op, { maxLength: 40 }).map((ops) => JSON.stringify(ops)),
        op.map((o) => JSON.stringify(o) ?? 'null'),
        deepTree(60).map((tree) => render(tree)),
        hostileString(200),
      );
      fc.assert(
        fc.property(body, (text) => {
          const ops = refusedOrDone(() => parseOps(text));
          if (ops === null) return;
          expect(ops.length).toBeGreaterThanOrEqual(1);
          expect(ops.length).toBeLessThanOrEqual(SSE_MAX_OPS_PER_POST);
          for (const o of ops) expect(['hello', 'pong']).not.toContain(o.op);
        }),
        params(),
      );
    },
    TIMEOUT,
  );
});
