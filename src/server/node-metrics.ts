/**
 * One /metrics for a node of workers (docs/metrics.md#workers): the worker that receives the
 * scrape asks the primary over the cluster IPC channel; the primary asks every worker for its
 * registry as JSON, merges the answers with prom-client's AggregatorRegistry.aggregate and
 * sends the text back. Both ends of that exchange live here.
 *
 * prom-client's own clusterMetrics() is not used: it fails the whole scrape after a fixed 5 s
 * when one worker does not answer. Here a worker that is restarting or stuck costs at most
 * COLLECT_TIMEOUT_MS, and the scrape carries every other worker's series plus
 * archon_websocket_worker_up = 0 for it.
 */
import type { Worker } from 'node:cluster';
import process from 'node:process';
import client, { AggregatorRegistry, type MetricObjectWithValues } from 'prom-client';

/** How long the primary waits for the workers' registries. */
export const COLLECT_TIMEOUT_MS = 2_000;
/** How long a worker waits for the primary (it answers within COLLECT_TIMEOUT_MS). */
const SCRAPE_TIMEOUT_MS = COLLECT_TIMEOUT_MS + 2_000;

type Exported = MetricObjectWithValues<client.MetricValue<string>>[];

/** worker → primary: scrape the node. */
interface ScrapeRequest {
  readonly type: 'archon:scrape';
  readonly id: number;
}
/** primary → worker: the node's text. */
interface ScrapeAnswer {
  readonly type: 'archon:scraped';
  readonly id: number;
  readonly text: string;
}
/** primary → worker: your registry, please. */
interface CollectRequest {
  readonly type: 'archon:collect';
  readonly id: number;
}
/** worker → primary: its registry as JSON. */
interface CollectAnswer {
  readonly type: 'archon:collected';
  readonly id: number;
  readonly metrics: Exported;
}

function isObject(m: unknown): m is Record<string, unknown> {
  return typeof m === 'object' && m !== null;
}
function isMessage<T extends { type: string; id: number }>(m: unknown, type: T['type']): m is T {
  return isObject(m) && m.type === type && typeof m.id === 'number';
}

// ---- worker side ----

let nextScrape = 0;
const scrapes = new Map<number, (text: string) => void>();

/**
 * In a worker: answers the primary's requests for `registry`, and resolves scrapes it asked
 * for. Messages of any other shape are ignored (the channel also carries node:cluster's own).
 */
export function serveWorkerMetrics(registry: client.Registry): void {
  process.on('message', (message: unknown) => {
    if (isMessage<CollectRequest>(message, 'archon:collect')) {
      registry.getMetricsAsJSON().then(
        (metrics) => send({ type: 'archon:collected', id: message.id, metrics }),
        // A registry that cannot be read answers empty: the primary then reports the worker
        // as not up instead of waiting for the timeout.
        () => send({ type: 'archon:collected', id: message.id, metrics: [] }),
      );
    } else if (isMessage<ScrapeAnswer>(message, 'archon:scraped')) {
      if (typeof message.text === 'string') scrapes.get(message.id)?.(message.text);
    }
  });
}

/** In a worker: the node's metrics; this worker's own (`own`) if the primary does not answer. */
export function scrapeNode(own: () => Promise<string>): Promise<string> {
  const id = nextScrape++;
  const answered = new Promise<string | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), SCRAPE_TIMEOUT_MS);
    scrapes.set(id, (text) => {
      clearTimeout(timer);
      resolve(text);
    });
    if (!send({ type: 'archon:scrape', id })) {
      clearTimeout(timer);
      resolve(null);
    }
  });
  return answered.then((text) => {
    scrapes.delete(id);
    return text ?? own();
  });
}

function send(message: ScrapeRequest | CollectAnswer): boolean {
  if (!process.connected || !process.send) return false;
  process.send(message);
  return true;
}

// ---- primary side ----

/** A worker slot as the primary sees it: its name and the process in it now, if any. */
export interface SlotView {
  readonly name: string;
  readonly worker: Worker | null;
}

/** In the primary: answers the workers' scrape requests for the node `server`. */
export class NodeMetrics {
  private nextCollect = 0;
  private readonly collecting = new Map<number, (worker: Worker, metrics: Exported) => void>();

  constructor(
    private readonly server: string,
    private readonly slots: () => readonly SlotView[],
  ) {}

  /** Every message a worker sends goes through here; what is not ours is ignored. */
  handle(worker: Worker, message: unknown): void {
    if (isMessage<ScrapeRequest>(message, 'archon:scrape')) {
      void this.gather().then((text) => {
        if (worker.isConnected())
          worker.send({ type: 'archon:scraped', id: message.id, text } satisfies ScrapeAnswer);
      });
    } else if (isMessage<CollectAnswer>(message, 'archon:collected')) {
      if (Array.isArray(message.metrics))
        this.collecting.get(message.id)?.(worker, message.metrics);
    }
  }

  /** Every worker's registry that answers within COLLECT_TIMEOUT_MS, merged, as text. */
  private async gather(): Promise<string> {
    const id = this.nextCollect++;
    const slots = this.slots();
    const asked = slots.filter(
      (s): s is SlotView & { worker: Worker } => s.worker?.isConnected() === true,
    );
    const answers = new Map<Worker, Exported>();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, COLLECT_TIMEOUT_MS);
      this.collecting.set(id, (worker, metrics) => {
        answers.set(worker, metrics);
        if (answers.size >= asked.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      for (const s of asked) s.worker.send({ type: 'archon:collect', id } satisfies CollectRequest);
      if (asked.length === 0) {
        clearTimeout(timer);
        resolve();
      }
    });
    this.collecting.delete(id);
    const registry = AggregatorRegistry.aggregate([...answers.values()]);
    const up = new client.Gauge({
      name: 'archon_websocket_worker_up',
      help: "1 when this worker's series are in this scrape, 0 when it did not answer in time (restarting or stuck)",
      labelNames: ['server', 'worker'],
      registers: [registry],
    });
    for (const s of slots) {
      const answered = s.worker !== null && (answers.get(s.worker)?.length ?? 0) > 0;
      up.set({ server: this.server, worker: s.name }, answered ? 1 : 0);
    }
    return registry.metrics();
  }
}
