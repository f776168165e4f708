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

const TIMEOUT_MS = 10_000;

/** Calls the admin API; resolves with the parsed JSON answer. */
export async function adminRequest(
  target: Target,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<unknown> {
  const url = `${target.url}/api/v1/admin${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: {
        authorization: `Bearer ${target.token}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw new CliError(`cannot reach ${target.url}: ${networkReason(err)}`, Exit.unreachable);
  }
  const text = await res.text().catch(() => '');
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
  return parsed;
}

function errorText(body: unknown): string {
  if (isObject(body) && isObject(body.error) && typeof body.error.message === 'string')
    return `: ${body.error.message}`;
  return '';
}

/** Why a request got no answer, in a few words (ECONNREFUSED, a DNS failure, a timeout). */
export function networkReason(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS / 1000} s`;
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
