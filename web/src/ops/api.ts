/** The admin HTTP API (docs/http-api.md), as the console calls it: same origin, bearer token. */
import { ADMIN_ANSWERS } from '../../../src/client/admin.js';
import { readErrorAnswer } from '../../../src/client/index.js';
import type {
  AdminEndpoint,
  AlertsAnswer,
  BroadcastAnswer,
  CleanupAnswer,
  ConnectionEntry,
  FlushAnswer,
  StatsAnswer,
  StatusAnswer,
} from '../../../src/client/index.js';

/** The answer of an admin endpoint, as its schema (src/protocol) parses it. */
type Answer<E extends AdminEndpoint> = ReturnType<(typeof ADMIN_ANSWERS)[E]['parse']>;

/** A request failed; `refused` when the token was not accepted (the page asks again);
 * `status` when the gateway answered with an HTTP error. */
export class AdminError extends Error {
  constructor(
    message: string,
    readonly refused: boolean,
    readonly status: number | null = null,
  ) {
    super(message);
  }
}

/** The risk alerts waiting, as far as they could be read: a gateway older than acknowledged
 * alerts has no such endpoint (404), and a failed read must not hide the other figures. */
export type WaitingAlerts =
  | { readonly kind: 'read'; readonly answer: AlertsAnswer }
  | { readonly kind: 'not-available' }
  | { readonly kind: 'failed'; readonly message: string };

const BASE = '/api/v1/admin';
/** Reads give up early: the next poll asks again. */
const READ_TIMEOUT_MS = 8000;
/** Actions get longer (a cluster-wide flush waits for every instance), and a timeout says the
 * outcome is unknown rather than that it failed. */
const ACTION_TIMEOUT_MS = 30_000;

export class AdminClient {
  constructor(private readonly token: string) {}

  status(): Promise<StatusAnswer> {
    return this.call('GET', '/websocket/status');
  }

  connections(): Promise<ConnectionEntry[]> {
    return this.call('GET', '/websocket/connections');
  }

  stats(minutes: number): Promise<StatsAnswer> {
    return this.call('GET', '/websocket/stats', `?minutes=${minutes}`);
  }

  /** GET /alerts?state=unacked (docs/http-api.md#get-apiv1adminalerts). A refused token
   * still rejects, like every read. */
  async waitingAlerts(): Promise<WaitingAlerts> {
    try {
      return { kind: 'read', answer: await this.call('GET', '/alerts', '?state=unacked') };
    } catch (err) {
      if (!(err instanceof AdminError) || err.refused) throw err;
      if (err.status === 404) return { kind: 'not-available' };
      return { kind: 'failed', message: err.message };
    }
  }

  cleanup(): Promise<CleanupAnswer> {
    return this.call('POST', '/websocket/cleanup');
  }

  flush(): Promise<FlushAnswer> {
    return this.call('POST', '/websocket/queue/flush');
  }

  broadcast(message: string): Promise<BroadcastAnswer> {
    return this.call('POST', '/broadcast', '', { type: 'system', message });
  }

  private async call<E extends AdminEndpoint>(
    method: 'GET' | 'POST',
    endpoint: E,
    query = '',
    body?: unknown,
  ): Promise<Answer<E>> {
    const path = `${endpoint}${query}`;
    let res: Response;
    try {
      res = await fetch(`${BASE}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${this.token}`,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? null : JSON.stringify(body),
        signal: AbortSignal.timeout(method === 'GET' ? READ_TIMEOUT_MS : ACTION_TIMEOUT_MS),
        cache: 'no-store',
      });
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      if (timedOut && method === 'POST')
        throw new AdminError(
          `no answer within ${ACTION_TIMEOUT_MS / 1000} s (${path}): it may have run; check the status before repeating it`,
          false,
        );
      throw new AdminError(
        `gateway ${timedOut ? 'timed out' : 'unreachable'} (${method} ${path})`,
        false,
      );
    }
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // reported below
    }
    if (!res.ok) {
      const message = readErrorAnswer(json)?.message || text.slice(0, 200);
      if (res.status === 404 && path.startsWith('/websocket/status'))
        throw new AdminError('the admin API is off on this gateway (no ARCHON_ADMIN_TOKENS)', true);
      throw new AdminError(
        `${res.status}: ${message}`,
        res.status === 401 || res.status === 403,
        res.status,
      );
    }
    if (json === null) throw new AdminError(`not JSON from ${path}: ${text.slice(0, 80)}`, false);
    const parsed = ADMIN_ANSWERS[endpoint].safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new AdminError(
        `unexpected answer from ${endpoint}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`,
        false,
      );
    }
    return parsed.data as Answer<E>;
  }
}
