/**
 * Prometheus metrics (names fixed by RB-003's alerts, docs/metrics.md) and the per-minute series
 * behind the admin stats endpoint. The delivery hot path only adds to plain numbers; they
 * are moved into prom-client counters when Prometheus scrapes.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import client from 'prom-client';
import {
  CLOSE_CODES,
  ERROR_TYPES,
  RECOVERY_RESULTS,
  REJECT_REASONS,
  TRANSPORTS,
  type Transport,
  type ChannelClass,
  type ErrorType,
  type RecoveryResult,
  type RejectReason,
} from '../protocol/index.js';
import { MinuteSeries } from './stats.js';

const CLASSES: readonly (ChannelClass | 'control')[] = [
  'state',
  'stream',
  'alert',
  'broadcast',
  'control',
];
export type DeliveryClass = ChannelClass | 'control';

const KNOWN_CLOSE_CODES = new Set([1005, ...CLOSE_CODES.map((c) => c.code)]);

/** Recent broadcast durations kept for the status p99. */
const LATENCY_WINDOW = 2048;

export class Metrics {
  readonly registry = new client.Registry();
  readonly series: MinuteSeries;
  /** Deliveries not yet moved into the prom counter, by class. */
  private readonly pendingSent: Record<DeliveryClass, number> = {
    state: 0,
    stream: 0,
    alert: 0,
    broadcast: 0,
    control: 0,
  };
  private readonly recentLatencies = new Float64Array(LATENCY_WINDOW);
  private latencyCount = 0;
  private readonly loopDelay: ReturnType<typeof monitorEventLoopDelay> = monitorEventLoopDelay({
    resolution: 10,
  });
  private peak = 0;
  private peakDay = '';

  readonly connectionsActive: client.Gauge<'transport'>;
  readonly connectionsUnauthenticated: client.Gauge;
  readonly connectionsTotal: client.Counter<'transport'>;
  readonly messagesSent: client.Counter<'class'>;
  readonly errors: client.Counter<'type'>;
  readonly broadcastDuration: client.Histogram;
  readonly queueDepth: client.Gauge;
  readonly disconnects: client.Counter<'code'>;
  private readonly rejectedCounter: client.Counter<'reason'>;
  private readonly recoveriesCounter: client.Counter<'result'>;
  readonly published: client.Counter<'class'>;
  readonly backplaneErrors: client.Counter;
  readonly backplaneUp: client.Gauge;

