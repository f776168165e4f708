/**
 * What a connection that gets deltas (docs/protocol.md#deltas) last wrote of each state key:
 * the seq of the value the client holds. A delta goes out only when its base is exactly that
 * value; anything else goes in full. Decided when the frame is written, never when it is
 * queued: conflation replaces queued values, so what was queued says nothing of what the
 * client received.
 */
import type { Frame } from './frame.js';

export class ConnectionDeltas {
  /** Per channel: the seq of the last value written of each key (by the frame's conflateKey);
   * created on the first one, so an idle connection holds no map. */
  private written: Map<string, Map<string, number>> | null = null;

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
      this.forget(channel, key);
      return expired ? frame.expiredFrame() : frame;
    }
    this.written ??= new Map();
    let keys = this.written.get(channel);
    if (keys === undefined) this.written.set(channel, (keys = new Map<string, number>()));
    const held = keys.get(key);
    keys.set(key, change.seq);
    return change.delta !== null && change.delta.baseSeq === held ? change.delta.frame : frame;
  }

  /** The client's values of a channel are no longer known (unsubscribe, resubscribe, resync):
   * its next update of each key goes in full. */
  forgetChannel(channel: string): void {
    this.written?.delete(channel);
  }

  /** How many keys are remembered (for tests and diagnostics). */
  get size(): number {
    let n = 0;
    for (const keys of this.written?.values() ?? []) n += keys.size;
    return n;
  }

  private forget(channel: string, key: string): void {
    const keys = this.written?.get(channel);
    if (keys?.delete(key) && keys.size === 0) this.written?.delete(channel);
  }
}
