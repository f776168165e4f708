/** Validation of client → server messages (docs/protocol.md, docs/security.md). */
import { z } from 'zod';
import { CLIENT_OPS, MAX_OP_DEPTH, type ClientOp } from '../protocol/index.js';
import { quote } from './text.js';

const id = z.union([z.number().int(), z.string().max(64)]).optional();
const channel = z.string().min(1).max(200);

const ClientOpSchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('hello'),
    token: z.string().min(1).max(8192),
    client: z.string().max(100).optional(),
    deltas: z.boolean().optional(),
  }),
  z.object({
    op: z.literal('subscribe'),
    id,
    channel,
    since: z.object({ epoch: z.string().max(64), seq: z.number().int().min(0) }).optional(),
  }),
  z.object({ op: z.literal('unsubscribe'), id, channel }),
  z.object({ op: z.literal('pong') }),
  z.object({ op: z.literal('ping') }),
  z.object({ op: z.literal('refresh'), id, token: z.string().min(1).max(8192) }),
  z.object({
    op: z.literal('ack'),
    id,
    channel,
    epoch: z.string().min(1).max(64),
    seq: z.number().int().min(1),
  }),
]);

const KNOWN_OPS: ReadonlySet<string> = new Set(CLIENT_OPS);
const OPS_LISTED = `${CLIENT_OPS.slice(0, -1).join(', ')} or ${CLIENT_OPS.at(-1)}`;

export type ParseResult =
  | { ok: true; op: ClientOp }
  | {
      ok: false;
      code: 'invalid_json' | 'unknown_op' | 'bad_request';
      message: string;
      id?: number | string;
    };

/**
 * Parses one client message. Total and linear in the text's length: nesting is measured
 * on the raw text before JSON.parse builds anything, nothing walks an unvalidated value,
 * and an error message quotes client values only when short (docs/security.md).
 */
export function parseClientMessage(text: string): ParseResult {
  if (nestingExceeds(text, MAX_OP_DEPTH)) {
    return {
      ok: false,
      code: 'bad_request',
      message: `message nested deeper than ${MAX_OP_DEPTH} levels`,
    };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, code: 'invalid_json', message: 'message is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'bad_request', message: 'message must be a JSON object' };
  }
  const record = value as Record<string, unknown>;
  const echoed = id.safeParse(record.id);
  const requestId = echoed.success ? echoed.data : undefined;
  const withId = requestId !== undefined ? { id: requestId } : {};
  if (typeof record.op !== 'string' || !KNOWN_OPS.has(record.op)) {
    return {
      ok: false,
      code: 'unknown_op',
      message: `unknown op ${quote(record.op)}: expected ${OPS_LISTED}`,
      ...withId,
    };
  }
  const parsed = ClientOpSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.map((p) => quote(p, false)).join('.') ?? '';
    const why = (issue?.message ?? 'invalid').slice(0, 200);
    return {
      ok: false,
      code: 'bad_request',
      message: `invalid ${record.op}: ${where ? `${where}: ` : ''}${why}`,
      ...withId,
    };
  }
  return { ok: true, op: parsed.data };
}

/**
 * Whether JSON text nests arrays/objects deeper than `max`, in one pass over the text
 * (brackets inside strings do not count). Runs before JSON.parse, so a hostile message
 * never reaches anything that recurses over it.
 */
export function nestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \\ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (++depth > max) return true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}

/** The text of a WebSocket message as `ws` hands it over. */
export function rawText(data: Buffer | ArrayBuffer | Buffer[]): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}
