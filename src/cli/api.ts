/** The HTTP client of the operator commands: target and token from flags or environment,
 * answers read through their schemas (src/protocol/admin.ts), every failure mapped to one
 * exit code and a one-line message (no stack trace). */
import type { z } from 'zod';
import { ADMIN_READERS, type AdminEndpoint } from '../protocol/admin.js';
import { readErrorAnswer } from '../protocol/index.js';

/** Exit codes of the operator commands. */
export const Exit = {
  ok: 0,
  /** verify: a success criterion fails; check-lb: a load balancer check fails. */
  checkFailed: 1,
  usage: 2,
  unreachable: 3,
  auth: 4,
  badAnswer: 5,
  /** doctor: the evidence points to a fault (a runbook fix or another finding). */
  faultFound: 6,
  /** check-lb, doctor: nothing failed, but a check could not run (the test endpoint busy or
   * full, an idle hold the gateway did not grant): the answer is incomplete. */
  incomplete: 7,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    /** The HTTP status of the gateway's answer, when it answered with an error. */
    readonly httpStatus: number | null = null,
  ) {
    super(message);
  }
}

export interface TargetOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

export interface Target {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:8000 */
  readonly url: string;
  readonly token: string;
  /** How long one admin request may take (a command's --timeout); DEFAULT_TIMEOUT_MS if unset. */
  readonly timeoutMs?: number;
}

/** The gateway's base URL from --url or ARCHON_URL; exit 2 when absent or not http(s). */
export function resolveUrl(options: TargetOptions): string {
  const raw = options.url ?? process.env.ARCHON_URL;
  if (raw === undefined || raw.trim() === '')
    throw new CliError('no gateway URL: set ARCHON_URL or pass --url', Exit.usage);
  let url: URL;
  try {
    url = new URL(raw.trim());
  } catch {
    throw new CliError(
      `invalid URL ${JSON.stringify(raw)}: expected http(s)://host:port`,
      Exit.usage,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new CliError(
      `invalid URL ${JSON.stringify(raw)}: expected http:// or https://`,
      Exit.usage,
    );
  return url.toString().replace(/\/+$/, '');
}

export function resolveTarget(options: TargetOptions): Target {
  const url = resolveUrl(options);
  const token = options.token ?? process.env.ADMIN_TOKEN;
  if (token === undefined || token.trim() === '')
    throw new CliError('no admin token: set ADMIN_TOKEN or pass --token', Exit.usage);
  return { url, token: token.trim() };
}

/** How long an admin request may take when the command has no --timeout. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** An admin API answer with when it was given: the gateway's Date header and the local
 * time it arrived (doctor measures silence against the gateway's clock, not its own). */
export interface AdminAnswer {
  body: unknown;
  /** The HTTP Date header of the answer, if any. */
  date: string | null;
  /** Local time (ms since epoch) the answer arrived. */
  received_at: number;
}

/** Calls the admin API; resolves with the parsed JSON answer. */
export async function adminRequest(
  target: Target,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<unknown> {
  return (await adminAnswer(target, method, path, body)).body;
}

/** adminRequest with the time of the answer. */
export async function adminAnswer(
  target: Target,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<AdminAnswer> {
  const url = `${target.url}/api/v1/admin${path}`;
  const timeoutMs = target.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${target.token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal,
    });
    text = await res.text();
  } catch (err) {
    throw new CliError(
      `cannot reach ${target.url}: ${networkReason(err, timeoutMs)}`,
      Exit.unreachable,
    );
  }
  const receivedAt = Date.now();
  let parsed: unknown;
  let isJson = true;
  try {
    parsed = JSON.parse(text);
  } catch {
    isJson = false;
  }
  if (res.status === 401)
    throw new CliError(
      `admin token refused by ${target.url} (401${errorText(parsed)}): check ADMIN_TOKEN`,
      Exit.auth,
      401,
    );
  if (res.status === 404)
    throw new CliError(
      `admin API not available at ${target.url} (404${errorText(parsed)}): is ARCHON_ADMIN_TOKENS set on the gateway?`,
      Exit.auth,
      404,
    );
  if (!res.ok)
    throw new CliError(
      `${method} ${path} failed with HTTP ${res.status}${errorText(parsed)}`,
      res.status === 400 ? Exit.usage : Exit.badAnswer,
      res.status,
    );
  if (!isJson)
    throw new CliError(
      `bad answer from ${url}: not JSON (${JSON.stringify(text.slice(0, 60))})`,
      Exit.badAnswer,
    );
  return { body: parsed, date: res.headers.get('date'), received_at: receivedAt };
}

function errorText(body: unknown): string {
  const error = readErrorAnswer(body);
  return error === null ? '' : `: ${error.message}`;
}

/** Why a request got no answer, in a few words (ECONNREFUSED, a DNS failure, a timeout). */
export function networkReason(err: unknown, timeoutMs = DEFAULT_TIMEOUT_MS): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return `no answer within ${seconds(timeoutMs)}`;
    const cause = (err as { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      if (cause.message !== '') return cause.message;
      return typeof code === 'string' ? code : err.message;
    }
    return err.message;
  }
  return String(err);
}

/** A duration for a message: `250 ms`, `10 s`, `1.5 s`. */
export function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Math.round(ms / 100) / 10} s`;
}

/** An admin endpoint's answer as its reader schema gives it. */
export type AdminRead<E extends AdminEndpoint> = z.infer<(typeof ADMIN_READERS)[E]>;

/**
 * An answer read through its schema: exit 5 naming the first field that does not fit, so a
 * wrong target (another service, a proxy's page) is told apart from a gateway's answer.
 */
export function parseAnswer<S extends z.ZodType>(
  what: string,
  schema: S,
  body: unknown,
): z.infer<S> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
  throw new CliError(
    `bad answer from ${what}: ${where}${issue?.message ?? 'does not fit its schema'}`,
    Exit.badAnswer,
  );
}

/** Calls an admin endpoint and reads its answer through ADMIN_READERS. */
export async function admin<E extends AdminEndpoint>(
  target: Target,
  method: 'GET' | 'POST',
  endpoint: E,
  request: { query?: string; body?: unknown } = {},
): Promise<AdminRead<E>> {
  const body = await adminRequest(
    target,
    method,
    `${endpoint}${request.query ?? ''}`,
    request.body,
  );
  return parseAnswer(endpoint.slice(1), ADMIN_READERS[endpoint], body) as AdminRead<E>;
}
