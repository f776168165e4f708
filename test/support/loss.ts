/**
 * A loss checker for failure tests. A Publisher posts events at a steady rate and records
 * every ACCEPTED (channel, epoch, seq) from the publish answers, retrying failed posts
 * (502/503/504, connection errors, timeouts) with the same `id` so a retry is idempotent.
 * checkLoss() compares that with what each ResumingClient received: per subscriber and
 * channel, lost (accepted, never received and not inside a gap the client was told of),
 * duplicated and out-of-order events, and the explicit gaps.
 */
import { PUBLISH_TOKEN } from './gateway.js';
import type { ResumingClient } from './resuming-client.js';

export interface Accepted {
  readonly channel: string;
  readonly epoch: string;
  readonly seq: number;
  readonly id: string;
  /** When the answer arrived (ms). */
  readonly at: number;
}

export interface PublisherOptions {
  /** http:// base (nginx). */
  readonly url: string;
  readonly channels: readonly string[];
  /** Batches per second; each batch holds one event per channel. */
  readonly rate: number;
  /** Bytes of padding in each event's data (to fill socket buffers faster). */
  readonly padBytes?: number;
  /** Prefix of the idempotency ids (unique per publisher). */
  readonly idPrefix: string;
  readonly token?: string;
  /** Posts in flight at most (default 32). */
  readonly maxInFlight?: number;
  /** Give up on one post after this long (default 30 s): a failure of the test. */
  readonly deadlineMs?: number;
}

const RETRYABLE = new Set([502, 503, 504]);

export class Publisher {
  readonly accepted: Accepted[] = [];
  /** Retries by reason ("503", "502", "fetch failed", …). */
  readonly retries = new Map<string, number>();
  /** Posts that never got an answer or were refused for good. */
  readonly failures: string[] = [];
  batches = 0;
  duplicates = 0;
  private timer: NodeJS.Timeout | null = null;
  private inFlight = new Set<Promise<void>>();
  private startedAt = 0;
  private readonly pad: string;

  constructor(private readonly options: PublisherOptions) {
    this.pad = 'x'.repeat(options.padBytes ?? 0);
  }

  /** Starts publishing at the configured rate (catching up when the loop was busy). */
  start(): void {
    this.startedAt = Date.now();
    let due = 0;
    const tick = () => {
      const target = Math.floor(((Date.now() - this.startedAt) / 1000) * this.options.rate);
      due = target - this.batches;
      while (due > 0 && this.inFlight.size < (this.options.maxInFlight ?? 32)) {
        this.post();
        due--;
      }
    };
    this.timer = setInterval(tick, Math.max(2, Math.floor(1000 / this.options.rate / 2)));
  }

  /** Stops publishing and waits until every post is answered (accepted or failed). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Publishes `batches` batches now, as fast as allowed, and waits for them. */
  async burst(batches: number): Promise<void> {
    for (let i = 0; i < batches; i++) {
      while (this.inFlight.size >= (this.options.maxInFlight ?? 32))
        await Promise.race([...this.inFlight]);
      this.post();
    }
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Events accepted per channel so far. */
  count(channel: string): number {
    return this.accepted.filter((a) => a.channel === channel).length;
  }

  private post(): void {
    const n = ++this.batches;
    const events = this.options.channels.map((channel) => ({
      channel,
      id: `${this.options.idPrefix}-${n}-${channel}`,
      data: { n, ...(this.pad && { pad: this.pad }) },
    }));
    const body = JSON.stringify({ events });
    const task = this.send(body, events.length).finally(() => this.inFlight.delete(task));
    this.inFlight.add(task);
  }

  private async send(body: string, expected: number): Promise<void> {
    const deadline = Date.now() + (this.options.deadlineMs ?? 30_000);
    for (;;) {
      let reason: string;
      try {
        const res = await fetch(`${this.options.url}/api/v1/publish`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            authorization: `Bearer ${this.options.token ?? PUBLISH_TOKEN}`,
          },
          body,
          signal: AbortSignal.timeout(5000),
        });
        const text = await res.text();
        if (res.status === 200) {
          const answer = JSON.parse(text) as {
            results: { channel: string; seq: number; epoch: string; duplicate?: boolean }[];
          };
          if (answer.results.length !== expected)
            throw new Error(`expected ${expected} results, got ${text}`);
          const at = Date.now();
          const ids = (JSON.parse(body) as { events: { id: string }[] }).events.map((e) => e.id);
          answer.results.forEach((r, i) => {
            if (r.duplicate) this.duplicates++;
            this.accepted.push({
              channel: r.channel,
              epoch: r.epoch,
              seq: r.seq,
              id: ids[i] ?? '',
              at,
            });
          });
          return;
        }
        if (!RETRYABLE.has(res.status)) {
          this.failures.push(`HTTP ${res.status}: ${text}`);
          return;
        }
        reason = String(res.status);
      } catch (err) {
        reason =
          err instanceof Error
            ? err.cause instanceof Error
              ? err.cause.message
              : err.message
            : String(err);
        if (err instanceof Error && err.message.startsWith('expected ')) {
          this.failures.push(err.message);
          return;
        }
      }
      this.retries.set(reason, (this.retries.get(reason) ?? 0) + 1);
      if (Date.now() > deadline) {
        this.failures.push(`gave up after retries (last: ${reason})`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 150));
    }
  }
}

