/**
 * The last value the hub saw of each key of one state channel, kept only while a connection
 * that gets deltas subscribes to the channel here (a deployment without such clients keeps
 * nothing): the base of the next update's delta (docs/protocol.md#deltas). Each update's
 * patch is built and serialized once, as a Frame every such subscriber shares.
 */
import { diffMergePatch, type EventMessage, type ExpiredMessage } from '../protocol/index.js';
import type { BackplaneEvent } from './backplane/backplane.js';
import { Frame, type Delta, type StateChange } from './frame.js';

const DROP: StateChange = { kind: 'drop' };

export class LatestValues {
  /** Seqs name values within one epoch only. */
  private epoch: string | null = null;
  private readonly values = new Map<string, { readonly seq: number; readonly data: unknown }>();

  /**
   * What the message of a keyed event (`message`, `fullSize` bytes: the event itself or its
   * `expired` stand-in) does to a client's value of its key, with the delta when it is
   * smaller; the event becomes the key's latest value.
   */
  change(
    event: BackplaneEvent,
    message: EventMessage | ExpiredMessage,
    fullSize: number,
  ): StateChange {
    const key = event.key;
    if (key === null) return DROP;
    if (event.epoch !== this.epoch) {
      this.values.clear();
      this.epoch = event.epoch;
    }
    const previous = this.values.get(key);
    if (previous !== undefined && event.seq <= previous.seq) return DROP; // never expected
    if (message.type === 'expired' || event.data === null) {
      this.values.delete(key);
      return DROP;
    }
    this.values.set(key, { seq: event.seq, data: event.data });
    const delta = previous === undefined ? null : deltaOf(message, previous, fullSize);
    return { kind: 'value', seq: event.seq, delta };
  }
}

/** The event as a merge patch on the previous value, or null when none says it in fewer
 * bytes than the full event. */
function deltaOf(
  message: EventMessage,
  previous: { readonly seq: number; readonly data: unknown },
  fullSize: number,
): Delta | null {
  let payload: Buffer;
  try {
    const patch = diffMergePatch(previous.data, message.data);
    if (patch === undefined) return null;
    const delta: EventMessage = {
      type: 'event',
      channel: message.channel,
      seq: message.seq,
      base_seq: previous.seq,
      key: message.key,
      ts: message.ts,
      data: patch,
      ...(message.expires_at !== undefined && { expires_at: message.expires_at }),
    };
    payload = Buffer.from(JSON.stringify(delta));
  } catch {
    // Data of another writer nested deeper than publish allows: the full event says it.
    return null;
  }
  if (payload.length >= fullSize) return null;
  return {
    baseSeq: previous.seq,
    frame: new Frame(payload, {
      cls: 'state',
      channel: message.channel,
      // It moves the channel's resume point as the full event would (an HTTP stream's cursor).
      position: { channel: message.channel, epoch: null, seq: message.seq },
    }),
  };
}
