/**
 * The one configuration schema (docs/configuration.md). Every variable is read from the
 * environment (or the matching `archon-ws serve` flag), validated once at start and frozen. A
 * bad value stops the process with a message naming the variable, the value and what is
 * allowed.
 */
import { createPublicKey } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';
import { z } from 'zod';
import { parseRedisUrl, redactRedisUrl, REDIS_URL_FORMS } from './backplane/redis-url.js';
import { proxyEntryProblem } from './trusted-proxies.js';

/** A duration set in seconds (the variables' unit), held in milliseconds inside the code. */
const seconds = (max: number) =>
  z.coerce
    .number()
    .positive()
    .max(max)
    .transform((s) => s * 1000)
    .describe(`a number of seconds > 0 and ≤ ${max}`);
/** Seconds in the environment, milliseconds in the config; 0 means never. */
const secondsOrNever = (max: number) =>
  z.coerce
    .number()
    .min(0)
    .max(max)
    .transform((v) => Math.round(v * 1000))
    .describe(`a number of seconds from 0 (never) to ${max}`);
const count = (min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).describe(`an integer from ${min} to ${max}`);
const list = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((t) => t.trim())
      .filter((t) => t.length > 0),
  )
  .describe('a comma-separated list');
const optionalText = z.string().min(1).optional().describe('a non-empty string');
const url = z
  .string()
  .refine((s) => URL.canParse(s), 'not a URL')
  .optional()
  .describe('a URL');

/** Worker processes of one node (docs/cluster.md#workers-every-core-of-a-node): a count, or one per core. */
const workers = z
  .union([z.literal('auto').transform(() => availableParallelism()), count(1, 256)])
  .describe('an integer from 1 to 256, or auto (one per core: os.availableParallelism())');

/** Each field: environment variable → [config key, schema, default]. Units live in the schema. */
const FIELDS = {
  PORT: ['port', count(0, 65535), '8000'],
  HOST: ['host', z.string().min(1).describe('a host name or address to bind'), '0.0.0.0'],
  ARCHON_SERVER_ID: [
    'serverId',
    z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/)
      .optional()
      .describe('1-64 characters of A-Z a-z 0-9 _ . : -'),
    undefined,
  ],
  ARCHON_REDIS_URL: [
    'redisUrl',
    z
      .string()
      .refine((s) => !('problem' in parseRedisUrl(s)))
      .optional()
      .describe(REDIS_URL_FORMS),
    undefined,
  ],
  ARCHON_WORKERS: ['workers', workers, '1'],
  ARCHON_JWT_SECRET: [
    'jwtSecret',
    z.string().min(32).optional().describe('an HS256 secret of at least 32 characters'),
    undefined,
  ],
  ARCHON_JWT_PUBLIC_KEY: [
    'jwtPublicKey',
    z
      .string()
      .refine(isPublicKey, 'not a PEM public key')
      .optional()
      .describe('a PEM public key (RSA, EC or Ed25519) in SPKI form (-----BEGIN PUBLIC KEY-----)'),
    undefined,
  ],
  ARCHON_JWT_JWKS_URL: ['jwtJwksUrl', url, undefined],
  ARCHON_JWT_ISSUER: ['jwtIssuer', optionalText, undefined],
  ARCHON_JWT_AUDIENCE: ['jwtAudience', optionalText, undefined],
  ARCHON_ADMIN_TOKENS: ['adminTokens', list, ''],
  ARCHON_PUBLISH_TOKENS: ['publishTokens', list, ''],
  WEBSOCKET_ALLOWED_ORIGINS: ['allowedOrigins', list, ''],
  ARCHON_TRUSTED_PROXIES: [
    'trustedProxies',
    list
      .refine((entries) => entries.every((e) => proxyEntryProblem(e) === null))
      .describe('a comma-separated list of IP addresses or CIDR ranges (10.0.0.0/8)'),
    '',
  ],
  WEBSOCKET_PING_INTERVAL: ['pingIntervalMs', seconds(3600), '30'],
  WEBSOCKET_PING_TIMEOUT: ['pingTimeoutMs', seconds(3600), '10'],
  WEBSOCKET_AUTH_TIMEOUT: ['authTimeoutMs', seconds(300), '5'],
  WEBSOCKET_MAX_CONNECTIONS: ['maxConnections', count(1, 1_000_000), '10000'],
  WEBSOCKET_MAX_CONNECTIONS_PER_USER: ['maxConnectionsPerUser', count(1, 1_000_000), '100'],
  WEBSOCKET_MAX_CONNECTIONS_PER_IP: ['maxConnectionsPerIp', count(1, 1_000_000), '1000'],
  WEBSOCKET_MAX_UNAUTHENTICATED: ['maxUnauthenticated', count(1, 1_000_000), '1000'],
  WEBSOCKET_MESSAGE_QUEUE_SIZE: ['queueSize', count(1, 1_000_000), '1000'],
  WEBSOCKET_MESSAGE_QUEUE_BYTES: ['queueBytes', count(1024, 1 << 30), String(8 << 20)],
  WEBSOCKET_BROADCAST_TIMEOUT: ['broadcastTimeoutMs', seconds(3600), '5'],
  WEBSOCKET_MAX_MESSAGE_SIZE: ['maxMessageSize', count(256, 16 << 20), '65536'],
  WEBSOCKET_MAX_MESSAGES_PER_SECOND: ['maxMessagesPerSecond', count(1, 100_000), '50'],
  WEBSOCKET_MAX_SUBSCRIPTIONS: ['maxSubscriptions', count(1, 100_000), '100'],
  WEBSOCKET_REPLAY_BYTES_PER_MINUTE: [
    'replayBytesPerMinute',
    count(1024, 1 << 30),
    String(16 << 20),
  ],
  WEBSOCKET_HISTORY_SIZE: ['historySize', count(1, 1_000_000), '1000'],
  WEBSOCKET_HISTORY_TTL: ['historyTtlMs', seconds(7 * 86400), '300'],
  WEBSOCKET_ALERT_HISTORY_SIZE: ['alertHistorySize', count(1, 1_000_000), '10000'],
  WEBSOCKET_ALERT_HISTORY_TTL: ['alertHistoryTtlMs', seconds(7 * 86400), '3600'],
  WEBSOCKET_STREAM_TTL: ['streamEventTtlMs', secondsOrNever(7 * 86400), '60'],
  WEBSOCKET_STATE_TTL: ['stateEventTtlMs', secondsOrNever(7 * 86400), '0'],
  WEBSOCKET_ALERT_TTL: ['alertEventTtlMs', secondsOrNever(7 * 86400), '0'],
  WEBSOCKET_SHUTDOWN_TIMEOUT: ['shutdownTimeoutMs', seconds(3600), '30'],
  LOG_LEVEL: [
    'logLevel',
    z
      .enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])
      .describe('one of trace, debug, info, warn, error, fatal, silent'),
    'info',
  ],
} as const;