export interface ChannelTally {
  /** Accepted events this subscriber owed. */
  expected: number;
  received: number;
  lost: number;
  dup: number;
  ooo: number;
  /** Accepted events not received but inside a gap the client was told of. */
  inGaps: number;
  gaps: number;
  /** Received events nobody saw accepted (a publish stored but never answered). */
  unknown: number;
  /** Live events that skipped ahead of the resume point. */
  skips: number;
  anomalies: number;
}

export interface LossReport {
  readonly byChannel: Record<string, ChannelTally>;
  readonly total: ChannelTally;
  /** One line per subscriber and channel with anything wrong, for failure messages. */
  readonly problems: string[];
}

function emptyTally(): ChannelTally {
  return {
    expected: 0,
    received: 0,
    lost: 0,
    dup: 0,
    ooo: 0,
    inGaps: 0,
    gaps: 0,
    unknown: 0,
    skips: 0,
    anomalies: 0,
  };
}

/**
 * Tallies, for every client and channel: which accepted events it owed (those after its
 * first subscription, in any later epoch), which it received, which fall in a gap it was
 * told of, and the duplicates and out-of-order events it counted.
 */
export function checkLoss(
  clients: readonly ResumingClient[],
  accepted: readonly Accepted[],
  channels: readonly string[],
  options: { gapsExcuse?: (channel: string, epoch: string) => boolean } = {},
): LossReport {
  const byChannel: Record<string, ChannelTally> = {};
  const total = emptyTally();
  const problems: string[] = [];
  const acceptedKeys = new Map<string, Set<string>>();
  for (const a of accepted) {
    let set = acceptedKeys.get(a.channel);
    if (!set) acceptedKeys.set(a.channel, (set = new Set()));
    set.add(`${a.epoch}:${a.seq}`);
  }
  for (const channel of channels) {
    const tally = (byChannel[channel] = emptyTally());
    const owed = accepted.filter((a) => a.channel === channel);
    for (const client of clients) {
      const log = client.log(channel);
      const t = emptyTally();
      const start = log.start;
      if (!start) {
        problems.push(`${client.name} ${channel}: never subscribed`);
        continue;
      }
      const lostSample: string[] = [];
      for (const a of owed) {
        if (a.epoch === start.epoch && a.seq <= start.seq) continue;
        t.expected++;
        if (log.has(a.epoch, a.seq)) continue;
        const gap = log.gaps.find(
          (g) => g.epoch === a.epoch && a.seq > g.afterSeq && a.seq <= g.untilSeq,
        );
        if (gap && (options.gapsExcuse?.(channel, a.epoch) ?? true)) t.inGaps++;
        else {
          t.lost++;
          if (lostSample.length < 8) lostSample.push(`${a.epoch}:${a.seq}`);
        }
      }
      const known = acceptedKeys.get(channel) ?? new Set<string>();
      for (const [epoch, seqs] of log.received) {
        for (const seq of seqs) {
          t.received++;
          if (!known.has(`${epoch}:${seq}`)) t.unknown++;
        }
      }
      t.dup = log.dup;
      t.ooo = log.ooo;
      t.gaps = log.gaps.length;
      t.skips = log.skips;
      t.anomalies = log.anomalies.length;
      for (const key of Object.keys(t) as (keyof ChannelTally)[]) {
        tally[key] += t[key];
        total[key] += t[key];
      }
      if (t.lost || t.dup || t.ooo || t.anomalies || t.gaps || t.unknown) {
        problems.push(
          `${client.name} ${channel}: lost=${t.lost} [${lostSample.join(' ')}] dup=${t.dup} ooo=${t.ooo} ` +
            `gaps=${JSON.stringify(log.gaps)} unknown=${t.unknown} anomalies=${JSON.stringify(log.anomalies.slice(0, 3))} ` +
            `closes=${client.closes.join(',')} resyncs=${client.resyncs} answers=${JSON.stringify(log.answers.slice(-4))}`,
        );
      }
    }
  }
  return { byChannel, total, problems };
}

/** One line for the test output: the totals, and per channel. */
export function formatReport(scenario: string, report: LossReport): string {
  const part = (t: ChannelTally) =>
    `expected=${t.expected} received=${t.received} lost=${t.lost} dup=${t.dup} ooo=${t.ooo} gaps=${t.gaps} inGaps=${t.inGaps} unknown=${t.unknown}`;
  return [
    `${scenario}: ${part(report.total)}`,
    ...Object.entries(report.byChannel).map(([channel, t]) => `  ${channel}: ${part(t)}`),
  ].join('\n');
}

/**
 * Waits until every client is subscribed, has no history read in flight and owes nothing
 * (or the timeout passes), then returns the report.
 */
export async function settle(
  clients: readonly ResumingClient[],
  publisher: Publisher,
  channels: readonly string[],
  timeoutMs = 15_000,
  options: Parameters<typeof checkLoss>[3] & {
    /** Stop waiting early when this is true (a client that can never settle). */
    hopeless?: () => boolean;
  } = {},
): Promise<LossReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const settled = clients.every((c) => c.ready() && c.idle());
    const report = checkLoss(clients, publisher.accepted, channels, options);
    if ((settled && report.total.lost === 0) || Date.now() > deadline) return report;
    if (options.hopeless?.() === true) return report;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
