/** Fuzz: channel names (src/protocol/channels.ts). */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseChannel, type ChannelClass } from '../../src/protocol/channels.js';
import { account, anyString, validChannel } from './arbitraries.js';
import { params, TIMEOUT } from './runs.js';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `[A-Za-z0-9][A-Za-z0-9_.-]{0,63}`, spelled out without a regular expression. */
function isAccount(text: string): boolean {
  if (text.length < 1 || text.length > 64) return false;
  return [...text].every((c, i) => ALNUM.includes(c) || (i > 0 && '_.-'.includes(c)));
}

/** What the protocol says a name is: its class and account, or null for an unknown name. */
function expected(name: string): { class: ChannelClass; account: string | null } | null {
  if (name === 'system') return { class: 'broadcast', account: null };
  if (name === 'signals') return { class: 'stream', account: null };
  const colon = name.indexOf(':');
  if (colon < 0) return null;
  const prefix = name.slice(0, colon);
  const rest = name.slice(colon + 1);
  if (!isAccount(rest)) return null;
  if (prefix === 'positions') return { class: 'state', account: rest };
  if (prefix === 'risk') return { class: 'alert', account: rest };
  if (prefix === 'signals') return { class: 'stream', account: null };
  return null;
}

function checkName(name: string): void {
  const info = parseChannel(name);
  const want = expected(name);
  if (want === null) expect(info).toBeNull();
  else expect(info).toEqual({ name, ...want });
}

/** Characters worth putting into a channel name. */
const nameChar = fc.oneof(
  fc.constantFrom(':', '\n', '\r', '_', '.', '-', ' ', '\u0000', 'é', 'İ', 'K', '𝟘', '/', '*'),
  fc.constantFrom(...ALNUM),
  fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }),
);

/** A valid name with one edit: a character inserted, replaced or removed, or a case change. */
const nearMiss = fc
  .tuple(
    validChannel,
    fc.constantFrom('insert', 'replace', 'remove', 'upper', 'repeat', 'prefix'),
    fc.nat(),
    nameChar,
  )
  .map(([name, edit, at, c]) => {
    const i = at % (name.length + 1);
    switch (edit) {
      case 'insert':
        return name.slice(0, i) + c + name.slice(i);
      case 'replace':
        return name.slice(0, i) + c + name.slice(i + 1);
      case 'remove':
        return name.slice(0, i) + name.slice(i + 1);
      case 'upper':
        return name.slice(0, i) + name.slice(i).toUpperCase();
      case 'repeat':
        return name + name.slice(i);
      case 'prefix':
        return c + name;
    }
  });

/** A known prefix with an account-like rest, of any length around the limit. */
const prefixed = fc
  .tuple(
    fc.constantFrom('positions:', 'risk:', 'signals:', 'system:', 'signals', ':', 'positions'),
    fc.string({
      unit: fc.oneof(fc.constantFrom(...ALNUM, '_', '.', '-'), nameChar),
      maxLength: 70,
    }),
  )
  .map(([prefix, rest]) => prefix + rest);

describe('parseChannel', () => {
  it(
    'is total on arbitrary strings and accepts only the documented names, with their class',
    () => {
      fc.assert(
        fc.property(anyString, (name) => checkName(name)),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'accepts every generated valid name with its class and account',
    () => {
      fc.assert(
        fc.property(validChannel, (name) => {
          expect(parseChannel(name)).not.toBeNull();
          checkName(name);
        }),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'tells near misses of valid names from valid names exactly',
    () => {
      fc.assert(
        fc.property(fc.oneof(nearMiss, prefixed), (name) => checkName(name)),
        params(),
      );
    },
    TIMEOUT,
  );

  it(
    'takes accounts of 1 to 64 characters and no longer',
    () => {
      fc.assert(
        fc.property(
          account,
          fc.integer({ min: 0, max: 70 }),
          fc.constantFrom('positions:', 'risk:', 'signals:'),
          (a, length, prefix) => {
            const padded = (a + 'x'.repeat(70)).slice(0, length);
            const info = parseChannel(prefix + padded);
            if (length >= 1 && length <= 64) expect(info).not.toBeNull();
            else expect(info).toBeNull();
            checkName(prefix + padded);
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );
});
