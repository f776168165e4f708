/** Fuzz: client → server message parsing (src/server/inbound.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_OP_DEPTH, MAX_QUOTED_CHARS } from '../../src/protocol/limits.js';
import { nestingExceeds, parseClientMessage, type ParseResult } from '../../src/server/inbound.js';
import { quote } from '../../src/server/text.js';
import {
  anyJsValue,
  anyString,
  codeUnit,
  deepTree,
  hostileString,
  jsonTree,
  jsonValue,
  numberText,
  prototypeKey,
  render,
  treeDepth,
  valueDepth,
} from './arbitraries.js';
import { params, TIMEOUT } from './runs.js';

/** An error message quotes at most a short value: this bounds it whatever the input. */
const MAX_ERROR_MESSAGE = 300;
const ERROR_CODES = ['invalid_json', 'unknown_op', 'bad_request'];

/** A request id the protocol echoes: an integer or a string of at most 64 characters. */
function validId(value: unknown): boolean {
  if (typeof value === 'string') return [...value].length <= 64;
  return Number.isInteger(value);
}

/** The object a text holds, when it is a JSON object. */
function sentObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch {
    // not JSON
  }
  return undefined;
}

/** Parses and checks what holds for every answer: it returns, and an error is short and
 * echoes only an id the message really carried. */
function parseChecked(text: string): ParseResult {
  const result = parseClientMessage(text);
  if (result.ok) return result;
  expect(ERROR_CODES).toContain(result.code);
  expect(typeof result.message).toBe('string');
  expect(result.message.length).toBeLessThanOrEqual(MAX_ERROR_MESSAGE);
  if ('id' in result) {
    const sent = sentObject(text);
    expect(sent, 'an id is echoed only from a JSON object').toBeDefined();
    expect(Object.is(sent?.id, result.id), 'the echoed id is the one sent').toBe(true);
    expect(validId(result.id)).toBe(true);
  }
  return result;
}

/** Text of an object with these entries in this order (duplicates and `__proto__` kept). */
function objectText(entries: readonly (readonly [string, string])[], space = ''): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${space}${v}`).join(`,${space}`)}}`;
}

/** Strings of exactly `length` code units or fewer, lone surrogates included. */
function units(minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc.string({
    unit: fc.oneof(codeUnit, fc.string({ minLength: 1, maxLength: 1 })),
    minLength,
    maxLength,
  });
}

/** A string of `length` code units built from a short seed (for lengths near the limits). */
function longUnits(minLength: number, maxLength: number): fc.Arbitrary<string> {
  return fc
    .tuple(units(1, 8), fc.integer({ min: minLength, max: maxLength }))
    .map(([seed, length]) => seed.repeat(Math.ceil(length / seed.length)).slice(0, length));
}

const opValue = fc.oneof(
  fc.constantFrom(
    'hello',
    'subscribe',
    'unsubscribe',
    'refresh',
    'ack',
    'pong',
    'ping',
    'HELLO',
    'ping ',
    '',
  ),
  prototypeKey,
  hostileString(20),
  longUnits(30, 5000),
);

/** JSON text of a value a client might put in any field. */
const fieldText: fc.Arbitrary<string> = fc.oneof(
  opValue.map((s) => JSON.stringify(s)),
  numberText,
  fc.constantFrom('true', 'false', 'null', '[]', '{}', '{"epoch":"e","seq":1}', '[[[[]]]]'),
  jsonTree(3).map((t) => render(t)),
);

const idValue = fc.oneof(
  fc.maxSafeInteger(),
  fc.constantFrom(0, -1, 2 ** 53, 2 ** 53 + 2, 1e308, 0.5, 1e-320, -1e308),
  units(0, 64),
  longUnits(60, 70),
  hostileString(70),
);

/** Message-shaped objects: an op, maybe an id, and fields of any type under any key. */
const messageText = fc
  .tuple(
    fc.option(opValue, { nil: undefined }),
    fc.option(idValue, { nil: undefined }),
    fc.array(
      fc.tuple(
        fc.oneof(
          fc.constantFrom('op', 'id', 'channel', 'token', 'client', 'since'),
          prototypeKey,
          hostileString(10),
        ),
        fieldText,
      ),
      { maxLength: 5 },
    ),
    fc.constantFrom('', ' ', '\n'),
  )
  .chain(([op, id, fields, space]) => {
    const entries: (readonly [string, string])[] = [...fields];
    if (op !== undefined) entries.push(['op', JSON.stringify(op)]);
    if (id !== undefined) entries.push(['id', JSON.stringify(id)]);
    return fc
      .shuffledSubarray(entries, { minLength: entries.length })
      .map((shuffled) => objectText(shuffled, space));
  });

