/**
 * The reading side of a client connection (docs/security.md): every message is measured
 * (bytes before hello), rate-limited, parsed by the guarded parser, and handed on strictly
 * in arrival order, malformed ones included; what a step throws goes to the one reject path.
 */
import type WebSocket from 'ws';
import {
  ArchonError,
  parseChannel,
  PREAUTH_MAX_BYTES,
  type ClientOp,
  type ErrorCode,
  type ServerMessage,
} from '../protocol/index.js';
import type { Lane } from './frame.js';
import { parseClientMessage, rawText, type ParseResult } from './inbound.js';
import type { LogLimiter } from './logging.js';
import type { Metrics } from './metrics.js';
import { TokenBucket } from './token-bucket.js';

/** Every op but `pong`, which answers nothing and so needs no place in line. */
export type InboundOp = Exclude<ClientOp, { op: 'pong' }>;

/** What the receiver needs of its connection. */
export interface ReceiverHost {
  /** Until hello succeeds: the pre-auth byte budget applies. */
  readonly authenticating: boolean;
  /** Closing or closed: nothing more is read. */
  readonly ended: boolean;
  /** Fields that name the connection in a log line. */
  readonly logFields: Record<string, unknown>;
  pong(): void;
  /** Handles a valid op in its turn. */
  handle(op: InboundOp): void | Promise<void>;
  /** The reject path: an error for a catalogue code, closing when the code has a close code. */
  fail(code: ErrorCode, message?: string, id?: number | string, lane?: Lane): void;
  /** Queues a reply after those already queued. */
  reply(message: ServerMessage, lane?: Lane): void;
  /** Writes a last error and closes with 4400. */
  protocolError(error: ServerMessage, reason: string): void;
  /** An unexpected failure: close with 1011. */
  crash(err: unknown): void;
  terminate(): void;
}

export interface ReceiverLimits {
  readonly maxMessagesPerSecond: number;
}

/** Where the first op of an idle connection's chain starts. */
const SETTLED: Promise<void> = Promise.resolve();

export class Receiver {
  private readonly limiter: TokenBucket;
  /** Bytes received before hello succeeded (bounded by PREAUTH_MAX_BYTES). */
  private preauthBytes = 0;
  private strikes = 0;
  /** The ops still being handled, in order; null when none (nothing kept while idle). */
  private chain: Promise<void> | null = null;

  constructor(
    private readonly host: ReceiverHost,
    private readonly limits: ReceiverLimits,
    private readonly metrics: Metrics,
    private readonly noisyLog: LogLimiter,
    now: number,
  ) {
    this.limiter = new TokenBucket(limits.maxMessagesPerSecond, limits.maxMessagesPerSecond, now);
  }

  receive(data: WebSocket.RawData, isBinary: boolean, now: number): void {
    const host = this.host;
    if (host.ended) return;
    if (host.authenticating) {
      this.preauthBytes += byteLength(data);
      if (this.preauthBytes > PREAUTH_MAX_BYTES) {
        this.noisyLog.warn(
          { ...host.logFields, bytes: this.preauthBytes },
          'Connection closed: too much sent before hello',
        );
        host.fail(
          'unauthenticated_limit',
          `more than ${PREAUTH_MAX_BYTES} bytes sent before hello`,
        );
        return;
      }
    }
    if (!this.limiter.take(now)) {
      host.fail(
        'rate_limited',
        `more than ${this.limits.maxMessagesPerSecond} messages per second`,
      );
      return;
    }
    const parsed: ParseResult = isBinary
      ? {
          ok: false,
          code: 'bad_request',
          message: 'binary frames are not supported: send JSON text',
        }
      : parseClientMessage(rawText(data));
    if (!parsed.ok) {
      this.inOrder(() => this.strike(parsed.code, parsed.message, parsed.id), parsed.id);
      return;
    }
    this.dispatch(parsed.op);
  }

  /** An op validated elsewhere (an HTTP stream's POST, docs/protocol.md#http-streaming-fallback):
   * rate-limited and handled in order like one read from the socket. */
  accept(op: ClientOp, now: number): void {
    if (this.host.ended) return;
    if (!this.limiter.take(now)) {
      this.host.fail(
        'rate_limited',
        `more than ${this.limits.maxMessagesPerSecond} messages per second`,
      );
      return;
    }
    this.dispatch(op);
  }

  /** The stream's own subscriptions, named in its request: in order, not rate-limited
   * (bounded by WEBSOCKET_MAX_SUBSCRIPTIONS when the request was read). */
  submit(op: InboundOp): void {
    this.inOrder(
      () => this.host.handle(op),
      'id' in op ? op.id : undefined,
      'channel' in op ? op.channel : undefined,
    );
  }

  private dispatch(op: ClientOp): void {
    const host = this.host;
    if (op.op === 'pong') {
      host.pong();
      return;
    }
    this.inOrder(
      () => host.handle(op),
      'id' in op ? op.id : undefined,
      'channel' in op ? op.channel : undefined,
    );
  }

  /** A malformed message gets an error; a second one closes with 4400. */
  strike(code: ErrorCode, message: string, id?: number | string): void {
    if (this.host.ended) return;
    this.strikes++;
    this.metrics.error(code);
    const error: ServerMessage = { type: 'error', ...(id !== undefined && { id }), code, message };
    if (this.strikes >= 2) this.host.protocolError(error, `protocol error: ${message}`);
    else this.host.reply(error);
  }

  /**
   * Every message is answered in arrival order: a pipelined hello + subscribe just works,
   * and an error never overtakes the answer to an op sent before it.
   */
  private inOrder(step: () => void | Promise<void>, id?: number | string, channel?: string): void {
    const host = this.host;
    const next: Promise<void> = (this.chain ?? SETTLED)
      .then(step)
      .catch((err: unknown) => {
        if (err instanceof ArchonError) host.fail(err.code, err.message, id, laneFor(channel));
        else host.crash(err);
      })
      .catch((err: unknown) => {
        // Reporting the failure failed too (socket gone): nothing more to tell this client.
        this.noisyLog.error({ err, ...host.logFields }, 'Client error report failed');
        host.terminate();
      })
      .then(() => {
        if (this.chain === next) this.chain = null;
      });
    this.chain = next;
  }
}

/** Replies about an alert channel travel in its lane, so they keep their order with its
 * events (an `unsubscribed` must not arrive after the next `subscribed`). */
export function laneFor(channel: string | undefined): Lane {
  return channel !== undefined && parseChannel(channel)?.class === 'alert' ? 'priority' : 'normal';
}

function byteLength(data: WebSocket.RawData): number {
  if (Array.isArray(data)) return data.reduce((n, b) => n + b.length, 0);
  return data.byteLength;
}
