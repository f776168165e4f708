/**
 * The full value of each key of a state channel as this subscription last received it, and
 * the seq it came with: what a delta (docs/protocol.md#deltas) patches. Kept only when the
 * connection gets deltas; the application only ever sees full values.
 */
import { applyMergePatch, type EventMessage, type SnapshotEntry } from '../protocol/index.js';

export class StateValues {
  private readonly values = new Map<string, { readonly seq: number; readonly data: unknown }>();

  /** A snapshot replaces every value; its seq stands for each of them. */
  constructor(entries: readonly SnapshotEntry[], seq: number) {
    for (const { key, data } of entries) if (data !== null) this.values.set(key, { seq, data });
  }

  /**
   * The full value an event of `key` carries (its `data`, or its patch applied to the value
   * of `base_seq`), now held for the key; undefined when it patches a value not held here.
   */
  take(key: string, msg: EventMessage): unknown {
    let data = msg.data;
    if (msg.base_seq !== undefined) {
      const base = this.values.get(key);
      if (base === undefined || base.seq !== msg.base_seq) return undefined;
      data = applyMergePatch(base.data, msg.data);
    }
    if (data === null) this.values.delete(key);
    else this.values.set(key, { seq: msg.seq, data });
    return data;
  }
}
