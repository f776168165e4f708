/** JSON merge patch (src/protocol/merge-patch.ts) on the examples of RFC 7396 and on positions. */
import { describe, expect, it } from 'vitest';
import { applyMergePatch, diffMergePatch } from '../../src/protocol/index.js';

/** RFC 7396 Appendix A: original, patch, result. */
const APPENDIX_A: [unknown, unknown, unknown][] = [
  [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
  [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
  [{ a: 'b' }, { a: null }, {}],
  [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
  [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
  [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
  [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
  [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  [
    ['a', 'b'],
    ['c', 'd'],
    ['c', 'd'],
  ],
  [{ a: 'b' }, ['c'], ['c']],
  [{ a: 'foo' }, null, null],
  [{ a: 'foo' }, 'bar', 'bar'],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

describe('applyMergePatch', () => {
  it.each(APPENDIX_A)('applies RFC 7396 Appendix A: %j + %j = %j', (original, patch, result) => {
    const before = JSON.stringify(original);
    expect(applyMergePatch(original, patch)).toEqual(result);
    expect(JSON.stringify(original)).toBe(before);
  });

  it('applies the example of RFC 7396 section 3', () => {
    const original = {
      title: 'Goodbye!',
      author: { givenName: 'John', familyName: 'Doe' },
      tags: ['example', 'sample'],
      content: 'This will be unchanged',
    };
    const patch = {
      title: 'Hello!',
      phoneNumber: '+01-123-456-7890',
      author: { familyName: null },
      tags: ['example'],
    };
    expect(applyMergePatch(original, patch)).toEqual({
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'This will be unchanged',
      phoneNumber: '+01-123-456-7890',
    });
  });

  it('sets a member named __proto__ as data, never as the prototype', () => {
    const result = applyMergePatch({}, JSON.parse('{"__proto__":{"polluted":true}}')) as object;
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(Object.keys(result)).toEqual(['__proto__']);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });
});

describe('diffMergePatch', () => {
  it('says what changed in a position: the moving fields only', () => {
    const before = {
      symbol: 'EURUSD',
      side: 'long',
      size: 160000,
      entry_price: 1.0842,
      price: 1.08513,
      pnl: 148.8,
      pnl_pct: 0.09,
      updated_at: 1795812884200,
    };
    const after = { ...before, price: 1.08517, pnl: 155.2, updated_at: 1795812885200 };
    expect(diffMergePatch(before, after)).toEqual({
      price: 1.08517,
      pnl: 155.2,
      updated_at: 1795812885200,
    });
  });

  it('removes a member with null and replaces an array whole', () => {
    expect(diffMergePatch({ a: 1, tags: [1, 2] }, { tags: [1] })).toEqual({ a: null, tags: [1] });
  });

  it('merges nested objects member by member', () => {
    expect(
      diffMergePatch({ risk: { margin: 150, level: 'ok' } }, { risk: { margin: 99, level: 'ok' } }),
    ).toEqual({ risk: { margin: 99 } });
  });

  it('cannot say a member that becomes null, nor replace a non-object with an object holding one', () => {
    expect(diffMergePatch({ a: 1 }, { a: null })).toBeUndefined();
    expect(diffMergePatch({ a: 1 }, { a: { b: null } })).toBeUndefined();
    expect(diffMergePatch({ o: {} }, { o: { b: null } })).toBeUndefined();
    // A null that was there already needs no saying.
    expect(diffMergePatch({ a: null, b: 1 }, { a: null, b: 2 })).toEqual({ b: 2 });
    // Inside an array it travels with the array.
    expect(diffMergePatch({ a: [] }, { a: [null] })).toEqual({ a: [null] });
  });

  it('says undefined unless both sides are objects', () => {
    expect(diffMergePatch(null, { a: 1 })).toBeUndefined();
    expect(diffMergePatch({ a: 1 }, [1])).toBeUndefined();
    expect(diffMergePatch('x', 'y')).toBeUndefined();
  });
});
