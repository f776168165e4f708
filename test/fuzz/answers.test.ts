/**
 * Fuzz: what the tools read from whatever answers at a URL (src/protocol/errors.ts
 * readErrorAnswer, the CLI's parseAnswer and parseWelcome). Anything can answer there: a
 * proxy's page, another service, a gateway of another release. Reading must be total (a
 * CliError with exit 5 at worst, never another exception) and must keep what fits.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CliError, Exit, parseAnswer } from '../../src/cli/api.js';
import { parseWelcome } from '../../src/cli/lb-probe.js';
import { ADMIN_READERS } from '../../src/protocol/admin.js';
import { readErrorAnswer } from '../../src/protocol/index.js';
import { params, TIMEOUT } from './runs.js';

/** JSON values, error-answer-shaped ones among them, and the text of both. */
const errorish = fc.oneof(
  fc.jsonValue(),
  fc.record({ error: fc.jsonValue() }),
  fc.record({ error: fc.record({ code: fc.jsonValue(), message: fc.jsonValue() }) }),
);
const anyBody = fc.oneof(
  errorish,
  errorish.map((v) => JSON.stringify(v)),
  fc.string(),
  fc.constantFrom('<html>502 Bad Gateway</html>', '', 'null', '{"error":null}'),
);

describe('readErrorAnswer', () => {
  it(
    'never throws, and gives back the code and message of every body that has them',
    () => {
      fc.assert(
        fc.property(anyBody, (body) => {
          const read = readErrorAnswer(body);
          let value: unknown = body;
          if (typeof body === 'string')
            try {
              value = JSON.parse(body);
            } catch {
              value = undefined;
            }
          const error = (value as { error?: { code?: unknown; message?: unknown } } | null)?.error;
          if (typeof error === 'object' && error !== null && typeof error.code === 'string')
            expect(read).toEqual({
              code: error.code,
              message: typeof error.message === 'string' ? error.message : '',
            });
          else expect(read).toBeNull();
        }),
        params(),
      );
    },
    TIMEOUT,
  );
});

describe('parseAnswer', () => {
  it(
    'turns every answer into its reading or a CliError with exit 5, for every admin endpoint',
    () => {
      const endpoints = Object.keys(ADMIN_READERS) as (keyof typeof ADMIN_READERS)[];
      fc.assert(
        fc.property(fc.constantFrom(...endpoints), fc.jsonValue(), (endpoint, body) => {
          try {
            parseAnswer(endpoint, ADMIN_READERS[endpoint], body);
          } catch (err) {
            expect(err).toBeInstanceOf(CliError);
            expect((err as CliError).exitCode).toBe(Exit.badAnswer);
            expect((err as Error).message).toMatch(/^bad answer from /);
          }
        }),
        params(),
      );
    },
    TIMEOUT,
  );
});

describe('parseWelcome', () => {
  it(
    'never throws, reads any welcome naming a server, and nulls the fields that do not fit',
    () => {
      const welcome = fc.record(
        {
          type: fc.oneof(fc.constant('welcome'), fc.jsonValue()),
          server: fc.oneof(fc.string(), fc.jsonValue()),
          client_id: fc.jsonValue(),
          closes_after: fc.oneof(fc.nat(), fc.jsonValue()),
          ping_interval: fc.oneof(fc.nat(), fc.jsonValue()),
          ping_timeout: fc.oneof(fc.nat(), fc.jsonValue()),
        },
        { requiredKeys: [] },
      );
      fc.assert(
        fc.property(
          fc.oneof(
            welcome.map((w) => JSON.stringify(w)),
            fc.string(),
          ),
          (raw) => {
            const read = parseWelcome(raw);
            let m: Record<string, unknown> | null = null;
            try {
              const v: unknown = JSON.parse(raw);
              if (typeof v === 'object' && v !== null && !Array.isArray(v))
                m = v as Record<string, unknown>;
            } catch {
              // not JSON: not a welcome
            }
            if (m === null || m.type !== 'welcome' || typeof m.server !== 'string') {
              expect(read).toHaveProperty('error');
              return;
            }
            expect(read).toMatchObject({ type: 'welcome', server: m.server });
            const num = (v: unknown) => (typeof v === 'number' ? v : null);
            expect(read).toMatchObject({
              client_id: typeof m.client_id === 'string' ? m.client_id : null,
              closes_after: num(m.closes_after),
              ping_interval: num(m.ping_interval),
              ping_timeout: num(m.ping_timeout),
            });
          },
        ),
        params(),
      );
    },
    TIMEOUT,
  );
});
