/**
 * The writing side of a client connection: its bounded queue and the writes to its
 * transport (a WebSocket's socket, or an HTTP streaming response).
 * Frames go straight to the socket, corked so one turn's frames leave in one write; when
 * the socket holds SOCKET_HIGH_WATER bytes, writing waits for 'drain' and frames wait in
 * the queue, where conflation and the bounds apply (docs/protocol.md#slow-consumers).
 */
import type { ServerMessage } from '../protocol/index.js';
import { ConnectionDeltas } from './deltas.js';
import { Frame } from './frame.js';
import type { Metrics } from './metrics.js';
import { OutboundQueue, type EnqueueResult } from './queue.js';
import type { ClientTransport, Sink } from './transport.js';

/** Above this many bytes buffered in the socket, stop writing until it drains. */
const SOCKET_HIGH_WATER = 1 << 20;

export class Outbound {
  readonly queue: OutboundQueue;
  /** When a flush last made progress; a queue that stops draining is stuck. */
  lastWriteAt: number;
  messagesSent = 0;
  private waitingDrain = false;
  private readonly socket: Sink;
  /** What the client holds of each state key, when it gets deltas (docs/protocol.md#deltas). */
  private deltas: ConnectionDeltas | null = null;

  constructor(
    private readonly transport: ClientTransport,
    bounds: { readonly queueSize: number; readonly queueBytes: number },
    private readonly metrics: Metrics,
    /** Asks for a flush once the socket drained (the hub batches flushes per turn). */
    private readonly onDrain: () => void,
    now: number,
  ) {
    this.queue = new OutboundQueue(bounds.queueSize, bounds.queueBytes);
    this.socket = transport.sink;
    this.lastWriteAt = now;
  }

  get socketOpen(): boolean {
    return this.transport.open;
  }

  /** Since when the queue has waited on a socket that does not drain, or null. */
  get stuckSince(): number | null {
    return this.waitingDrain && this.queue.depth > 0 ? this.lastWriteAt : null;
  }

  /** Whether state updates may go as deltas (the client asked in `hello`). */
  get deltasOn(): boolean {
    return this.deltas !== null;
  }

  useDeltas(on: boolean): void {
    this.deltas = on ? (this.deltas ?? new ConnectionDeltas()) : null;
  }

  /** Drops what is queued for a channel (unsubscribe, resubscribe, resync), and forgets what
   * the client holds of it: its next state updates go in full. */
  dropChannel(channel: string): number {
    this.deltas?.forgetChannel(channel);
    return this.queue.dropChannel(channel);
  }

  /**
   * Writes a frame at once when nothing waits before it: the queue is empty and the socket is
   * open and below its high-water mark. False when it must be queued instead. The frame is
   * not retained: the socket holds its bytes from here.
   */
  tryWrite(frame: Frame, now: number): boolean {
    if (this.waitingDrain || this.queue.depth > 0 || !this.socketOpen) return false;
    if (this.socket.writableLength >= SOCKET_HIGH_WATER) return false;
    this.write(frame, now);
    this.lastWriteAt = now;
    return true;
  }

  /** One frame to the socket, counted; an event that expired while it waited goes as its
   * `expired` stand-in (docs/protocol.md#expiring-events), a state update as its delta when
   * the client holds its base (deltas.ts). */
  private write(frame: Frame, now: number): void {
    const expired = frame.expiresAt <= now;
    const out = this.deltas
      ? this.deltas.pick(frame, expired)
      : expired
        ? frame.expiredFrame()
        : frame;
    this.socket.write(this.transport.encode(out));
    this.metrics.delivered(frame.cls);
    this.messagesSent++;
  }

  enqueue(frame: Frame, now: number, replay: boolean): EnqueueResult {
    return this.queue.enqueue(frame, now, replay);
  }

  flush(now = Date.now()): void {
    if (!this.socketOpen || this.waitingDrain) return;
    const socket = this.socket;
    let wrote = false;
    // Several frames leave in one write; corking a single frame would only cost.
    const batch = this.queue.depth > 1;
    if (batch) socket.cork();
    let frame: Frame | undefined;
    while (socket.writableLength < SOCKET_HIGH_WATER && (frame = this.queue.shift())) {
      this.write(frame, now);
      frame.release();
      wrote = true;
    }
    if (batch) socket.uncork();
    if (wrote) this.lastWriteAt = now;
    if (this.queue.depth > 0) {
      // The client reads slower than we write: let the socket drain before writing more.
      this.waitingDrain = true;
      socket.once('drain', () => {
        this.waitingDrain = false;
        this.onDrain();
      });
    }
  }

  /** Writes a last message ahead of a close, after what is queued (as far as it goes). */
  writeNow(message: ServerMessage): void {
    if (!this.socketOpen) return;
    this.flush();
    this.socket.write(this.transport.encode(Frame.of(message)));
    this.metrics.delivered('control');
  }

  /** The transport's keep-alive (SSE: a comment), when nothing waits to be written: a
   * proxy between us and the client must not close an idle stream. */
  heartbeat(): void {
    const bytes = this.transport.heartbeat();
    if (bytes === null || !this.socketOpen || this.waitingDrain || this.queue.depth > 0) return;
    this.socket.write(bytes);
  }
}
