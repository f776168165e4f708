/** The HTTP client of the operator commands: target and token from flags or environment,
 * every failure mapped to one exit code and a one-line message (no stack trace). */

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
    );
  if (res.status === 404)
    throw new CliError(
      `admin API not available at ${target.url} (404${errorText(parsed)}): is ARCHON_ADMIN_TOKENS set on the gateway?`,
      Exit.auth,
    );
  if (!res.ok)
    throw new CliError(
      `${method} ${path} failed with HTTP ${res.status}${errorText(parsed)}`,
      res.status === 400 ? Exit.usage : Exit.badAnswer,
    );
  if (!isJson)
    throw new CliError(
      `bad answer from ${url}: not JSON (${JSON.stringify(text.slice(0, 60))})`,
      Exit.badAnswer,
    );
  return { body: parsed, date: res.headers.get('date'), received_at: receivedAt };
}

function errorText(body: unknown): string {
  if (isObject(body) && isObject(body.error) && typeof body.error.message === 'string')
    return `: ${body.error.message}`;
  return '';
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

/** A finite number from an answer, or null. */
export function numberOrNull(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Checks that an answer is an object with these numeric fields; exit 5 otherwise. */
export function expectFields<K extends string>(
  what: string,
  value: unknown,
  numbers: readonly K[],
): Record<K, number> & Record<string, unknown> {
  if (!isObject(value))
    throw new CliError(`bad answer from ${what}: not an object`, Exit.badAnswer);
  for (const key of numbers) {
    if (typeof value[key] !== 'number' || !Number.isFinite(value[key]))
      throw new CliError(
        `bad answer from ${what}: field ${key} missing or not a number`,
        Exit.badAnswer,
      );
  }
  return value as Record<K, number> & Record<string, unknown>;
}
