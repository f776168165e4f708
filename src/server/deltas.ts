/**
 * What a connection that gets deltas (docs/protocol.md#deltas) last wrote of each state key:
 * the seq of the value the client holds. A delta goes out only when its base is exactly that
 * value; anything else goes in full. Decided when the frame is written, never when it is
 * queued: conflation replaces queued values, so what was queued says nothing of what the
 * client received.
 */
import type { Frame } from './frame.js';

/** The last value of a key written to the client: its seq, and its channel (to forget). */
interface Written {
  seq: number;
  readonly channel: string;
}

export class ConnectionDeltas {
  /** By the frame's conflateKey; created on the first value, so an idle connection holds no
   * map. One lookup per write: the entry is updated in place. */
  private written: Map<string, Written> | null = null;

  /**
   * The frame to write for `frame` (itself, its delta, or its `expired` stand-in when
   * `expired`), noting what the client holds once it is written.
   */
  pick(frame: Frame, expired: boolean): Frame {
    const change = frame.stateChange;
    const channel = frame.channel;
    if (change === null || channel === null) return expired ? frame.expiredFrame() : frame;
    if (change.kind === 'snapshot') {
      this.forgetChannel(channel);
      return frame;
    }
    const key = frame.conflateKey;
    if (key === null) return expired ? frame.expiredFrame() : frame;
    if (expired || change.kind === 'drop') {
      this.written?.delete(key);
      return expired ? frame.expiredFrame() : frame;
    }
    this.written ??= new Map();
    const entry = this.written.get(key);
    const held = entry?.seq;
    if (entry === undefined) this.written.set(key, { seq: change.seq, channel });
    else entry.seq = change.seq;
    return change.delta !== null && change.delta.baseSeq === held ? change.delta.frame : frame;
  }

  /** The client's values of a channel are no longer known (unsubscribe, resubscribe, resync):
   * its next update of each key goes in full. */
  forgetChannel(channel: string): void {
    if (this.written === null) return;
    for (const [key, entry] of this.written)
      if (entry.channel === channel) this.written.delete(key);
  }

  /** How many keys are remembered (for tests and diagnostics). */
  get size(): number {
    return this.written?.size ?? 0;
  }
}
