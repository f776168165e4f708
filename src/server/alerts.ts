/**
 * What operators see of risk alerts (docs/http-api.md#get-apiv1adminalerts, docs/metrics.md):
 * every alert the backplane holds, acknowledged or not, with its deliveries. The backplane is
 * shared, so any instance answers for the whole cluster.
 */
import type { AlertEntry, AlertState, AlertsAnswer } from '../protocol/index.js';
import type { Backplane, HeldAlert } from './backplane/backplane.js';

/** The metrics read the listing at most this often (each read walks every risk channel). */
const SUMMARY_MAX_AGE_MS = 5000;

export interface AlertSummary {
  readonly unacked: number;
  /** 0 when none waits. */
  readonly oldestSeconds: number;
}

export class AlertListing {
  private last: AlertSummary = { unacked: 0, oldestSeconds: 0 };
  private readAt = -Infinity;
  private reading: Promise<void> | null = null;

  constructor(
    private readonly backplane: Pick<Backplane, 'alerts'>,
    private readonly now: () => number = Date.now,
  ) {}

  async list(state: AlertState): Promise<AlertsAnswer> {
    const now = this.now();
    const held = (await this.backplane.alerts()).sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    const entries = held.map((alert) => entry(alert, now));
    const waiting = entries.filter((e) => e.state === 'unacked');
    return {
      state,
      unacked: waiting.length,
      oldest_unacked_seconds: waiting[0]?.age_seconds ?? null,
      alerts: state === 'all' ? entries : entries.filter((e) => e.state === state),
    };
  }

  /**
   * For the gauges: the last completed read, never waited on by a scrape; a new read starts
   * when that one is older than SUMMARY_MAX_AGE_MS, one at a time. A failed read keeps the last
   * figures (archon_websocket_backplane_up says the backplane is away). The first scrape waits
   * for the first read, so a fresh instance does not report 0 for a waiting alert.
   */
  async summary(): Promise<AlertSummary> {
    if (this.reading === null && this.now() - this.readAt >= SUMMARY_MAX_AGE_MS) {
      this.reading = this.list('unacked')
        .then(
          (answer) => {
            this.last = {
              unacked: answer.unacked,
              oldestSeconds: answer.oldest_unacked_seconds ?? 0,
            };
          },
          () => undefined,
        )
        .finally(() => {
          this.readAt = this.now();
          this.reading = null;
        });
      if (this.readAt === -Infinity) await this.reading;
    }
    return this.last;
  }
}

function entry(alert: HeldAlert, now: number): AlertEntry {
  const delivered = Object.values(alert.deliveries).reduce((n, c) => n + c, 0);
  return {
    channel: alert.channel,
    account: alert.channel.slice(alert.channel.indexOf(':') + 1),
    epoch: alert.epoch,
    seq: alert.seq,
    key: alert.key,
    ts: alert.ts,
    age_seconds: Math.max(0, Math.round((now - alert.ts) / 100) / 10),
    data: alert.data,
    expires_at: alert.expires_at ?? null,
    state: alert.ack ? 'acked' : 'unacked',
    acked_by: alert.ack?.by ?? null,
    acked_at: alert.ack?.at ?? null,
    deliveries: { ...alert.deliveries },
    delivered,
  };
}
