/**
 * What a client session runs over: a WebSocket, or the HTTP streaming fallback's response
 * (docs/protocol.md#http-streaming-fallback). The session (connection.ts) and its writer
 * (outbound.ts) see only this: where bytes go, how a frame is encoded, how it ends.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import { CloseCode, formatCursor, type Since, type Transport } from '../protocol/index.js';
import type { Frame } from './frame.js';

/** Where a session's bytes are written: a socket, or an HTTP response. */
export interface Sink {
  write(chunk: Buffer): boolean;
  cork(): void;
  uncork(): void;
  readonly writableLength: number;
  readonly destroyed: boolean;
  once(event: 'drain', listener: () => void): unknown;
}

export interface TransportEvents {
  readonly message: (data: WebSocket.RawData, isBinary: boolean) => void;
  readonly close: (code: number) => void;
  readonly error: (err: Error & { code?: string }) => void;
}

export interface ClientTransport {
  readonly kind: Transport;
  readonly sink: Sink;
  /** Bytes can still be written. */
  readonly open: boolean;
  /** The bytes that carry a frame on this transport. */
  encode(frame: Frame): Buffer;
  /** A keep-alive for proxies when nothing else was written (SSE: a comment), or null when
   * the session's own ping serves (WebSocket). */
  heartbeat(): Buffer | null;
  listen(events: TransportEvents): void;
  /** Ends the session with a close code the client acts on (docs/protocol.md, "Close codes"). */
  close(code: number, reason: string): void;
  /** Cuts it without a goodbye. */
  terminate(): void;
  /** Nothing more the client sends is read (closed for abuse). */
  stopReading(): void;
}

export class WebSocketTransport implements ClientTransport {
  readonly kind = 'websocket';

  constructor(
    private readonly ws: WebSocket,
    readonly sink: Duplex,
  ) {}

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN && !this.sink.destroyed;
  }

  encode(frame: Frame): Buffer {
    return frame.wire;
  }

  heartbeat(): null {
    return null;
  }

  listen(events: TransportEvents): void {
    this.ws.on('message', events.message);
    this.ws.on('close', events.close);
    this.ws.on('error', events.error);
  }

  close(code: number, reason: string): void {
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
  }

  terminate(): void {
    this.ws.terminate();
  }

  stopReading(): void {
    this.ws.pause();
  }
}

const HEARTBEAT = Buffer.from(':\n\n');

/**
 * A server-sent-events stream. Each event that moves a channel's position carries the whole
 * stream's cursor as its `id:`, so a client (or a generic SSE library) that reconnects with
 * `Last-Event-ID` resumes every channel where it really is: the cursor is updated as frames
 * are written, not as they are queued (conflation and the alert lane reorder the queue).
 */
export class SseTransport implements ClientTransport {
  readonly kind = 'sse';
  private readonly cursor = new Map<string, { epoch: string; seq: number | null }>();
  private closedWith: number | null = null;

  constructor(
    private readonly res: ServerResponse,
    /** Whether the session still holds a subscription to a channel (its cursor entry counts). */
    private readonly subscribed: (channel: string) => boolean,
    /** Positions the stream resumed from (`since`, `Last-Event-ID`). */
    resumedFrom: ReadonlyMap<string, Since> = new Map(),
  ) {
    for (const [channel, { epoch, seq }] of resumedFrom) this.cursor.set(channel, { epoch, seq });
  }

  get sink(): Sink {
    return this.res;
  }

  get open(): boolean {
    return !this.res.destroyed && !this.res.writableEnded;
  }

  encode(frame: Frame): Buffer {
    const position = frame.position;
    if (position === null) return frame.sse;
    const known = this.cursor.get(position.channel);
    if (position.epoch !== null) {
      // `subscribed` or a snapshot: the epoch, and the seq unless a replay follows (then the
      // resume point stands until the replayed events move it).
      const seq = position.seq ?? (known?.epoch === position.epoch ? known.seq : null);
      this.cursor.set(position.channel, { epoch: position.epoch, seq });
    } else if (known) {
      known.seq = position.seq;
    } else {
      return frame.sse;
    }
    const held: [string, Since][] = [];
    for (const [channel, { epoch, seq }] of this.cursor)
      if (seq !== null && this.subscribed(channel)) held.push([channel, { epoch, seq }]);
    return Buffer.concat([Buffer.from(`id: ${formatCursor(held)}\n`), frame.sse]);
  }

  heartbeat(): Buffer {
    return HEARTBEAT;
  }

  listen(events: TransportEvents): void {
    // The peer went away (or we ended the response): the session closes with the code we
    // closed it with, else as a WebSocket that vanished (1006).
    this.res.on('close', () => events.close(this.closedWith ?? CloseCode.abnormal));
    this.res.on('error', events.error);
  }

  close(code: number, reason: string): void {
    if (this.closedWith !== null) return;
    this.closedWith = code;
    if (this.open) {
      this.res.write(Buffer.from(`data: ${JSON.stringify({ type: 'close', code, reason })}\n\n`));
      this.res.end();
    }
  }

  terminate(): void {
    this.res.destroy();
  }

  stopReading(): void {
    // Ops arrive by POST and a closing session reads none.
  }
}
