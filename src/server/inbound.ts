/** Validation of client → server messages (DESIGN §3) and the inbound rate limit. */
import { z } from 'zod';
import type { ClientOp } from '../protocol/index.js';

const id = z.union([z.number().int(), z.string().max(64)]).optional();
const channel = z.string().min(1).max(200);

const ClientOpSchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('hello'),
    token: z.string().min(1).max(8192),
    client: z.string().max(100).optional(),
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
]);

const KNOWN_OPS = new Set(['hello', 'subscribe', 'unsubscribe', 'pong', 'ping']);

export type ParseResult =
  | { ok: true; op: ClientOp }
  | {
      ok: false;
      code: 'invalid_json' | 'unknown_op' | 'bad_request';
      message: string;
      id?: number | string;
    };

export function parseClientMessage(text: string): ParseResult {
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
  const requestId =
    typeof record.id === 'number' || typeof record.id === 'string' ? record.id : undefined;
  if (typeof record.op !== 'string' || !KNOWN_OPS.has(record.op)) {
    return {
      ok: false,
      code: 'unknown_op',
      message: `unknown op ${JSON.stringify(record.op ?? null)}: expected hello, subscribe, unsubscribe, pong or ping`,
      ...(requestId !== undefined && { id: requestId }),
    };
  }
  const parsed = ClientOpSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') ?? '';
    return {
      ok: false,
      code: 'bad_request',
      message: `invalid ${record.op}: ${where ? `${where}: ` : ''}${issue?.message ?? 'invalid'}`,
      ...(requestId !== undefined && { id: requestId }),
    };
  }
  return { ok: true, op: parsed.data };
}

/** The text of a WebSocket message as `ws` hands it over. */
export function rawText(data: Buffer | ArrayBuffer | Buffer[]): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.from(data).toString('utf8');
}

/** Token bucket: `rate` messages per second sustained, bursts up to `rate`. */
export class RateLimiter {
  private tokens: number;
  private last: number;

  constructor(
    private readonly rate: number,
    now: number,
  ) {
    this.tokens = rate;
    this.last = now;
  }

  take(now: number): boolean {
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
