/**
 * `archon-ws check-lb`'s check of the other way in: the HTTP streaming fallback
 * (GET /api/v1/sse), which clients use when their WebSocket upgrade does not get through
 * (RB-003 Step 4). Asked without a token, a gateway answers 401 with its JSON error body, so
 * that answer through the load balancer proves the path reaches a gateway; anything else
 * (a 404 page, an SPA's index.html, nothing) means the load balancer does not route it. It is
 * judged on its own: the fallback matters most when the WebSocket checks fail. The probe is
 * one plain GET; everything else here is pure.
 */
import { readErrorAnswer, SSE_PATH } from '../protocol/index.js';
import { networkReason } from './api.js';
import { round } from './format.js';
import type { CheckStatus, LbCheck, LbReport } from './lb-checks.js';
import { testEndpointUrl } from './lb-probe.js';

/** What GET /api/v1/sse without a token got back. */
export interface FallbackProbe {
  url: string;
  /** HTTP status; null when nothing answered. */
  status: number | null;
  content_type: string | null;
  /** The start of the body (never read from an event stream, which does not end). */
  body: string | null;
  ms: number | null;
  /** Why nothing answered, when nothing did. */
  error: string | null;
}

/** The fallback through the load balancer, judged. */
export interface FallbackVerdict {
  url: string;
  /** pass: the gateway's stream route answered; fail: something else answered, or nothing;
   * not available: the gateway answered that it has no such route (a release before the
   * fallback), so there is nothing to check and it is not counted as a check. */
  status: Exclude<CheckStatus, 'not run'> | 'not available';
  figure: string;
  /** What it means and what to do; null when there is nothing to add. */
  explanation: string | null;
}

/** check-lb's report: the WebSocket checks and the fallback's, counted together. */
export interface CheckLbReport extends LbReport {
  /** The verdict of the WebSocket checks alone (what doctor judges). */
  websocket: LbReport['verdict'];
  fallback: FallbackVerdict;
}

export const FALLBACK_CHECK = `HTTP streaming fallback (GET ${SSE_PATH})`;

/** What the load balancer needs for the fallback (RB-003 Step 4). */
const ROUTE_IT = `Route it to the instances: the \`location ${SSE_PATH}\` block of deploy/nginx/archon-ws.conf (proxy_pass to the archon_ws upstream, proxy_buffering off, proxy_read_timeout 3600s), or on another load balancer a rule sending ${SSE_PATH} to the instances without response buffering.`;

/**
 * Codes the stream route answers before it reads a token (src/server/http/sse.ts): any of
 * them, in the gateway's JSON body, proves the path reaches a gateway that has the route.
 */
const BEFORE_TOKEN = new Set(['unauthorized', 'rate_limited', 'draining']);

/** The http(s) URL of GET /api/v1/sse beside a base URL or test endpoint URL, or null. */
export function fallbackUrl(raw: string): URL | null {
  const url = testEndpointUrl(raw);
  if (url === null) return null;
  url.protocol = url.protocol === 'wss:' ? 'https:' : 'http:';
  // A test endpoint under a prefix (https://lb/archon/api/v1/ws/test) keeps its prefix.
  const test = '/api/v1/ws/test';
  url.pathname = url.pathname.endsWith(test)
    ? `${url.pathname.slice(0, -test.length)}${SSE_PATH}`
    : SSE_PATH;
  url.search = '';
  url.hash = '';
  return url;
}

/** Reads at most `limit` characters of a body, then lets the rest go. */
async function bodyStart(res: Response, limit: number): Promise<string> {
  const body: ReadableStream<Uint8Array> | null = res.body;
  if (body === null) return '';
  const decoder = new TextDecoder();
  let text = '';
  try {
    // Leaving the loop early cancels the rest of the body.
    for await (const chunk of body) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length >= limit) break;
    }
  } catch {
    // Cut or timed out mid-body: what arrived is enough to judge.
  }
  return text.slice(0, limit);
}

/** GET /api/v1/sse without a token, as a client's EventSource would ask. Never throws. */
export async function probeFallback(url: string, timeoutMs: number): Promise<FallbackProbe> {
  const result: FallbackProbe = {
    url,
    status: null,
    content_type: null,
    body: null,
    ms: null,
    error: null,
  };
  const done = new AbortController();
  const started = performance.now();
  try {
    const res = await fetch(url, {
      headers: { accept: 'text/event-stream' },
      signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), done.signal]),
    });
    result.status = res.status;
    result.ms = round(performance.now() - started);
    result.content_type = res.headers.get('content-type');
    result.body = result.content_type?.startsWith('text/event-stream')
      ? ''
      : await bodyStart(res, 500);
  } catch (err) {
    result.error = networkReason(err, timeoutMs);
  } finally {
    done.abort();
  }
  return result;
}

