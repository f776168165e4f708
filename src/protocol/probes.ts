/**
 * What the unauthenticated endpoints answer (docs/http-api.md#get-apihealth,
 * #get-head-apiv1wshealth, #apiv1wstest), defined once as schemas: the gateway's tests
 * validate what it sends through them, `archon-ws check-lb`, `test-connect` and `doctor`
 * read through the reader variants, and the types are inferred from them.
 *
 * Like ./admin.ts, this file is not re-exported by ./index.js (only its types are), so a
 * dashboard bundle never carries the schema library.
 */
import { z } from 'zod';

/** The first message of a test connection (`/api/v1/ws/test`). */
export const TestWelcomeSchema = z.object({
  type: z.literal('welcome'),
  endpoint: z.literal('test'),
  client_id: z.string(),
  server: z.string(),
  /** Seconds this test connection stays open (60, or `?hold=`). */
  closes_after: z.number(),
  /** The ping interval and timeout of client connections on this gateway, seconds. */
  ping_interval: z.number(),
  ping_timeout: z.number(),
  message: z.string(),
});
export type TestWelcomeMessage = z.infer<typeof TestWelcomeSchema>;

/**
 * The welcome as the operator tools read it: anything that says `welcome` and names a
 * server. The rest may be absent (an older gateway did not tell its ping settings, and a
 * check-lb run then reasons from the most lenient ones) and is null when it is.
 */
export const TestWelcomeReader = z.object({
  type: z.literal('welcome'),
  server: z.string(),
  client_id: z.string().nullable().catch(null),
  closes_after: z.number().nullable().catch(null),
  ping_interval: z.number().nullable().catch(null),
  ping_timeout: z.number().nullable().catch(null),
});
export type TestWelcomeRead = z.infer<typeof TestWelcomeReader>;

/** The one message of a real upgrade to `/api/v1/ws/health`. */
export const HealthMessageSchema = z.object({
  type: z.literal('health'),
  status: z.enum(['ok', 'draining']),
  server: z.string(),
});
export type HealthMessage = z.infer<typeof HealthMessageSchema>;

/** GET /api/health: 200 `ok` or `degraded` (backplane down), 503 `draining` (no backplane
 * field: the instance is leaving whatever its backplane says). */
export const HealthAnswerSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.enum(['ok', 'degraded']),
    server: z.string(),
    backplane: z.enum(['up', 'down']),
  }),
  z.object({ status: z.literal('draining'), server: z.string() }),
]);
export type HealthAnswer = z.infer<typeof HealthAnswerSchema>;
