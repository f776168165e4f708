/** Fuzz: publish validation (src/server/publish.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ArchonError, type ErrorCode } from '../../src/protocol/errors.js';
import {
  MAX_DATA_DEPTH,
  MAX_EVENT_DATA_BYTES,
  MAX_EVENT_TTL_S,
} from '../../src/protocol/limits.js';
import { parseChannel } from '../../src/protocol/channels.js';
import type { PublishInput } from '../../src/server/backplane/backplane.js';
import {
  exceedsDepth,
  parsePublishBody,
  validateEvents,
  withTtl,
} from '../../src/server/publish.js';
import {
  anyJsValue,
  anyString,
  hostileString,
  jsonTree,
  jsonValue,
  numberText,
  prototypeKey,
  render,
  validChannel,
  valueDepth,
} from './arbitraries.js';
import { params, TIMEOUT } from './runs.js';

const PUBLISH_CODES: ErrorCode[] = ['invalid_event', 'unknown_channel'];

/** Runs `fn`; a throw must be an ArchonError with one of `codes`. Undefined when it threw. */
function archonOnly<T>(fn: () => T, codes: readonly ErrorCode[] = PUBLISH_CODES): T | undefined {
  try {
    return fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ArchonError);
    expect(codes).toContain((err as ArchonError).code);
    return undefined;
  }
}

/** The refusal `fn` throws: fails when it returns. */
function refusal(fn: () => unknown): ArchonError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ArchonError);
    return err as ArchonError;
  }
  throw new Error('expected a refusal');
}

/** Depth of a value by Object.values, capped at `cap + 1` (a cycle counts as too deep). */
function cappedDepth(value: unknown, cap: number, ancestors = new Set<unknown>()): number {
  if (typeof value !== 'object' || value === null) return 0;
  if (ancestors.size > cap || ancestors.has(value)) return cap + 1;
  ancestors.add(value);
  let deepest = 0;
  for (const child of Object.values(value)) {
    deepest = Math.max(deepest, cappedDepth(child, cap, ancestors));
    if (deepest > cap) break;
  }
  ancestors.delete(value);
  return Math.min(cap + 1, 1 + deepest);
}

const channelName = fc.oneof(
  { weight: 4, arbitrary: validChannel },
  { weight: 1, arbitrary: fc.constantFrom('nope', '', 'signals:', 'positions:', 'risk:-x') },
  { weight: 1, arbitrary: anyString },
);

/** Values of every kind JavaScript can hand to an in-process publish. */
const anyData = anyJsValue({ maxDepth: 6, withBigInt: true });

/** `value` under `levels` levels of arrays or objects (prototype keys included). */
function nest(value: unknown, path: readonly (string | null)[]): unknown {
  return path.reduceRight<unknown>((inner, key) => {
    if (key === null) return [inner];
    const outer: Record<string, unknown> = {};
    Object.defineProperty(outer, key, { value: inner, enumerable: true, writable: true });
    return outer;
  }, value);
}

const pathKey = fc.oneof(fc.constant(null), prototypeKey, fc.constantFrom('a', 'data', ''));

/** Data with a string near MAX_EVENT_DATA_BYTES, of characters of 1 to 6 JSON bytes. */
const bigData = fc
  .tuple(
    fc.constantFrom('a', 'é', '€', '😀', '\ud800', '"', '\u0001', '<'),
    fc.integer({ min: MAX_EVENT_DATA_BYTES / 8, max: MAX_EVENT_DATA_BYTES + 16 }),
    fc.array(pathKey, { maxLength: 3 }),
  )
  .map(([c, bytes, path]) => {
    const perChar = Buffer.byteLength(JSON.stringify(c)) - 2;
    return nest(c.repeat(Math.floor(bytes / perChar)), path);
  });

/** Data nested deeper than MAX_DATA_DEPTH. */
const deepData = fc
  .tuple(
    fc.oneof(fc.constant({}), fc.constant([]), fc.jsonValue({ maxDepth: 2 })),
    fc.array(pathKey, { minLength: MAX_DATA_DEPTH, maxLength: MAX_DATA_DEPTH * 3 }),
  )
  .map(([leaf, path]) => nest(typeof leaf === 'object' && leaf !== null ? leaf : [leaf], path));

/** Data with a cycle somewhere below its root. */
const cyclicData = fc
  .tuple(fc.array(pathKey, { maxLength: 8 }), fc.nat(), pathKey, fc.jsonValue({ maxDepth: 2 }))
  .map(([path, back, key, sibling]) => {
    const root = nest({}, path);
    // Walk down to the innermost object, then point it back at an ancestor.
    const chain: Record<string, unknown>[] = [];
    let node = root as Record<string, unknown>;
    for (;;) {
      chain.push(node);
      const child = Object.values(node)[0];
      if (typeof child !== 'object' || child === null) break;
      node = child as Record<string, unknown>;
    }
    const target = chain[back % chain.length];
    if (Array.isArray(node)) node.push(sibling, target);
    else Object.defineProperty(node, key ?? 'self', { value: target, enumerable: true });
    return root;
  });

