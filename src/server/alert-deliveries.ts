/**
 * How often each alert reached each user (docs/http-api.md#get-apiv1adminalerts): counted here
 * as the hub hands alerts to connections, and added to the backplane once a second, so a
 * fan-out to many dashboards costs one backplane write per alert and user, not one per frame.
 */
import type { Backplane, DeliveryCount } from './backplane/backplane.js';

/** Counts sent per batch at most; counts beyond this within one second are dropped (a
 * storm of alerts must not grow memory here). */
const MAX_PENDING = 10_000;
const FLUSH_MS = 1000;

interface Counted {
  readonly channel: { readonly name: string };
  readonly subscriber: { readonly userId: string | null };
}

export class AlertDeliveries {
  private pending = new Map<string, DeliveryCount & { count: number }>();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly backplane: Pick<Backplane, 'countDeliveries'>,
    private readonly onError: (err: unknown) => void,
  ) {}

  count(sub: Counted, epoch: string, seq: number): void {
    const user = sub.subscriber.userId;
    if (user === null) return;
    const id = `${sub.channel.name}\u0000${epoch}\u0000${seq}\u0000${user}`;
    const counted = this.pending.get(id);
    if (counted) counted.count++;
    else if (this.pending.size < MAX_PENDING)
      this.pending.set(id, { channel: sub.channel.name, epoch, seq, user, count: 1 });
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Sends what was counted (the timer's turn, and shutdown). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.size === 0) return;
    const counts = [...this.pending.values()];
    this.pending = new Map();
    try {
      await this.backplane.countDeliveries(counts);
    } catch (err) {
      this.onError(err);
    }
  }
}