/** Texts built to hurt: deep nesting, huge strings, escapes, edge numbers. */
const adversarialText = fc.oneof(
  fc.integer({ min: 1, max: 200_000 }).map((n) => '['.repeat(n)),
  fc.integer({ min: 1, max: 100_000 }).map((n) => `{"op":${'['.repeat(n)}`),
  fc
    .tuple(
      fc.integer({ min: 1, max: 20_000 }),
      fc.constantFrom('{"a":', '[{"op":', '{"op":[', '[1,'),
    )
    .map(([n, open]) => open.repeat(n)),
  fc.integer({ min: 1, max: 2_000 }).map((n) => `${']'.repeat(n)}${'['.repeat(n)}`),
  fc.integer({ min: 1, max: 100 }).map((n) => `${'}'.repeat(n)}{"op":"ping"}`),
  fc
    .tuple(fc.integer({ min: 1, max: 1_000_000 }), fc.constantFrom('x', '"', '\\', '\ud800', '😀'))
    .map(([n, c]) => `{"op":${JSON.stringify(c.repeat(n))}}`),
  fc
    .tuple(fc.integer({ min: 1, max: 500_000 }), fc.constantFrom('subscribe', 'hello', 'nope'))
    .map(
      ([n, op]) =>
        `{"op":"${op}","id":"${'i'.repeat(n % 100)}","channel":"${'c'.repeat(n)}","token":"${'t'.repeat(n)}"}`,
    ),
  fc.integer({ min: 1, max: 100_000 }).map((n) => `{"op":"ping","x":"${'\\'.repeat(2 * n)}[["}`),
  fc.integer({ min: 1, max: 100_000 }).map((n) => `{"op":"\\"${'['.repeat(n)}`),
  fc
    .integer({ min: 1, max: 100_000 })
    .map((n) => `{"op":"hello","token":"${'\\u0000'.repeat(n)}"}`),
  fc.integer({ min: 1, max: 100_000 }).map((n) => `{"op":"ping"}${' '.repeat(n)}`),
  fc.integer({ min: 1, max: 100_000 }).map((n) => `{"op":"ping","id":${'9'.repeat(n)}}`),
  fc
    .tuple(prototypeKey, fc.constantFrom('op', 'id', 'channel'), prototypeKey)
    .map(([k, field, v]) => `{"${k}":{"op":"ping"},"${field}":"${v}"}`),
  prototypeKey.map((k) => `{"op":"${k}","id":"${k}","${k}":"${k}"}`),
  fc
    .tuple(numberText, fc.constantFrom('id', 'seq', 'op'))
    .map(
      ([n, f]) =>
        `{"op":"subscribe","channel":"signals","${f}":${n},"since":{"epoch":"e","seq":${n}}}`,
    ),
);

