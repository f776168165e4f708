/** Validation of POST /api/v1/publish bodies (DESIGN §4). */
import { z } from 'zod';
import { ArchonError, parseChannel, SYSTEM_CHANNEL } from '../protocol/index.js';
import type { PublishInput } from './backplane/backplane.js';

export const MAX_BATCH = 1000;

const EventSchema = z.object({
  channel: z.string().min(1).max(200),
  key: z.string().min(1).max(200).nullish(),
  // Optional here so a missing data gets its own clear error below.
  data: z.unknown().optional(),
  id: z.string().min(1).max(200).optional(),
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
      `invalid event${where ? ` at ${where}` : ''}: ${issue?.message ?? 'invalid'} (expected {"channel","key"?,"data","id"?} or {"events":[…]} with at most ${MAX_BATCH} events)`,
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
    return { channel: e.channel, key, data: e.data, id: e.id };
  });
}