const isHtml = (p: FallbackProbe) =>
  p.content_type?.startsWith('text/html') === true || /^\s*</.test(p.body ?? '');

/** Judges the answer: the gateway's own, from its stream route, or something else's. */
export function judgeFallback(p: FallbackProbe): FallbackVerdict {
  const base = { url: p.url };
  const origin = new URL(p.url).origin;
  if (p.status === null)
    return {
      ...base,
      status: 'fail',
      figure: `no answer: ${p.error ?? 'unknown'}`,
      explanation: `GET ${SSE_PATH} got no answer through ${origin} (${p.error ?? 'unknown'}). ${ROUTE_IT}`,
    };
  const error = p.body === null ? null : readErrorAnswer(p.body);
  if (error !== null && BEFORE_TOKEN.has(error.code))
    return {
      ...base,
      status: 'pass',
      figure:
        error.code === 'unauthorized'
          ? `${p.status} unauthorized from the gateway in ${p.ms ?? '?'} ms`
          : `${p.status} from the gateway: ${error.code} (${error.message}), so the path reaches it`,
      explanation: null,
    };
  if (error !== null && error.code === 'not_found') {
    const figure = `${p.status} from the gateway: not_found (${error.message})`;
    // The gateway names the path it got: this one, so it has no such route; another, so the
    // load balancer rewrote it on the way.
    if (error.message.endsWith(` ${new URL(p.url).pathname}`))
      return {
        ...base,
        status: 'not available',
        figure,
        explanation: `The gateway answered that it has no GET ${SSE_PATH}: a release before the HTTP streaming fallback. There is nothing to check, and clients whose WebSocket upgrade does not get through have nothing to fall back to until it is upgraded.`,
      };
    return {
      ...base,
      status: 'fail',
      figure: `${figure}: the path was rewritten on the way`,
      explanation: `The gateway answered, but for another path than ${new URL(p.url).pathname} (${error.message}): the load balancer rewrites it. Pass it on unchanged (proxy_pass http://archon_ws; with no URI part, as in deploy/nginx/archon-ws.conf).`,
    };
  }
  if (error !== null)
    return {
      ...base,
      status: 'fail',
      figure: `${p.status} from the gateway: ${error.code} (${error.message})`,
      explanation: `The gateway answered GET ${SSE_PATH} with ${error.code} where it answers 401 unauthorized to a request without a token: something in between changes the request (an Origin header or a query added?).`,
    };
  const body = p.body?.replace(/\s+/g, ' ').trim().slice(0, 60) ?? '';
  const what =
    p.status === 200 && p.content_type?.startsWith('text/event-stream') === true
      ? 'an event stream without a token, which the gateway never gives'
      : isHtml(p)
        ? 'an HTML page, not the gateway'
        : "not the gateway's answer";
  return {
    ...base,
    status: 'fail',
    figure: `${p.status}: ${what}${body ? ` [${body}]` : ''}`,
    explanation: `GET ${SSE_PATH} does not reach a gateway through ${origin} (HTTP ${p.status}, ${what}): the load balancer does not route the HTTP streaming fallback. ${ROUTE_IT}`,
  };
}

/**
 * The WebSocket checks and the fallback's as one report: the fallback is one more check
 * (not counted when the gateway has none), and what it means is read beside the WebSocket
 * verdict. Pure.
 */
export function withFallback(ws: LbReport, fallback: FallbackVerdict): CheckLbReport {
  const checks: LbCheck[] =
    fallback.status === 'not available'
      ? ws.checks
      : [...ws.checks, { name: FALLBACK_CHECK, status: fallback.status, figure: fallback.figure }];
  const ok = checks.every((c) => c.status === 'pass');
  const failed = checks.some((c) => c.status === 'fail');
  return {
    ...ws,
    checks,
    ok,
    verdict: ok ? 'pass' : failed ? 'fail' : 'incomplete',
    websocket: ws.verdict,
    fallback: { ...fallback, explanation: reading(ws.verdict, fallback) },
  };
}

/** What the fallback's outcome means beside the WebSocket verdict. */
function reading(websocket: LbReport['verdict'], f: FallbackVerdict): string | null {
  if (f.status === 'pass')
    return websocket === 'fail'
      ? `The WebSocket checks fail, but GET ${SSE_PATH} reaches the gateway: clients on the archon-ws SDK stay live over the HTTP streaming fallback while the upgrade is fixed (RB-003 Step 4), and move back to WebSocket by themselves once it gets through.`
      : null;
  if (f.status === 'fail' && websocket === 'fail')
    return `${f.explanation ?? ''} Neither the WebSocket upgrade nor the HTTP streaming fallback gets through: clients cannot connect at all.`.trim();
  if (f.status === 'fail' && websocket === 'pass')
    return `${f.explanation ?? ''} WebSocket upgrades pass, so only clients whose own network stops the upgrade are affected: they have nothing to fall back to.`.trim();
  return f.explanation;
}
