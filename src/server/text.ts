/**
 * Client text inside our own messages: quoted only when short, so an answer never grows
 * with what a client sent, and cut on a character boundary where the protocol caps bytes.
 */
import { MAX_QUOTED_CHARS } from '../protocol/index.js';

/** A client value for an error message: short strings quoted, anything else by its type. */
export function quote(value: unknown, json = true): string {
  if (typeof value === 'string') {
    if (value.length > MAX_QUOTED_CHARS) return `(a string of ${value.length} characters)`;
    return json ? JSON.stringify(value) : value;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return String(value);
  return Array.isArray(value)
    ? '(an array)'
    : `(${typeof value === 'object' ? 'an object' : typeof value})`;
}

/** A close reason may hold at most 123 bytes of UTF-8 (ws throws on more). Linear: cut the
 * encoded bytes once, then back off to the start of a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  // A UTF-16 unit is at least one byte, so more than maxBytes units can never fit.
  const head = text.length > maxBytes ? text.slice(0, maxBytes) : text;
  const bytes = Buffer.from(head, 'utf8');
  if (bytes.length <= maxBytes) return head;
  let end = maxBytes;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
