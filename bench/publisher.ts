/**
 * The benchmarks' publisher: POST /api/v1/publish at a steady rate, each request scheduled on
 * an absolute time, with a data object of about `size` bytes of JSON carrying `t0` (the wall
 * clock just before the request is sent) and a publish counter `n`. bench/README.md, "What
 * one server run does", step 3.
 */
import { Buffer } from 'node:buffer';
import http from 'node:http';
import type { URL } from 'node:url';
import { now, quantile, sleep, type Counts } from './measure.ts';

export interface PublishLoad {
  readonly rate: number;
  readonly size: number;
  readonly channel: string;
  readonly publishToken?: string;
}

export interface Published {
  sent: number;
  acked: number;
  /** The seqs the server acknowledged, ascending. */
  ackedSeqs: number[];
  /** Publishes sent in the measured window. */
  inWindow: number;
  /** Publishes sent more than one interval behind schedule. */
  late: number;
  errors: Counts;
  maxInFlight: number;
  httpP50: number | null;
  httpP99: number | null;
  httpMax: number | null;
}

/** The data of publish n: {t0, n, pad} with ~size bytes of JSON. */
function makePadder(size: number): (n: number) => { t0: number; n: number; pad: string } {
  const sample = JSON.stringify({ t0: 1_700_000_000_000.123, n: 1000, pad: '' }).length;
  const pad = 'x'.repeat(Math.max(0, size - sample));
  return (n) => ({ t0: now(), n, pad });
}

/**
 * Publishes from tStart until stopAt (up to 8 requests in flight); resolves once every POST
 * has ended. Publishes sent in [A, B) count as `inWindow`; `stop.stopped` ends it early.
 */
export async function publisher(
  url: string | URL,
  load: PublishLoad,
  tStart: number,
  stopAt: number,
  A: number,
  B: number,
  stop: { stopped: boolean },
): Promise<Published> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  const data = makePadder(load.size);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (load.publishToken) headers.authorization = `Bearer ${load.publishToken}`;
  const interval = 1000 / load.rate;
  const ackedSeqs: number[] = [];
  const httpMs: number[] = [];
  const errors: Counts = {};
  let inFlight = 0;
  let maxInFlight = 0;
  let sent = 0;
  let inWindow = 0;
  let late = 0;
  const pending: Promise<void>[] = [];

  const post = (n: number): Promise<void> =>
    new Promise((resolve) => {
      const d = data(n);
      const body = JSON.stringify({ channel: load.channel, data: d });
      if (d.t0 >= A && d.t0 < B) inWindow++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      let settled = false;
      const ok = (): void => {
        if (settled) return;
        settled = true;
        inFlight--;
        resolve();
      };
      const fail = (why: string): void => {
        if (settled) return;
        errors[why] = (errors[why] ?? 0) + 1;
        ok();
      };
      const req = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            httpMs.push(now() - d.t0);
            if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
            try {
              const answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
                results?: { seq?: unknown }[];
              };
              const seq = answer.results?.[0]?.seq;
              if (typeof seq !== 'number') return fail('no seq in answer');
              ackedSeqs.push(seq);
            } catch {
              return fail('bad JSON answer');
            }
            ok();
          });
          res.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
        },
      );
      req.setTimeout(10_000, () => req.destroy(new Error('publish timeout')));
      req.on('error', (e: NodeJS.ErrnoException) => fail(e.code ?? e.message));
      req.end(body);
    });

  for (let n = 0; ; n++) {
    const due = tStart + n * interval;
    if (due >= stopAt) break;
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    else if (wait < -interval) late++;
    if (stop.stopped) break;
    sent++;
    pending.push(post(n));
  }
  await Promise.all(pending);
  agent.destroy();
  httpMs.sort((a, b) => a - b);
  ackedSeqs.sort((a, b) => a - b);
  return {
    sent,
    acked: ackedSeqs.length,
    ackedSeqs,
    inWindow,
    late,
    errors,
    maxInFlight,
    httpP50: quantile(httpMs, 0.5),
    httpP99: quantile(httpMs, 0.99),
    httpMax: httpMs.at(-1) ?? null,
  };
}