describe('parseClientMessage', () => {
  it(
    'never throws on an arbitrary string and answers any error in a few hundred characters',
    () => {
      fc.assert(
        fc.property(anyString, (text) => {
          parseChecked(text);
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'never throws on the JSON text of an arbitrary value',
    () => {
      const anyValueText = anyJsValue()
        .map((v) => JSON.stringify(v) as string | undefined)
        .filter((t): t is string => typeof t === 'string');
      fc.assert(
        fc.property(
          fc.oneof(
            jsonValue(6).map((v) => JSON.stringify(v)),
            anyValueText,
            jsonTree(6).map((t) => render(t)),
          ),
          (text) => {
            parseChecked(text);
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'never throws on message-shaped objects with fields of any type, prototype keys and duplicates',
    () => {
      fc.assert(
        fc.property(messageText, (text) => {
          parseChecked(text);
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'never throws on deep nesting, huge strings and escapes, and never echoes them in full',
    () => {
      fc.assert(
        fc.property(adversarialText, (text) => {
          const result = parseChecked(text);
          if (!result.ok && text.length > MAX_ERROR_MESSAGE) {
            expect(result.message).not.toContain(text);
          }
        }),
        params(0.1),
      );
    },
    TIMEOUT,
  );

  it(
    'echoes the id of a refused message exactly when it carried a valid one',
    () => {
      fc.assert(
        fc.property(messageText, (text) => {
          const result = parseChecked(text);
          const sent = sentObject(text);
          if (result.ok || sent === undefined || nestingExceeds(text, MAX_OP_DEPTH)) return;
          const id = sent.id;
          // A JSON object with a valid id gets it back on every error (unsafe integers excepted:
          // they do not survive JSON as the number sent).
          const echoable =
            (typeof id === 'string' && [...id].length <= 64) || Number.isSafeInteger(id);
          if (echoable) expect(result.id).toBe(id);
          else if (!validId(id)) expect(result).not.toHaveProperty('id');
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'parses every valid op back to the same fields',
    () => {
      const id = fc.oneof(fc.maxSafeInteger(), units(0, 64));
      const channel = fc.oneof(units(1, 200), longUnits(190, 200));
      const validOp = fc.oneof(
        fc.record(
          {
            op: fc.constant('hello'),
            token: fc.oneof(units(1, 100), longUnits(1, 8192)),
            client: units(0, 100),
            deltas: fc.boolean(),
          },
          { requiredKeys: ['op', 'token'] },
        ),
        fc.record(
          {
            op: fc.constant('subscribe'),
            id,
            channel,
            since: fc.record({ epoch: units(0, 64), seq: fc.maxSafeNat() }),
          },
          { requiredKeys: ['op', 'channel'] },
        ),
        fc.record(
          { op: fc.constant('unsubscribe'), id, channel },
          { requiredKeys: ['op', 'channel'] },
        ),
        fc.record(
          { op: fc.constant('refresh'), id, token: fc.oneof(units(1, 100), longUnits(1, 8192)) },
          { requiredKeys: ['op', 'token'] },
        ),
        fc.record(
          {
            op: fc.constant('ack'),
            id,
            channel,
            epoch: units(1, 64),
            seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
          },
          { requiredKeys: ['op', 'channel', 'epoch', 'seq'] },
        ),
        fc.record({ op: fc.constant('pong') }),
        fc.record({ op: fc.constant('ping') }),
      );
      fc.assert(
        fc.property(validOp, fc.constantFrom(undefined, 1, '\t'), (op, space) => {
          const result = parseChecked(JSON.stringify(op, null, space));
          expect(result).toEqual({ ok: true, op });
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    `refuses text nested deeper than MAX_OP_DEPTH (${MAX_OP_DEPTH}) with bad_request`,
    () => {
      const tooDeep = fc.oneof(
        deepTree(40).filter((t) => treeDepth(t) > MAX_OP_DEPTH),
        deepTree(40)
          .filter((t) => treeDepth(t) + 1 > MAX_OP_DEPTH)
          .map((t) => ({ kind: 'object', entries: [['op', t]] }) as const),
      );
      fc.assert(
        fc.property(
          tooDeep,
          fc.constantFrom('', ' ', '\n  '),
          fc.constantFrom('', '{"op":"subscribe","channel":"signals","since":'),
          (tree, space, prefix) => {
            // With a prefix, the text is also cut short: nesting is refused before parsing.
            const text = prefix + render(tree, space);
            const result = parseChecked(text);
            expect(result.ok).toBe(false);
            if (!result.ok) expect(result.code).toBe('bad_request');
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'refuses broken text nested at most MAX_OP_DEPTH deep as invalid JSON, not for its nesting',
    () => {
      fc.assert(
        fc.property(
          jsonTree(MAX_OP_DEPTH),
          fc.nat(),
          fc.constantFrom('', ' x', ',', '}', '"'),
          (tree, cut, tail) => {
            const full = render(tree);
            const text = full.slice(0, cut % (full.length + 1)) + tail;
            fc.pre(!isJson(text));
            const result = parseChecked(text);
            expect(result).toMatchObject({ ok: false, code: 'invalid_json' });
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

describe('nestingExceeds', () => {
  it(
    'agrees with the real depth of an arbitrary JSON value, whatever its strings contain',
    () => {
      fc.assert(
        fc.property(
          jsonValue(10),
          fc.integer({ min: 0, max: 12 }),
          fc.constantFrom(undefined, 1, '\t'),
          (value, max, space) => {
            const text = JSON.stringify(value, null, space);
            expect(nestingExceeds(text, max)).toBe(valueDepth(value) > max);
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'agrees with the depth of deeply nested texts with duplicate and prototype keys',
    () => {
      fc.assert(
        fc.property(
          fc.oneof(jsonTree(8), deepTree(60)),
          fc.integer({ min: 0, max: 64 }),
          (tree, max) => {
            expect(nestingExceeds(render(tree), max)).toBe(treeDepth(tree) > max);
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );
});

describe('quote', () => {
  it(
    'renders any value in a bounded length and never repeats a long string',
    () => {
      const value = fc.oneof(
        fc.anything({
          withBigInt: true,
          withBoxedValues: true,
          withMap: true,
          withSet: true,
          withNullPrototype: true,
          withTypedArray: true,
          withDate: true,
          stringUnit: 'binary',
        }),
        anyString,
        longUnits(1, 100_000),
        fc.constantFrom(Symbol('s'), () => 1, undefined, null, NaN, -Infinity),
        fc.func(fc.anything()),
      );
      fc.assert(
        fc.property(value, fc.boolean(), (v, json) => {
          const q = quote(v, json);
          expect(typeof q).toBe('string');
          // A quoted string of MAX_QUOTED_CHARS units, each escaped as \uXXXX at worst.
          expect(q.length).toBeLessThanOrEqual(2 + 6 * MAX_QUOTED_CHARS);
          if (typeof v === 'string') {
            if (v.length <= MAX_QUOTED_CHARS) expect(q).toBe(json ? JSON.stringify(v) : v);
            else expect(q).not.toContain(v);
          }
        }),
        params(),
      );
    },
    TIMEOUT,
  );
});
