/** Generators shared by the fuzz properties: hostile strings, numbers and JSON texts. */
import fc from 'fast-check';

/** Any UTF-16 code unit, lone surrogates and control characters included. */
export const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Pieces that matter to anything scanning JSON text. */
export const jsonSyntax = fc.constantFrom(
  '[',
  ']',
  '{',
  '}',
  '"',
  '\\',
  ':',
  ',',
  ' ',
  '\\"',
  '\\\\',
);

/** Names that collide with what every object inherits. */
export const prototypeKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'prototype',
  '__defineGetter__',
);

/** Unicode that tends to break byte/character arithmetic. */
const awkwardChar = fc.constantFrom(
  '\ud800',
  '\udfff',
  '\ud83d',
  '😀',
  'é',
  '€',
  '\u0000',
  '\u2028',
  '\ufeff',
);

/** Strings of code units mixing JSON syntax, prototype names and awkward unicode. */
export function hostileString(maxLength = 40): fc.Arbitrary<string> {
  return fc.string({
    unit: fc.oneof(
      { weight: 4, arbitrary: codeUnit },
      { weight: 2, arbitrary: jsonSyntax },
      { weight: 1, arbitrary: prototypeKey },
      { weight: 2, arbitrary: awkwardChar },
      { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 1 }) },
    ),
    maxLength,
  });
}

/** Any string a client could send: plain, full unicode, or hostile. */
export const anyString = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.string({ unit: 'binary', maxLength: 200 }),
  hostileString(200),
);

/** Numbers at the edges of what JSON and doubles can carry. */
export const edgeNumber = fc.constantFrom(
  0,
  -0,
  1,
  -1,
  0.5,
  1e308,
  -1e308,
  1.7976931348623157e308,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53) - 2,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  1e-320,
  5e-324,
  2 ** 31,
  2 ** 32,
);

/** Number literals as JSON text, including ones no double holds exactly. */
export const numberText = fc.oneof(
  edgeNumber.map((n) => (Object.is(n, -0) ? '-0' : JSON.stringify(n))),
  fc.constantFrom(
    '9007199254740993',
    '1e309',
    '-1e309',
    '1e-400',
    '-0.0',
    '0e0',
    '1E+2',
    '123456789012345678901234567890',
  ),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((n) => JSON.stringify(n)),
  fc.integer().map(String),
);

/** A JSON document as a tree, so its text and its depth are known without JSON.parse. */
export type JsonTree =
  | { readonly kind: 'leaf'; readonly text: string }
  | { readonly kind: 'array'; readonly items: readonly JsonTree[] }
  | { readonly kind: 'object'; readonly entries: readonly (readonly [string, JsonTree])[] };

/** Keys a client message might carry, prototype names and duplicates included. */
const keyArb = fc.oneof(
  fc.constantFrom('op', 'id', 'channel', 'token', 'client', 'since', 'epoch', 'seq'),
  prototypeKey,
  hostileString(12),
);

const leafArb: fc.Arbitrary<JsonTree> = fc
  .oneof(
    numberText,
    fc.constantFrom('true', 'false', 'null'),
    fc
      .oneof(hostileString(30), fc.constantFrom('hello', 'subscribe', 'ping'))
      .map((s) => JSON.stringify(s)),
    prototypeKey.map((s) => JSON.stringify(s)),
  )
  .map((text) => ({ kind: 'leaf', text }));

/** JSON trees up to `maxDepth` levels of arrays/objects (keys may repeat). */
export function jsonTree(maxDepth = 6): fc.Arbitrary<JsonTree> {
  const { tree } = fc.letrec<{ tree: JsonTree }>((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', maxDepth, withCrossShrink: true },
      leafArb,
      fc.array(tie('tree'), { maxLength: 4 }).map((items): JsonTree => ({ kind: 'array', items })),
      fc
        .array(fc.tuple(keyArb, tie('tree')), { maxLength: 4 })
        .map((entries): JsonTree => ({ kind: 'object', entries })),
    ),
  }));
  return tree;
}

/** A tree wrapped in `wrappers` levels of arrays or single-key objects. */
export function wrap(tree: JsonTree, wrappers: readonly ('array' | 'object')[]): JsonTree {
  return wrappers.reduceRight<JsonTree>(
    (inner, kind) =>
      kind === 'array' ? { kind, items: [inner] } : { kind, entries: [['op', inner]] },
    tree,
  );
}

/** Deeply nested trees: a small tree under up to `max` wrapping levels. */
export function deepTree(max = 40): fc.Arbitrary<JsonTree> {
  return fc
    .tuple(jsonTree(3), fc.array(fc.constantFrom('array', 'object'), { maxLength: max }))
    .map(([tree, wrappers]) => wrap(tree, wrappers));
}

/** The text of a tree, with optional whitespace between tokens. */
export function render(tree: JsonTree, space = ''): string {
  switch (tree.kind) {
    case 'leaf':
      return tree.text;
    case 'array':
      return `[${space}${tree.items.map((t) => render(t, space)).join(`,${space}`)}${space}]`;
    case 'object':
      return `{${space}${tree.entries
        .map(([k, v]) => `${JSON.stringify(k)}${space}:${space}${render(v, space)}`)
        .join(`,${space}`)}${space}}`;
  }
}

/** Levels of arrays/objects: 0 for a scalar, 1 for `[]` or `{}`. */
export function treeDepth(tree: JsonTree): number {
  switch (tree.kind) {
    case 'leaf':
      return 0;
    case 'array':
      return 1 + Math.max(0, ...tree.items.map(treeDepth));
    case 'object':
      return 1 + Math.max(0, ...tree.entries.map(([, v]) => treeDepth(v)));
  }
}

/** Levels of arrays/objects of a value, the straightforward recursive way (small values only). */
export function valueDepth(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  return 1 + Math.max(0, ...Object.values(value).map(valueDepth));
}

/** JSON values with hostile strings (as keys too) and edge numbers. */
export function jsonValue(maxDepth = 5): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.jsonValue({ maxDepth }),
    fc.jsonValue({ maxDepth, stringUnit: 'binary' }),
    fc.jsonValue({
      maxDepth,
      stringUnit: fc.oneof(codeUnit, jsonSyntax, awkwardChar, prototypeKey),
    }),
    jsonTree(maxDepth).map((t) => JSON.parse(render(t)) as unknown),
  );
}

/** An account (or strategy) as channel names allow it. */
export const account = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/);

/** Channel names archon-ws knows, of every class. */
export const validChannel = fc.oneof(
  account.map((a) => `positions:${a}`),
  account.map((a) => `risk:${a}`),
  fc.constant('signals'),
  account.map((a) => `signals:${a}`),
  fc.constant('system'),
);

/** Values of every kind JavaScript can hold (maps, sets, dates, typed arrays, null
 * prototypes…), for what in-process callers may hand over. */
export function anyJsValue(options: { maxDepth?: number; withBigInt?: boolean } = {}) {
  return fc.anything({
    ...options,
    withBoxedValues: true,
    withMap: true,
    withSet: true,
    withNullPrototype: true,
    withSparseArray: true,
    withTypedArray: true,
    withDate: true,
    withObjectString: true,
    stringUnit: 'binary',
  });
}