  /**
   * `server` names the node on every series; a worker of a node (ARCHON_WORKERS > 1) adds
   * `worker` (docs/metrics.md#workers), so `sum by (server)` still sums one node.
   */
  constructor(
    labels: string | { readonly server: string; readonly worker: string },
    gauges: {
      active: () => number;
      /** Open connections on the HTTP streaming fallback (the rest are WebSockets). */
      sse: () => number;
      unauthenticated: () => number;
      queueDepth: () => number;
      backplaneUp: () => boolean;
      /** Risk alerts waiting for an acknowledgement, cluster-wide (cached by the caller). */
      alerts: () => Promise<{ unacked: number; oldestSeconds: number }>;
    },
    now: () => number = Date.now,
  ) {
    const registers = [this.registry];
    this.registry.setDefaultLabels(typeof labels === 'string' ? { server: labels } : labels);
    client.collectDefaultMetrics({ register: this.registry });
    this.loopDelay.enable();
    this.series = new MinuteSeries(now, gauges.active);

    this.connectionsActive = new client.Gauge({
      name: 'archon_websocket_connections_active',
      help: 'Client connections open now (authenticated or not), by transport (websocket, or sse for the HTTP streaming fallback)',
      labelNames: ['transport'],
      registers,
      collect() {
        const sse = gauges.sse();
        this.set({ transport: 'websocket' }, gauges.active() - sse);
        this.set({ transport: 'sse' }, sse);
      },
    });
    this.connectionsUnauthenticated = new client.Gauge({
      name: 'archon_websocket_connections_unauthenticated',
      help: 'WebSocket connections open now that have not completed hello (WEBSOCKET_MAX_UNAUTHENTICATED)',
      registers,
      collect() {
        this.set(gauges.unauthenticated());
      },
    });
    this.connectionsTotal = new client.Counter({
      name: 'archon_websocket_connections_total',
      help: 'Client connections accepted since start, by transport',
      labelNames: ['transport'],
      registers,
    });
    for (const transport of TRANSPORTS) this.connectionsTotal.inc({ transport }, 0);
    const pendingSent = this.pendingSent;
    this.messagesSent = new client.Counter({
      name: 'archon_websocket_messages_sent_total',
      help: 'Messages written to client sockets, by channel class',
      labelNames: ['class'],
      registers,
      collect() {
        for (const cls of CLASSES) {
          this.inc({ class: cls }, pendingSent[cls]);
          pendingSent[cls] = 0;
        }
      },
    });
    this.errors = new client.Counter({
      name: 'archon_websocket_errors_total',
      help: 'Connection errors, by type (see docs/errors.md)',
      labelNames: ['type'],
      registers,
    });
    this.broadcastDuration = new client.Histogram({
      name: 'archon_websocket_broadcast_duration_seconds',
      help: 'From a message being accepted until it was written to every subscriber',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.queueDepth = new client.Gauge({
      name: 'archon_websocket_queue_depth',
      help: 'Messages waiting in client queues, summed over connections',
      registers,
      collect() {
        this.set(gauges.queueDepth());
      },
    });
    this.disconnects = new client.Counter({
      name: 'archon_websocket_disconnects_total',
      help: 'Closed connections, by close code',
      labelNames: ['code'],
      registers,
    });
    this.rejectedCounter = new client.Counter({
      name: 'archon_websocket_connections_rejected_total',
      help: 'Connections refused at the handshake (or at hello: per_user), by reason',
      labelNames: ['reason'],
      registers,
    });
    this.recoveriesCounter = new client.Counter({
      name: 'archon_websocket_recoveries_total',
      help: 'Subscriptions resumed with since, by result (recovered / not_recovered)',
      labelNames: ['result'],
      registers,
    });
    this.published = new client.Counter({
      name: 'archon_websocket_publish_total',
      help: 'Events accepted and stored, by channel class',
      labelNames: ['class'],
      registers,
    });
    this.backplaneErrors = new client.Counter({
      name: 'archon_websocket_backplane_errors_total',
      help: 'Backplane operations that failed',
      registers,
    });
    this.backplaneUp = new client.Gauge({
      name: 'archon_websocket_backplane_up',
      help: '1 when the backplane can store events, 0 when it cannot',
      registers,
      collect() {
        this.set(gauges.backplaneUp() ? 1 : 0);
      },
    });
    new client.Gauge({
      name: 'archon_websocket_alerts_unacked',
      help: 'Risk alerts held and not acknowledged, over every account (cluster-wide: the same on every instance)',
      registers,
      async collect() {
        this.set((await gauges.alerts()).unacked);
      },
    });
    new client.Gauge({
      name: 'archon_websocket_alert_unacked_oldest_seconds',
      help: 'Age of the oldest risk alert not acknowledged, 0 when none waits (cluster-wide)',
      registers,
      async collect() {
        this.set((await gauges.alerts()).oldestSeconds);
      },
    });
    // Every label value the alerts and dashboards read exists from the start, at 0.
    for (const type of ERROR_TYPES) this.errors.inc({ type }, 0);
    for (const reason of REJECT_REASONS) this.rejectedCounter.inc({ reason }, 0);
    for (const result of RECOVERY_RESULTS) this.recoveriesCounter.inc({ result }, 0);
    for (const cls of CLASSES) {
      this.messagesSent.inc({ class: cls }, 0);
      if (cls !== 'control') this.published.inc({ class: cls }, 0);
    }
  }

  /** Connection refused at the handshake, or at hello (per_user). */
  rejected(reason: RejectReason): void {
    this.rejectedCounter.inc({ reason });
  }

  recovery(result: RecoveryResult): void {
    this.recoveriesCounter.inc({ result });
  }

  delivered(cls: DeliveryClass, n = 1): void {
    this.pendingSent[cls] += n;
    this.series.current.messages += n;
  }

  error(type: ErrorType): void {
    this.errors.inc({ type });
    this.series.error(type);
  }

  connected(active: number, transport: Transport = 'websocket'): void {
    this.connectionsTotal.inc({ transport });
    this.peakConnectionsToday(active);
    this.series.connect(active);
  }

  disconnected(code: number): void {
    // A client may close with any code from 3000 to 4999: only known codes become labels.
    const label = KNOWN_CLOSE_CODES.has(code) ? String(code) : 'other';
    this.disconnects.inc({ code: label });
    this.series.disconnect(label);
  }

  broadcastSettled(seconds: number): void {
    this.broadcastDuration.observe(seconds);
    this.recentLatencies[this.latencyCount++ % LATENCY_WINDOW] = seconds;
  }

  /** Most connections open at once since 00:00 UTC (RB-003 Step 1's `peak_today`). */
  peakConnectionsToday(active: number): number {
    const day = new Date().toISOString().slice(0, 10);
    if (day !== this.peakDay) {
      this.peakDay = day;
      this.peak = 0;
    }
    if (active > this.peak) this.peak = active;
    return this.peak;
  }

  /** p99 of the recent broadcast durations, in ms (0 when nothing was broadcast yet). */
  broadcastP99Ms(): number {
    const n = Math.min(this.latencyCount, LATENCY_WINDOW);
    if (n === 0) return 0;
    const sorted = this.recentLatencies.slice(0, n).sort();
    return round((sorted[Math.min(n - 1, Math.floor(n * 0.99))] ?? 0) * 1000);
  }

  eventLoopLagP99Ms(): number {
    return round(this.loopDelay.percentile(99) / 1e6);
  }

  /** Once a second: roll the minute series; restart the event-loop window each minute. */
  tick(): void {
    const before = this.series.current;
    this.series.roll();
    if (this.series.current !== before) this.loopDelay.reset();
  }

  close(): void {
    this.loopDelay.disable();
    this.registry.clear();
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