/** Data holding a BigInt somewhere JSON.stringify reaches. */
const bigIntData = fc
  .tuple(fc.array(pathKey, { maxLength: MAX_DATA_DEPTH - 1 }), fc.bigInt(), jsonValue(2))
  .map(([path, big, sibling]) => nest([sibling, big], path));

const event = (data: fc.Arbitrary<unknown>): fc.Arbitrary<PublishInput> =>
  fc.record({
    channel: channelName,
    key: fc.option(fc.string({ maxLength: 8 }), { nil: null }),
    data,
    id: fc.option(fc.string({ minLength: 1, maxLength: 8 }), { nil: undefined }),
  });

describe('validateEvents', () => {
  it(
    'throws only ArchonError, and what it accepts is the JSON of data, shallow and small enough',
    () => {
      const data = fc.oneof(anyData, jsonValue(8), bigData, deepData, cyclicData, bigIntData);
      fc.assert(
        fc.property(fc.array(event(data), { minLength: 1, maxLength: 3 }), (events) => {
          const accepted = archonOnly(() => validateEvents(events));
          if (accepted === undefined) return;
          expect(accepted).toHaveLength(events.length);
          accepted.forEach((out, i) => {
            const input = events[i] as PublishInput;
            expect(out.channel).toBe(input.channel);
            expect(out.key).toBe(input.key);
            expect(out.id).toBe(input.id);
            expect(out.data).toBe(input.data);
            expect(cappedDepth(input.data, MAX_DATA_DEPTH)).toBeLessThanOrEqual(MAX_DATA_DEPTH);
            expect(out.json).toBe(JSON.stringify(input.data));
            const json = out.json as string;
            expect(Buffer.byteLength(json)).toBeLessThanOrEqual(MAX_EVENT_DATA_BYTES);
            expect(valueDepth(JSON.parse(json))).toBeLessThanOrEqual(MAX_DATA_DEPTH);
          });
        }),
        params(0.3),
      );
    },
    TIMEOUT,
  );

  it(
    'refuses data nested deeper than MAX_DATA_DEPTH, cyclic data and BigInt with invalid_event',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(deepData, cyclicData, bigIntData),
          fc.array(event(jsonValue(3)), { maxLength: 2 }),
          fc.nat(),
          (bad, others, at) => {
            const events = [...others];
            events.splice(at % (others.length + 1), 0, {
              channel: 'signals',
              key: null,
              data: bad,
            });
            expect(refusal(() => validateEvents(events)).code).toBe('invalid_event');
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'accepts small data nested up to MAX_DATA_DEPTH levels',
    () => {
      fc.assert(
        fc.property(
          fc.array(pathKey, { maxLength: MAX_DATA_DEPTH - 1 }),
          fc.oneof(fc.constant({}), fc.constant([]), fc.jsonValue({ maxDepth: 0 })),
          (path, leaf) => {
            const data = nest(typeof leaf === 'object' && leaf !== null ? leaf : [leaf], path);
            const [out] = validateEvents([{ channel: 'signals', key: null, data }]);
            expect(out?.json).toBe(JSON.stringify(data));
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'accepts data exactly when its JSON fits in MAX_EVENT_DATA_BYTES',
    () => {
      fc.assert(
        fc.property(bigData, (data) => {
          const fits = Buffer.byteLength(JSON.stringify(data)) <= MAX_EVENT_DATA_BYTES;
          const events = [{ channel: 'signals', key: null, data }];
          if (fits) expect(validateEvents(events)[0]?.json).toBe(JSON.stringify(data));
          else expect(refusal(() => validateEvents(events)).code).toBe('invalid_event');
        }),
        params(0.1),
      );
    },
    TIMEOUT,
  );
});

/** How an in-process caller's data can behave when JSON.stringify or a walk reads it. */
interface Behaviour {
  readonly kind: 'toJSON' | 'getter';
  /** Where in data the object sits. */
  readonly path: readonly (string | null)[];
  /** Levels of arrays the value it yields (from toJSON or the getter) is nested. */
  readonly depth: number;
  /** The getter or toJSON throws this instead (an Error or any value). */
  readonly throws: 'no' | 'error' | 'string';
}

function behaving(b: Behaviour): unknown {
  const yielded = nest(1, Array<null>(b.depth).fill(null));
  const produce = () => {
    if (b.throws === 'error') throw new Error('read refused');
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- any value can be thrown
    if (b.throws === 'string') throw 'read refused';
    return yielded;
  };
  const holder: Record<string, unknown> = {};
  if (b.kind === 'toJSON') holder.toJSON = produce;
  else Object.defineProperty(holder, 'x', { get: produce, enumerable: true });
  return nest(holder, b.path);
}

const behaviour = (
  kind: fc.Arbitrary<Behaviour['kind']>,
  throws: fc.Arbitrary<Behaviour['throws']>,
): fc.Arbitrary<Behaviour> =>
  fc.record({
    kind,
    path: fc.array(pathKey, { maxLength: 4 }),
    depth: fc.integer({ min: 0, max: MAX_DATA_DEPTH + 8 }),
    throws,
  });

describe('validateEvents on values from in-process callers (Gateway.publish takes any value)', () => {
  it(
    'throws only ArchonError when reading data throws',
    () => {
      fc.assert(
        fc.property(
          behaviour(fc.constantFrom('toJSON', 'getter'), fc.constantFrom('no', 'error', 'string')),
          (b) => {
            archonOnly(() =>
              validateEvents([{ channel: 'signals', key: null, data: behaving(b) }]),
            );
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'stores no JSON nested deeper than MAX_DATA_DEPTH, whatever toJSON returns',
    () => {
      fc.assert(
        fc.property(behaviour(fc.constant('toJSON'), fc.constant('no')), (b) => {
          const data = behaving(b);
          const accepted = archonOnly(() =>
            validateEvents([{ channel: 'signals', key: null, data }]),
          );
          const json = accepted?.[0]?.json;
          if (json !== undefined) {
            expect(valueDepth(JSON.parse(json))).toBeLessThanOrEqual(MAX_DATA_DEPTH);
          }
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'refuses an object graph that shares values so its JSON would grow exponentially, without writing it',
    () => {
      fc.assert(
        fc.property(fc.integer({ min: 18, max: MAX_DATA_DEPTH }), (levels) => {
          // Each level refers to the one below twice: 2^levels values once written out.
          let node: unknown = 1;
          for (let i = 0; i < levels; i++) node = [node, node];
          const err = refusal(() =>
            validateEvents([{ channel: 'signals', key: null, data: node }]),
          );
          expect(err.code).toBe('invalid_event');
          expect(err.message).toContain('values');
        }),
        params(0.1),
      );
    },
    TIMEOUT,
  );
});

describe('exceedsDepth', () => {
  it(
    'agrees with a recursive depth on arbitrary JSON values',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            jsonValue(8),
            jsonTree(8).map((t) => JSON.parse(render(t)) as unknown),
          ),
          fc.integer({ min: 0, max: 9 }),
          (value, max) => {
            expect(exceedsDepth(value, max)).toBe(valueDepth(value) > max);
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'agrees with a recursive depth on values of any kind, and finds every cycle too deep',
    () => {
      fc.assert(
        fc.property(fc.oneof(anyData, cyclicData), fc.integer({ min: 0, max: 9 }), (value, max) => {
          expect(exceedsDepth(value, max)).toBe(cappedDepth(value, max) > max);
        }),
        params(),
      );
    },
    TIMEOUT,
  );
});

/** JSON text of a publish event: fields of any type, or of the right type, under any key. */
const fieldText = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 3, arbitrary: valid.map((s) => JSON.stringify(s)) },
    { weight: 1, arbitrary: numberText },
    { weight: 1, arbitrary: fc.constantFrom('null', 'true', '[]', '{}', '""') },
    { weight: 1, arbitrary: jsonTree(3).map((t) => render(t)) },
  );

const dataText = fc.oneof(
  jsonTree(4).map((t) => render(t)),
  jsonValue(3).map((v) => JSON.stringify({ message: 'm', v })),
  fc.constantFrom('null', '{"message":"hi"}', '{"message":""}', '{"message":1}', '[]', '0'),
  hostileString(20).map((s) => JSON.stringify({ message: s })),
  prototypeKey.map((k) => `{"${k}":{"message":"x"},"message":"${k}"}`),
);

/** Text of an object with these entries in this order (duplicates and `__proto__` kept). */
function objectText(entries: readonly (readonly [string, string | undefined])[]): string {
  const present = entries.filter((e): e is [string, string] => e[1] !== undefined);
  return `{${present.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
}

/** Events of the right shape (some still refused: a state channel without key, and so on). */
const wellTypedEvent = fc
  .tuple(
    fc.oneof(validChannel, channelName),
    fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
    dataText,
    fc.option(fc.string({ minLength: 1, maxLength: 20 }), { nil: undefined }),
  )
  .map(([channel, key, data, id]) =>
    objectText([
      ['channel', JSON.stringify(channel)],
      ['key', key === undefined ? undefined : JSON.stringify(key)],
      ['data', data],
      ['id', id === undefined ? undefined : JSON.stringify(id)],
    ]),
  );

/** Events with fields of any type, missing, or under extra and prototype keys. */
const messyEvent = fc
  .tuple(
    fc.option(fieldText(channelName), { nil: undefined }),
    fc.option(fieldText(fc.string({ maxLength: 210 })), { nil: undefined }),
    fc.option(dataText, { nil: undefined }),
    fc.option(fieldText(fc.string({ maxLength: 210 })), { nil: undefined }),
    fc.array(fc.tuple(fc.oneof(prototypeKey, hostileString(8)), dataText), { maxLength: 2 }),
  )
  .map(([channel, key, data, id, extra]) =>
    objectText([...extra, ['channel', channel], ['key', key], ['data', data], ['id', id]]),
  );

const eventText = fc.oneof(
  { weight: 3, arbitrary: wellTypedEvent },
  { weight: 1, arbitrary: messyEvent },
);

const bodyText = fc.oneof(
  { weight: 3, arbitrary: eventText },
  {
    weight: 3,
    arbitrary: fc
      .array(eventText, { maxLength: 5 })
      .map((events) => `{"events":[${events.join(',')}]}`),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(eventText, fc.integer({ min: 999, max: 1001 }))
      .map(([e, n]) => `{"events":[${Array<string>(n).fill(e).join(',')}]}`),
  },
  {
    weight: 1,
    arbitrary: prototypeKey.map(
      (k) => `{"${k}":[{"channel":"signals","data":1}],"events":{"${k}":1}}`,
    ),
  },
  { weight: 1, arbitrary: jsonTree(5).map((t) => render(t)) },
);

describe('parsePublishBody', () => {
  it(
    'throws only ArchonError on arbitrary JSON bodies, and accepts only publishable events',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(
            bodyText.map((t) => JSON.parse(t) as unknown),
            jsonValue(5),
          ),
          (body) => {
            const events = archonOnly(() => parsePublishBody(body));
            if (events === undefined) return;
            expect(events.length).toBeGreaterThan(0);
            for (const e of events) {
              const channel = parseChannel(e.channel);
              expect(channel).not.toBeNull();
              expect(e.data).not.toBeUndefined();
              if (channel?.class === 'state') expect(e.key).not.toBeNull();
              else expect(e.data).not.toBeNull();
              if (channel?.class === 'broadcast') {
                expect(e.data).toHaveProperty('message', expect.any(String));
                expect((e.data as { message: string }).message).not.toBe('');
              }
            }
            // What the HTTP route does next: validation refuses only with ArchonError too.
            archonOnly(() => validateEvents(events));
          },
        ),
        params(0.3),
      );
    },
    TIMEOUT,
  );
});

describe('ttl', () => {
  const ttlValue = fc.oneof(
    fc.double(),
    fc.integer(),
    fc.constantFrom(0, MAX_EVENT_TTL_S, MAX_EVENT_TTL_S + 1e-9, -0, NaN, Infinity, -Infinity),
    anyJsValue(),
  );
  const defaults = fc.record({
    state: fc.nat(MAX_EVENT_TTL_S * 1000),
    stream: fc.nat(MAX_EVENT_TTL_S * 1000),
    alert: fc.nat(MAX_EVENT_TTL_S * 1000),
  });

  it(
    'accepts exactly the ttls from 0 to MAX_EVENT_TTL_S, and stores the event own ttl or its class default, never 0',
    () => {
      fc.assert(
        fc.property(validChannel, ttlValue, defaults, (channel, ttl, dflt) => {
          const body = { channel, key: 'k', data: { n: 1 }, ttl };
          const parsed = archonOnly(() => validateEvents(parsePublishBody(body)));
          // Absent (undefined) means the class default.
          const inRange =
            ttl === undefined || (typeof ttl === 'number' && ttl >= 0 && ttl <= MAX_EVENT_TTL_S);
          const cls = parseChannel(channel)?.class ?? 'stream';
          if (cls === 'broadcast') return; // system: its own rules (no ttl, data.message)
          expect(parsed !== undefined, JSON.stringify({ channel, ttl })).toBe(inRange);
          if (!parsed) return;
          const byDefault = dflt[cls] > 0 ? dflt[cls] / 1000 : undefined;
          const stored = withTtl(parsed[0]!, cls, dflt);
          if (ttl === undefined) expect(stored.ttl).toBe(byDefault);
          else expect(stored.ttl).toBe((ttl as number) > 0 ? ttl : undefined);
          expect(withTtl({ ...parsed[0]!, ttl: undefined }, cls, dflt).ttl).toBe(byDefault);
        }),
        params(),
      );
    },
    TIMEOUT,
  );
});
