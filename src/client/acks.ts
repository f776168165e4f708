/**
 * Acknowledgements of risk alerts in flight (docs/client.md#acknowledging-risk-alerts): each
 * `ack` op gets an id, and its promise settles with the `acked` or `error` answering that id.
 * A connection that ends first rejects what is in flight: acknowledging again is safe (the
 * gateway keeps the first acknowledgement and answers every later one with it).
 */
import type { AckedMessage, AckOp } from '../protocol/index.js';
import type { AlertAckInfo, ClientError } from './types.js';

/** Why an `ack()` was not answered with an acknowledgement: `code` is a gateway error code
 * (`alert_unknown`, `forbidden`…) or `not_connected`. */
export class AckError extends Error implements ClientError {
  constructor(
    readonly code: string,
    message: string,
    readonly channel?: string,
  ) {
    super(message);
    this.name = 'AckError';
  }
}

interface Pending {
  readonly channel: string;
  readonly op: AckOp;
  resolve(ack: AlertAckInfo): void;
  reject(error: AckError): void;
}

/** Ids of acks are strings, so they never meet the numeric ids of subscribes. */
const PREFIX = 'ack-';

export class PendingAcks {
  private readonly pending = new Map<string, Pending>();
  private next = 0;

  /** Sends an `ack` with `send` (false when there is no connection to send it on). */
  ack(
    channel: string,
    epoch: string,
    seq: number,
    send: (op: AckOp) => boolean,
  ): Promise<AlertAckInfo> {
    const id = `${PREFIX}${++this.next}`;
    const op: AckOp = { op: 'ack', id, channel, epoch, seq };
    return new Promise((resolve, reject) => {
      if (!send(op)) {
        reject(
          new AckError('not_connected', 'not connected: acknowledge again once connected', channel),
        );
        return;
      }
      this.pending.set(id, { channel, op, resolve, reject });
    });
  }

  awaits(id: number | string | undefined): boolean {
    return typeof id === 'string' && this.pending.has(id);
  }

  answered(msg: AckedMessage): void {
    const pending = typeof msg.id === 'string' ? this.pending.get(msg.id) : undefined;
    if (!pending) return;
    this.pending.delete(msg.id as string);
    pending.resolve({
      channel: msg.channel,
      epoch: msg.epoch,
      seq: msg.seq,
      by: msg.by,
      at: msg.at,
    });
  }

  refused(id: string, code: string, message: string): void {
    const pending = this.pending.get(id);
    this.pending.delete(id);
    pending?.reject(new AckError(code, message, pending.channel));
  }

  /**
   * The connection moved to another transport without ending (docs/client.md): what is in
   * flight goes again on the new one, with the same ids; one that cannot be sent is dropped.
   */
  resend(send: (op: AckOp) => boolean): void {
    for (const [id, pending] of this.pending) if (!send(pending.op)) this.drop(id, pending);
  }

  /** The connection ended: what is in flight may or may not have been stored. */
  dropAll(): void {
    for (const [id, pending] of this.pending) this.drop(id, pending);
  }

  private drop(id: string, pending: Pending): void {
    this.pending.delete(id);
    pending.reject(
      new AckError(
        'not_connected',
        'connection lost before the answer: acknowledge again (it is safe)',
        pending.channel,
      ),
    );
  }
}
