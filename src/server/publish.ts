/** Validation of POST /api/v1/publish bodies and of every event published (docs/http-api.md). */
import { z } from 'zod';
import {
  ArchonError,
  MAX_DATA_DEPTH,
  MAX_EVENT_DATA_BYTES,
  parseChannel,
  MAX_EVENT_TTL_S,
  SYSTEM_CHANNEL,
  type ChannelClass,
} from '../protocol/index.js';
import type { PublishInput } from './backplane/backplane.js';
import { nestingExceeds } from './inbound.js';

export const MAX_BATCH = 1000;

const EventSchema = z.object({
  channel: z.string().min(1).max(200),
  key: z.string().min(1).max(200).nullish(),
  // Optional here so a missing data gets its own clear error below.
  data: z.unknown().optional(),
  id: z.string().min(1).max(200).optional(),
  ttl: z.number().min(0).max(MAX_EVENT_TTL_S).optional(),
});
const BodySchema = z.union([
  z.object({ events: z.array(EventSchema).min(1).max(MAX_BATCH) }),
  EventSchema,
]);

/** Turns a publish body into backplane inputs; throws ArchonError with the first problem. */
export function parsePublishBody(body: unknown): PublishInput[] {
  const parsed = BodySchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join('.') ?? '';
    throw new ArchonError(
      'invalid_event',
      `invalid event${where ? ` at ${where}` : ''}: ${issue?.message ?? 'invalid'} (expected {"channel","key"?,"data","id"?,"ttl"?} or {"events":[…]} with at most ${MAX_BATCH} events)`,
    );
  }
  const events = 'events' in parsed.data ? parsed.data.events : [parsed.data];
  return events.map((e, i) => {
    const at = events.length > 1 ? ` (events.${i})` : '';
    const channel = parseChannel(e.channel);
    if (!channel)
      throw new ArchonError('unknown_channel', `unknown channel ${JSON.stringify(e.channel)}${at}`);
    if (e.data === undefined) throw new ArchonError('invalid_event', `data is required${at}`);
    const key = e.key ?? null;
    if (channel.class === 'state' && key === null) {
      throw new ArchonError(
        'invalid_event',
        `${e.channel} is a state channel: key is required${at}`,
      );
    }
    if (channel.class !== 'state' && e.data === null) {
      throw new ArchonError(
        'invalid_event',
        `data: null deletes a key and is only for state channels${at}`,
      );
    }
    if (e.channel === SYSTEM_CHANNEL) {
      const data: unknown = e.data;
      const message =
        typeof data === 'object' && data !== null
          ? (data as { message?: unknown }).message
          : undefined;
      if (typeof message !== 'string' || message.length === 0) {
        throw new ArchonError(
          'invalid_event',
          `system events need data.message, a non-empty string${at}`,
        );
      }
    }
    if (e.channel === SYSTEM_CHANNEL && e.ttl !== undefined)
      throw new ArchonError('invalid_event', `system notices are not stored: no ttl${at}`);
    return { channel: e.channel, key, data: e.data, id: e.id, ttl: e.ttl };
  });
}

/**
 * Checks what every publish path stores, before anything is stored (publish is all or
 * nothing): `data` at most MAX_DATA_DEPTH deep, serializable, and at most
 * MAX_EVENT_DATA_BYTES as JSON. Returns the events with their data serialized once, which
 * the backplane stores as is. Throws ArchonError('invalid_event') naming the first bad event.
 */
export function validateEvents(events: readonly PublishInput[]): PublishInput[] {
  return events.map((e, i) => {
    const at = events.length > 1 ? ` (events.${i})` : '';
    const tooLarge = (what: string) =>
      new ArchonError(
        'invalid_event',
        `data is ${what}: at most ${MAX_EVENT_DATA_BYTES} bytes of JSON are allowed${at}`,
      );
    const tooDeep = () =>
      new ArchonError('invalid_event', `data is nested deeper than ${MAX_DATA_DEPTH} levels${at}`);
    let json: string | undefined;
    try {
      // The walk stops JSON.stringify from recursing into a hostile depth; the check of
      // the text below covers what toJSON methods (in-process publishers) may add.
      // Every value costs at least one byte of JSON: more values than the size limit has
      // bytes cannot fit, however they are shared.
      const problem = shapeProblem(e.data, MAX_DATA_DEPTH, MAX_EVENT_DATA_BYTES);
      if (problem === 'depth') throw tooDeep();
      if (problem === 'size') throw tooLarge(`more than ${MAX_EVENT_DATA_BYTES} values`);
      json = JSON.stringify(e.data);
    } catch (err) {
      if (err instanceof ArchonError) throw err;
      const why = err instanceof Error ? err.message.slice(0, 100) : 'not serializable';
      throw new ArchonError('invalid_event', `data cannot be written as JSON: ${why}${at}`);
    }
    if (json === undefined)
      throw new ArchonError('invalid_event', `data cannot be written as JSON${at}`);
    if (e.ttl !== undefined && !(e.ttl >= 0 && e.ttl <= MAX_EVENT_TTL_S))
      throw new ArchonError(
        'invalid_event',
        `ttl must be a number of seconds from 0 (never expires) to ${MAX_EVENT_TTL_S}${at}`,
      );
    const bytes = Buffer.byteLength(json);
    if (bytes > MAX_EVENT_DATA_BYTES) throw tooLarge(`${bytes} bytes as JSON`);
    if (nestingExceeds(json, MAX_DATA_DEPTH)) throw tooDeep();
    return { ...e, json };
  });
}

/** Per-class default TTLs in ms (0: never expires): WEBSOCKET_STREAM_TTL and its siblings. */
export type DefaultTtls = Readonly<Record<'state' | 'stream' | 'alert', number>>;

/**
 * The TTL an event is stored with (docs/protocol.md#expiring-events): its own `ttl` when it
 * has one, else its class's default; 0 means never. Returns the event with `ttl` in seconds
 * (undefined when it never expires).
 */
export function withTtl(
  event: PublishInput,
  cls: ChannelClass,
  defaults: DefaultTtls,
): PublishInput {
  // A delete never expires: one written as `expired` would leave the key on the client.
  if (event.data === null) return { ...event, ttl: undefined };
  const ttlS = event.ttl ?? (cls === 'broadcast' ? 0 : defaults[cls] / 1000);
  return { ...event, ttl: ttlS > 0 ? ttlS : undefined };
}

/** Whether a value nests objects/arrays deeper than `max` (a cycle always does). */
export function exceedsDepth(value: unknown, max: number): boolean {
  return shapeProblem(value, max, Infinity) === 'depth';
}

/**
 * What makes a value unfit to store, found without recursion: nesting deeper than
 * `maxDepth` (a cycle always is), or more than `maxNodes` values in all (counting a value
 * shared by several parents once per parent, as JSON.stringify would write it, so an object
 * graph that would expand exponentially is caught before it is written).
 */
export function shapeProblem(
  value: unknown,
  maxDepth: number,
  maxNodes: number,
): 'depth' | 'size' | null {
  const stack: [unknown, number][] = [[value, 0]];
  let nodes = 0;
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [node, depth] = top;
    if (typeof node !== 'object' || node === null) continue;
    if (depth >= maxDepth) return 'depth';
    for (const child of Object.values(node)) {
      if (++nodes > maxNodes) return 'size';
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return null;
}
