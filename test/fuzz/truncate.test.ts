/** Fuzz: cutting close reasons to a byte budget (truncateUtf8 in src/server/text.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { truncateUtf8 } from '../../src/server/text.js';
import { codeUnit } from './arbitraries.js';
import { params, TIMEOUT } from './runs.js';

/** Well-formed text: code points of 1 to 4 UTF-8 bytes, no lone surrogates. */
const wellFormed = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.string({
    unit: fc.constantFrom('a', 'é', '€', '😀', '\u0000', '\u07ff', '\u0800', '\uffff'),
    maxLength: 80,
  }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
);

/** A byte budget around the text's own size (and the 123 of a close reason). */
const budget = (text: string) =>
  fc.oneof(
    fc.integer({ min: 0, max: Buffer.byteLength(text) + 4 }),
    fc.constantFrom(0, 1, 2, 3, 123),
  );

describe('truncateUtf8', () => {
  it(
    'returns the longest prefix within the byte budget that ends on a character boundary',
    () => {
      fc.assert(
        fc.property(
          wellFormed.chain((text) => fc.tuple(fc.constant(text), budget(text))),
          ([text, maxBytes]) => {
            const cut = truncateUtf8(text, maxBytes);
            expect(text.startsWith(cut)).toBe(true);
            expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(maxBytes);
            // Ends between code points: no half of a surrogate pair.
            const codePoints = [...text];
            const kept = [...cut].length;
            expect(codePoints.slice(0, kept).join('')).toBe(cut);
            // Longest: the next code point would not fit.
            if (kept < codePoints.length) {
              expect(Buffer.byteLength(cut + (codePoints[kept] as string))).toBeGreaterThan(
                maxBytes,
              );
            }
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'stays within the byte budget on text with lone surrogates',
    () => {
      const anyText = fc.string({
        unit: fc.oneof(codeUnit, fc.constantFrom('\ud800', '\udfff', '😀', 'a')),
        maxLength: 80,
      });
      fc.assert(
        fc.property(
          anyText.chain((text) => fc.tuple(fc.constant(text), budget(text))),
          ([text, maxBytes]) => {
            const cut = truncateUtf8(text, maxBytes);
            expect(typeof cut).toBe('string');
            expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(maxBytes);
            if (Buffer.byteLength(text) <= maxBytes) expect(cut).toBe(text);
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );
});
