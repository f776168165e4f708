/**
 * Replayed events framed once and shared: when many clients resume the same channel (a
 * reconnect storm after a restart, or one client re-subscribing in a loop), each event is
 * serialized and framed once and every replay queues the same buffer. Bounded by bytes;
 * the oldest frames built go first (history is read oldest first, so they are the ones
 * nearest to being trimmed from it anyway).
 */
import type { StoredEvent } from '../protocol/index.js';
import type { DeliveryClass } from './metrics.js';
import { Frame } from './frame.js';

export class ReplayFrames {
  /** In the order built. */
  private readonly frames = new Map<string, Frame>();
  private bytes = 0;

  constructor(private readonly maxBytes: number) {}

  /** The frame of a stored event of `epoch`, built on first use. */
  frame(event: StoredEvent, epoch: string, cls: DeliveryClass): Frame {
    const id = `${epoch}\u0000${event.seq}\u0000${event.channel}`;
    const cached = this.frames.get(id);
    if (cached) return cached;
    // An event that expires is written as `expired` if it expires while queued.
    const frame =
      event.expires_at === undefined
        ? Frame.of({ type: 'event', ...event }, cls)
        : new Frame(Buffer.from(JSON.stringify({ type: 'event', ...event })), {
            cls,
            channel: event.channel,
            expiresAt: event.expires_at,
            seq: event.seq,
            position: { channel: event.channel, epoch: null, seq: event.seq },
          });
    this.frames.set(id, frame);
    this.bytes += frame.wire.length;
    for (const [oldest, old] of this.frames) {
      if (this.bytes <= this.maxBytes) break;
      this.frames.delete(oldest);
      this.bytes -= old.wire.length;
    }
    return frame;
  }
}
