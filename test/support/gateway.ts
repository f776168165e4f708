/** Starts a real gateway on port 0 for a test, with known tokens and a JWT signer. */
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import { z } from 'zod';
import { ADMIN_ANSWERS } from '../../src/protocol/admin.js';
import type { ErrorAnswer } from '../../src/protocol/index.js';
import type { PublishResult } from '../../src/server/backplane/backplane.js';
import { loadConfig, type Config } from '../../src/server/config.js';
import { Gateway, type GatewayOptions } from '../../src/server/gateway.js';

export const JWT_SECRET = 'test-secret-0123456789abcdef0123456789abcdef';
export const ADMIN_TOKEN = 'adm_test_token_1';
export const PUBLISH_TOKEN = 'pub_test_token_1';

/** The body of every HTTP error answer (src/protocol/errors.ts). */
export type ErrorBody = ErrorAnswer;

/** The answer of POST /api/v1/publish: one result per event, in order. */
export interface PublishAnswer {
  results: PublishResult[];
}

export interface TestGateway {
  readonly gateway: Gateway;
  readonly config: Config;
  readonly port: number;
  readonly http: string;
  readonly ws: string;
  /** Every log line the gateway wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Raw log text, to check that no secret ever appears. */
  logText(): string;
  stop(): Promise<void>;
}

/** `options`: what the gateway takes besides its config (a backplane of its own, a clock). */
export async function startGateway(
  env: Record<string, string> = {},
  options: Omit<GatewayOptions, 'logDestination'> = {},
): Promise<TestGateway> {
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    ARCHON_SERVER_ID: 'test-1',
    ARCHON_JWT_SECRET: JWT_SECRET,
    ARCHON_ADMIN_TOKENS: ADMIN_TOKEN,
    ARCHON_PUBLISH_TOKENS: PUBLISH_TOKEN,
    LOG_LEVEL: 'debug',
    ...env,
  });
  const chunks: string[] = [];
  const logDestination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const gateway = new Gateway(config, { ...options, logDestination });
  const port = await gateway.start();
  return {
    gateway,
    config,
    port,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    get logs() {
      return chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    logText: () => chunks.join(''),
    stop: () => gateway.shutdown(),
  };
}

export function signToken(
  claims: { sub?: string; accounts?: string[]; exp?: number | string } = {},
  secret = JWT_SECRET,
): Promise<string> {
  const jwt = new SignJWT({ accounts: claims.accounts ?? ['ACC1'] })
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(claims.sub ?? 'user-1')
    .setIssuedAt();
  if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
  else jwt.setExpirationTime('1h');
  return jwt.sign(new TextEncoder().encode(secret));
}

export async function publish(
  tg: TestGateway,
  body: unknown,
  token = PUBLISH_TOKEN,
): Promise<{ status: number; body: unknown; headers: Headers }> {
  const res = await fetch(`${tg.http}/api/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

export async function admin(
  tg: TestGateway,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  token = ADMIN_TOKEN,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${tg.http}/api/v1/admin${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const answer: unknown = await res.json();
  if (res.status === 200) expectAdminAnswer(path, answer);
  return { status: res.status, body: answer };
}

/**
 * Every 200 answer of the admin API matches its schema in src/protocol exactly: no field
 * missing, none of the wrong type, and none that the schema does not declare.
 */
export function expectAdminAnswer(path: string, answer: unknown): void {
  const endpoint = path.split('?')[0] as keyof typeof ADMIN_ANSWERS;
  const schema = ADMIN_ANSWERS[endpoint] as z.ZodType | undefined;
  if (schema === undefined) throw new Error(`no answer schema for ${endpoint}`);
  expectExactly(`${endpoint} answer`, schema, answer);
}

/**
 * A message or answer matches its schema in src/protocol exactly: no field missing, none of
 * the wrong type, and none that the schema does not declare (at any depth).
 */
export function expectExactly(what: string, schema: z.ZodType, value: unknown): void {
  const parsed = strict(schema).safeParse(value);
  if (!parsed.success)
    throw new Error(`${what} does not match its schema: ${z.prettifyError(parsed.error)}`);
}

function strict(s: z.ZodType): z.ZodType {
  if (s instanceof z.ZodArray) return z.array(strict(s.element as z.ZodType));
  if (s instanceof z.ZodObject) {
    const shape = Object.fromEntries(
      Object.entries(s.shape as Record<string, z.ZodType>).map(([k, v]) => [k, strict(v)]),
    );
    return z.strictObject(shape);
  }
  if (s instanceof z.ZodOptional) return strict(s.unwrap() as z.ZodType).optional();
  if (s instanceof z.ZodNullable) return strict(s.unwrap() as z.ZodType).nullable();
  if (s instanceof z.ZodDiscriminatedUnion || s instanceof z.ZodUnion)
    return z.union((s.options as z.ZodType[]).map(strict) as [z.ZodType, z.ZodType]);
  return s;
}
