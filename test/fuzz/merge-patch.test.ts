/**
 * Fuzz: JSON merge patch (src/protocol/merge-patch.ts), the form of a state update sent as a
 * delta. Whatever two JSON objects a position goes between, the diff either rebuilds the new
 * one exactly from the old one (also after a trip through JSON, as on the wire) or says it
 * cannot; applying never throws and never changes its inputs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyMergePatch, diffMergePatch } from '../../src/protocol/merge-patch.js';
import { jsonValue, prototypeKey } from './arbitraries.js';
import { params, TIMEOUT } from './runs.js';

type JsonObject = Record<string, unknown>;

/** As the value would arrive: through JSON text (no -0, no undefined members). */
const wire = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const key = fc.oneof(
  fc.constantFrom('price', 'pnl', 'size', 'side', 'a', 'b'),
  prototypeKey,
  fc.string({ maxLength: 6 }),
);

/** A JSON object whose members are any JSON value, nested objects included. */
const object: fc.Arbitrary<JsonObject> = fc
  .dictionary(key, fc.oneof(jsonValue(3), fc.dictionary(key, jsonValue(2), { maxKeys: 4 })), {
    maxKeys: 6,
  })
  .map(wire);

/** `a` with some members changed, removed or added: what consecutive updates look like. */
function edited(a: JsonObject): fc.Arbitrary<JsonObject> {
  const keys = Object.keys(a);
  return fc
    .tuple(
      fc.array(fc.constantFrom('keep', 'change', 'remove'), {
        minLength: keys.length,
        maxLength: keys.length,
      }),
      fc.array(jsonValue(2), { minLength: keys.length, maxLength: keys.length }),
      object,
    )
    .map(([edits, values, added]) => {
      const b: JsonObject = wire(added);
      keys.forEach((k, i) => {
        if (edits[i] === 'keep') Object.defineProperty(b, k, own(a[k]));
        else if (edits[i] === 'change') Object.defineProperty(b, k, own(values[i]));
      });
      return wire(b);
    });
}

const own = (value: unknown): PropertyDescriptor => ({
  value,
  enumerable: true,
  writable: true,
  configurable: true,
});

/** Two objects: unrelated, or the second an edit of the first. */
const pair: fc.Arbitrary<[JsonObject, JsonObject]> = fc.oneof(
  fc.tuple(object, object),
  object.chain((a) => edited(a).map((b): [JsonObject, JsonObject] => [a, b])),
);

/** Whether a value holds a null member at any depth of objects (arrays are opaque). */
function holdsNullMember(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.values(value).some((v) => v === null || holdsNullMember(v));
}

describe('JSON merge patch', () => {
  it(
    'rebuilds b from a with diff(a, b) whenever a diff exists, also after a trip through JSON',
    () => {
      fc.assert(
        fc.property(pair, ([a, b]) => {
          const patch = diffMergePatch(a, b);
          if (patch === undefined) {
            // Only a null member of b can be beyond a merge patch.
            expect(holdsNullMember(b)).toBe(true);
            return;
          }
          expect(applyMergePatch(a, patch)).toEqual(b);
          expect(applyMergePatch(a, wire(patch))).toEqual(b);
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'diffs an object with itself to {}',
    () => {
      fc.assert(
        fc.property(object, (a) => {
          expect(diffMergePatch(a, a)).toEqual({});
          expect(diffMergePatch(a, wire(a))).toEqual({});
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'never throws on any JSON target and patch, and never changes them',
    () => {
      const any = fc.oneof(jsonValue(4), object);
      fc.assert(
        fc.property(any, any, (target, patch) => {
          const [targetText, patchText] = [JSON.stringify(target), JSON.stringify(patch)];
          const result = applyMergePatch(target, patch);
          expect(JSON.stringify(target)).toBe(targetText);
          expect(JSON.stringify(patch)).toBe(patchText);
          // RFC 7396 §2: applying the same patch twice changes nothing more.
          expect(applyMergePatch(result, patch)).toEqual(result);
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'says undefined when either side is not an object',
    () => {
      const notObject = jsonValue(3).filter(
        (v) => typeof v !== 'object' || v === null || Array.isArray(v),
      );
      fc.assert(
        fc.property(notObject, object, (x, a) => {
          expect(diffMergePatch(x, a)).toBeUndefined();
          expect(diffMergePatch(a, x)).toBeUndefined();
        }),
        params(),
      );
    },
    TIMEOUT,
  );
});
