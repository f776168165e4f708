/** Every error code and close code is documented in docs/errors.md, so clients can look
 * up what any answer means. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, CloseCode, ERRORS } from '../../src/protocol/index.js';

const doc = readFileSync(resolve(import.meta.dirname, '../../docs/errors.md'), 'utf8');

describe('docs/errors.md', () => {
  it.each(Object.keys(ERRORS))('documents error code %s', (code) => {
    expect(doc).toContain(`\`${code}\``);
  });

  it.each(CLOSE_CODES.map((c) => c.code))('documents close code %i', (code) => {
    expect(doc).toMatch(new RegExp(`\\b${code}\\b`));
  });

  it('gives each error code a close code or HTTP status that the catalogue agrees with', () => {
    for (const [code, spec] of Object.entries(ERRORS) as [
      string,
      { http?: number; close?: number },
    ][]) {
      const row = doc.split('\n').find((line) => line.startsWith(`| \`${code}\``));
      expect(row, code).toBeDefined();
      if (spec.http !== undefined) expect(row, code).toContain(String(spec.http));
      if (spec.close !== undefined) expect(row, code).toContain(String(spec.close));
    }
  });

  it('has a policy and a meaning for every close code the server names', () => {
    expect(CLOSE_CODES.map((c) => c.code).sort()).toEqual(Object.values(CloseCode).sort());
  });
});
