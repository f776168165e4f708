/**
 * The primary of `archon-ws serve --workers N` (docs/cluster.md#workers-every-core-of-a-node): forks N workers that
 * share the port through node:cluster's round-robin distribution, restarts a worker that dies
 * (with a backoff), drains them one at a time on SIGTERM/SIGINT and answers their /metrics
 * requests for the whole node. It loads no HTTP server and no gateway: a primary that does
 * little has little that can crash it.
 */
import cluster, { type Worker } from 'node:cluster';
import process from 'node:process';
import type { Config } from './config.js';
import { createLogger, type Logger } from './logging.js';
import { NodeMetrics } from './node-metrics.js';

/** Set by the primary in each worker's environment: its slot, `w1`…`wN`. */
export const WORKER_SLOT_VARIABLE = 'ARCHON_WORKER_SLOT';

const FIRST_RESTART_DELAY_MS = 1_000;
const MAX_RESTART_DELAY_MS = 30_000;
/** A worker that lived this long was healthy: its next restart starts the backoff over. */
const HEALTHY_LIFETIME_MS = 60_000;
/** A draining worker gets the shutdown timeout and this much more before it is killed. */
const DRAIN_GRACE_MS = 5_000;

/**
 * The wait before restarting a worker that died: 1 s, doubling to 30 s while workers keep
 * dying young, so a crash loop (Redis refusing, a bad deploy) does not spin the CPU.
 */
export function restartDelay(previousMs: number | null, livedMs: number): number {
  if (previousMs === null || livedMs >= HEALTHY_LIFETIME_MS) return FIRST_RESTART_DELAY_MS;
  return Math.min(previousMs * 2, MAX_RESTART_DELAY_MS);
}

interface Slot {
  readonly name: string;
  worker: Worker | null;
  startedAt: number;
  /** The last restart delay, null until this slot's worker first died. */
  delayMs: number | null;
  restart: NodeJS.Timeout | null;
}

export class Primary {
  private readonly log: Logger;
  private readonly slots: Slot[];
  private readonly metrics: NodeMetrics;
  private stopping = false;
  /** Slots whose first worker is listening: the node is fully up once all are. */
  private readonly listening = new Set<string>();

  constructor(
    private readonly config: Config,
    /** The environment every worker starts with (flags applied). */
    private readonly env: Readonly<Record<string, string | undefined>>,
  ) {
    this.log = createLogger({ level: config.logLevel, server: config.serverId });
    this.slots = Array.from({ length: config.workers }, (_, i) => ({
      name: `w${i + 1}`,
      worker: null,
      startedAt: 0,
      delayMs: null,
      restart: null,
    }));
    this.metrics = new NodeMetrics(config.serverId, () => this.slots);
  }

  start(): void {
    // Round-robin: the primary accepts and hands each connection to the next worker, so
    // long-lived WebSockets spread evenly and a worker's restart loses no queued connection
    // (docs/cluster.md#workers-every-core-of-a-node says why not SO_REUSEPORT).
    cluster.schedulingPolicy = cluster.SCHED_RR;
    cluster.on('message', (worker, message: unknown) => this.metrics.handle(worker, message));
    let signals = 0;
    const stop = (signal: string) => {
      if (++signals > 1) {
        // A second Ctrl-C means now.
        for (const slot of this.slots) slot.worker?.process.kill('SIGKILL');
        process.exit(1);
      }
      this.log.info({ signal }, 'Signal received: draining workers one at a time');
      this.drain().then(
        () => process.exit(0),
        (err: unknown) => {
          this.log.error({ err }, 'Shutdown failed');
          process.exit(1);
        },
      );
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    for (const slot of this.slots) this.fork(slot);
    this.log.info({ workers: this.slots.length, port: this.config.port }, 'Workers starting');
  }

  private fork(slot: Slot): void {
    slot.restart = null;
    const worker = cluster.fork({ ...this.env, [WORKER_SLOT_VARIABLE]: slot.name });
    slot.worker = worker;
    slot.startedAt = Date.now();
    this.log.info({ worker: slot.name, pid: worker.process.pid }, 'Worker started');
    worker.once('listening', () => {
      if (this.listening.size === this.slots.length || this.listening.has(slot.name)) return;
      this.listening.add(slot.name);
      // Until then round-robin hands every connection to the workers already listening.
      if (this.listening.size === this.slots.length)
        this.log.info({ workers: this.slots.length }, 'All workers listening');
    });
    worker.on('exit', (code: number | null, signal: string | null) => {
      if (slot.worker === worker) slot.worker = null;
      if (this.stopping) return;
      const lived = Date.now() - slot.startedAt;
      slot.delayMs = restartDelay(slot.delayMs, lived);
      this.log.warn(
        {
          worker: slot.name,
          pid: worker.process.pid,
          code,
          signal,
          livedMs: lived,
          restartInMs: slot.delayMs,
        },
        'Worker exited: restarting it',
      );
      slot.restart = setTimeout(() => this.fork(slot), slot.delayMs);
    });
  }

  /**
   * One worker at a time: its clients, closed with 1012, reconnect to the workers still
   * running (or to other nodes) and resume with since while the next one waits.
   */
  private async drain(): Promise<void> {
    this.stopping = true;
    for (const slot of this.slots) if (slot.restart) clearTimeout(slot.restart);
    for (const slot of this.slots) {
      const worker = slot.worker;
      if (!worker || worker.isDead()) continue;
      this.log.info({ worker: slot.name, pid: worker.process.pid }, 'Draining worker');
      const gone = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.process.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), this.config.shutdownTimeoutMs + DRAIN_GRACE_MS);
      });
      if ((await Promise.race([gone, late])) === 'late') {
        this.log.warn({ worker: slot.name }, 'Worker did not drain in time: killed');
        worker.process.kill('SIGKILL');
        await gone;
      }
      clearTimeout(timer);
      this.log.info({ worker: slot.name, code: worker.process.exitCode }, 'Worker drained');
    }
    this.log.info('Shutdown complete');
  }
}
