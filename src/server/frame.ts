/**
 * A server message serialized and framed once. Every subscriber gets the same bytes:
 * fan-out costs one socket write per subscriber, never one JSON.stringify or one frame
 * header per subscriber.
 */
import * as ws from 'ws';
import type { ServerMessage } from '../protocol/index.js';
import type { DeliveryClass } from './metrics.js';

// ws exports its frame encoder (documented @public in lib/sender.js) but @types/ws omits it.
const { Sender } = ws as unknown as {
  Sender: {
    frame(
      data: Buffer,
      options: { fin: boolean; opcode: number; mask: boolean; readOnly: boolean; rsv1: boolean },
    ): Buffer[];
  };
};

/** Which part of a client's queue a frame goes to: alerts jump ahead of everything else. */
export type Lane = 'priority' | 'normal';

/**
 * What a state-channel frame does to the values a client holds, for connections that get
 * deltas (deltas.ts; docs/protocol.md#deltas). Snapshots always carry it; events only while
 * such a connection subscribes to their channel here (the hub builds it, latest-values.ts).
 */
export type StateChange =
  /** Every value of the channel replaced. */
  | { readonly kind: 'snapshot' }
  /** The key's value is gone, or not known from here on (a delete, an `expired` stand-in). */
  | { readonly kind: 'drop' }
  /** The key's value as of `seq`, and the same event as a merge patch on the value of
   * `delta.baseSeq` when that is smaller (built once, shared like the frame). */
  | { readonly kind: 'value'; readonly seq: number; readonly delta: Delta | null };

export interface Delta {
  readonly baseSeq: number;
  readonly frame: Frame;
}

const SNAPSHOT: StateChange = { kind: 'snapshot' };

export interface FrameOptions {
  readonly cls: DeliveryClass;
  /** The channel of an event frame, so a resubscribe can drop what is still queued for it. */
  readonly channel?: string | null;
  /** Defaults to priority for alert and broadcast frames, normal otherwise. */
  readonly lane?: Lane;
  /** Set for state-channel events: a newer frame with the same key replaces this one. */
  readonly conflateKey?: string | null;
  /** Called once every holder has written or dropped the frame (fan-out finished). */
  readonly onSettled?: ((frame: Frame) => void) | null;
  /** When the message was accepted (ms since epoch); for broadcast latency. */
  readonly acceptedAt?: number;
  /** An event that expires (docs/protocol.md#expiring-events): when, and its seq. */
  readonly expiresAt?: number;
  readonly seq?: number;
  /** Where this frame moves its channel's resume point (the HTTP streaming transport's
   * cursor, docs/protocol.md#http-streaming-fallback): events and stand-ins give a seq,
   * `subscribed` and snapshots an epoch too. */
  readonly position?: FramePosition | null;
  readonly stateChange?: StateChange | null;
}

/** A frame's place in its channel: `seq` null when only the epoch is known yet (a
 * `subscribed` whose replay follows). */
export interface FramePosition {
  readonly channel: string;
  readonly epoch: string | null;
  readonly seq: number | null;
}

export class Frame {
  /** The complete WebSocket text frame: header and payload in one buffer. */
  readonly wire: Buffer;
  /** Payload size, what queue byte limits count. */
  readonly size: number;
  readonly cls: DeliveryClass;
  readonly channel: string | null;
  readonly lane: Lane;
  readonly conflateKey: string | null;
  readonly acceptedAt: number;
  /** Infinity unless the event expires. */
  readonly expiresAt: number;
  readonly stateChange: StateChange | null;
  private readonly seq: number;
  readonly position: FramePosition | null;
  private standIn: Frame | null = null;
  /** The same payload as a server-sent event, built on first use and shared. */
  private sseBytes: Buffer | null = null;
  private readonly onSettled: ((frame: Frame) => void) | null;
  private refs = 0;

  constructor(payload: Buffer, options: FrameOptions) {
    this.size = payload.length;
    this.cls = options.cls;
    this.channel = options.channel ?? null;
    this.lane =
      options.lane ??
      (options.cls === 'alert' || options.cls === 'broadcast' ? 'priority' : 'normal');
    this.conflateKey = options.conflateKey ?? null;
    this.onSettled = options.onSettled ?? null;
    this.acceptedAt = options.acceptedAt ?? 0;
    this.expiresAt = options.expiresAt ?? Infinity;
    this.seq = options.seq ?? 0;
    this.position = options.position ?? null;
    this.stateChange = options.stateChange ?? null;
    // Server-to-client frames are not masked, so the header is the same for every client.
    const parts = Sender.frame(payload, {
      fin: true,
      opcode: 1,
      mask: false,
      readOnly: true,
      rsv1: false,
    });
    this.wire = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  /** The payload as one server-sent event: `data: <json>\n\n` (JSON holds no raw newline). */
  get sse(): Buffer {
    this.sseBytes ??= Buffer.concat([
      SSE_DATA,
      this.wire.subarray(this.wire.length - this.size),
      SSE_END,
    ]);
    return this.sseBytes;
  }

  /** A one-off frame for a single client (replies, replays). */
  static of(message: ServerMessage, cls: DeliveryClass = 'control', lane?: Lane): Frame {
    // What a subscription delivers is dropped with it (dropChannel); answers to ops are not.
    const channel =
      message.type === 'event' ||
      message.type === 'snapshot' ||
      message.type === 'expired' ||
      message.type === 'unacked' ||
      (message.type === 'acked' && message.id === undefined)
        ? message.channel
        : null;
    return new Frame(Buffer.from(JSON.stringify(message)), {
      cls,
      channel,
      position: positionOf(message),
      ...(lane && { lane }),
      ...(lane && { lane }),
      ...(message.type === 'snapshot' && { stateChange: SNAPSHOT }),
    });
  }

  /** What is written instead of this event once it expired: `expired` with its seq, built
   * once and shared by every queue that held the event. */
  expiredFrame(): Frame {
    this.standIn ??= new Frame(
      Buffer.from(
        JSON.stringify({
          type: 'expired',
          channel: this.channel,
          from_seq: this.seq,
          seq: this.seq,
        }),
      ),
      {
        cls: this.cls,
        channel: this.channel,
        lane: this.lane,
        position:
          this.channel === null ? null : { channel: this.channel, epoch: null, seq: this.seq },
      },
    );
    return this.standIn;
  }

  /** One more queue holds this frame. */
  retain(): void {
    this.refs++;
  }

  /** A queue wrote or dropped this frame. */
  release(): void {
    if (--this.refs === 0 && this.onSettled) this.onSettled(this);
  }
}

const SSE_DATA = Buffer.from('data: ');
const SSE_END = Buffer.from('\n\n');

function positionOf(message: ServerMessage): FramePosition | null {
  switch (message.type) {
    case 'event':
    case 'expired':
      return { channel: message.channel, epoch: null, seq: message.seq };
    case 'snapshot':
      return { channel: message.channel, epoch: message.epoch, seq: message.seq };
    case 'subscribed':
      // A replay follows: the events it brings move the seq, so a stream cut during it
      // resumes where the client really is.
      return {
        channel: message.channel,
        epoch: message.epoch,
        seq: message.replayed > 0 ? null : message.seq,
      };
    default:
      return null;
  }
}
