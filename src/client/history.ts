/** GET /api/v1/history: the missed events of a resume the server could not replay. */
import { readErrorAnswer, type HistoryAnswer, type Since } from '../protocol/index.js';
import type { TokenCache } from './token.js';

const WS_PATH = '/api/v1/ws';

/**
 * The HTTP API's base URL from the WebSocket URL: ws→http, wss→https, and a path ending in
 * /api/v1/ws loses that end (a prefix added by a proxy stays).
 */
export function httpBaseFromWs(wsUrl: string): string {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  const path = url.pathname.replace(/\/+$/, '');
  url.pathname = path.endsWith(WS_PATH) ? path.slice(0, -WS_PATH.length) : '';
  url.search = '';
  url.hash = '';
  return url.toString().replace(/\/+$/, '');
}

export function historyUrl(base: string, channel: string, since: Since): string {
  const query = new URLSearchParams({
    channel,
    since_seq: String(since.seq),
    epoch: since.epoch,
  });
  return `${base.replace(/\/+$/, '')}/api/v1/history?${query.toString()}`;
}

/** A non-200 answer; `code` is the body's error.code when it has one. */
export class HistoryError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'HistoryError';
  }
}

export async function fetchHistory(
  base: string,
  channel: string,
  since: Since,
  token: string,
  signal: AbortSignal,
): Promise<HistoryAnswer> {
  const res = await fetch(historyUrl(base, channel, since), {
    headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
    signal,
  });
  if (res.status !== 200) {
    const error = readErrorAnswer(await res.text().catch(() => ''));
    throw new HistoryError(
      res.status,
      error?.code ?? `http_${res.status}`,
      error?.message || `HTTP ${res.status}`,
    );
  }
  return (await res.json()) as HistoryAnswer;
}

const ATTEMPTS = 3;

/**
 * fetchHistory with retries: a 401 gets a fresh token, 5xx, 429 and network errors a short
 * wait. Resolves null when aborted; rejects with the last failure after the last attempt.
 */
export async function readHistory(
  base: string,
  channel: string,
  since: Since,
  token: TokenCache,
  signal: AbortSignal,
): Promise<HistoryAnswer | null> {
  let failure: unknown = null;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    if (attempt > 0) await sleep(250 * 2 ** attempt * (0.5 + Math.random()), signal);
    if (signal.aborted) return null;
    try {
      return await fetchHistory(base, channel, since, await token.get(), signal);
    } catch (err) {
      if (signal.aborted) return null;
      failure = err;
      if (err instanceof HistoryError) {
        if (err.status === 401) token.refused();
        else if (err.status < 500 && err.status !== 429) break; // a retry cannot help
      }
    }
  }
  throw failure;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