type Fields = typeof FIELDS;
export type EnvName = keyof Fields;
export type Config = Readonly<{
  [E in EnvName as Fields[E][0]]: z.output<Fields[E][1]>;
}> & { readonly serverId: string };

export const ENV_NAMES = Object.keys(FIELDS) as EnvName[];

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** Values that are secrets: never echoed back in an error message. */
const SECRET_NAMES = new Set<EnvName>([
  'ARCHON_JWT_SECRET',
  'ARCHON_ADMIN_TOKENS',
  'ARCHON_PUBLISH_TOKENS',
]);

/** How a bad value is echoed in an error: secrets hidden, a Redis URL without its password
 * (the rest of it is what the operator has to see to fix it). */
function shown(name: EnvName, raw: string | undefined): string {
  if (SECRET_NAMES.has(name)) return '(hidden)';
  if (name === 'ARCHON_REDIS_URL' && raw !== undefined) return JSON.stringify(redactRedisUrl(raw));
  return JSON.stringify(raw);
}

/** Validates the environment; throws ConfigError naming every bad variable. */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const name of ENV_NAMES) {
    const [key, schema, fallback] = FIELDS[name];
    // An empty variable counts as unset (PORT= must not bind a random port).
    const raw = env[name] === '' ? undefined : env[name];
    const result = (schema as z.ZodType).safeParse(raw ?? fallback);
    if (result.success) {
      out[key] = result.data;
    } else {
      const detail = name === 'ARCHON_REDIS_URL' && raw !== undefined ? redisProblem(raw) : '';
      problems.push(
        `${name}=${shown(name, raw)} is not allowed${detail}: expected ${schema.description ?? 'a valid value'}`,
      );
    }
  }
  out.serverId ??= hostname();
  const auth = [out.jwtSecret, out.jwtPublicKey, out.jwtJwksUrl].filter((v) => v !== undefined);
  if (auth.length > 1) {
    problems.push(
      'ARCHON_JWT_SECRET, ARCHON_JWT_PUBLIC_KEY and ARCHON_JWT_JWKS_URL are exclusive: set one',
    );
  }
  if (typeof out.workers === 'number' && out.workers > 1) problems.push(...workersProblems(out));
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(out) as Config;
}

/** What N > 1 workers need (docs/cluster.md#workers-every-core-of-a-node). */
function workersProblems(out: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const n = String(out.workers);
  // The workers of a node share nothing in memory: channels, history and acknowledgements
  // reach the other workers only through Redis.
  if (out.redisUrl === undefined)
    problems.push(
      `ARCHON_WORKERS=${n} needs ARCHON_REDIS_URL: workers share channels, history and acknowledgements only through Redis (docs/cluster.md#workers-every-core-of-a-node)`,
    );
  const longest = `${String(out.serverId)}:w${n}`;
  if (longest.length > 64)
    problems.push(
      `ARCHON_SERVER_ID=${JSON.stringify(out.serverId)} is too long for ARCHON_WORKERS=${n}: the workers' ids (${longest}) must fit in 64 characters`,
    );
  return problems;
}

/** `archon-ws serve` flag for a variable: WEBSOCKET_PING_INTERVAL → --ping-interval. */
export function flagFor(name: EnvName): string {
  return `--${name
    .replace(/^(WEBSOCKET|ARCHON)_/, '')
    .toLowerCase()
    .replaceAll('_', '-')}`;
}

export function describeVariable(name: EnvName): { default: string | undefined; allowed: string } {
  const [, schema, fallback] = FIELDS[name];
  return { default: fallback, allowed: schema.description ?? '' };
}

/** Why a Redis URL was refused, e.g. ` ("x" is not host:port)`. */
function redisProblem(url: string): string {
  const parsed = parseRedisUrl(url);
  return 'problem' in parsed ? ` (${parsed.problem})` : '';
}

function isPublicKey(pem: string): boolean {
  try {
    createPublicKey(pem);
    return pem.includes('-----BEGIN PUBLIC KEY-----');
  } catch {
    return false;
  }
}
