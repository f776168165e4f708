/**
 * What the Redis backplane reads back from Redis: script replies and pub/sub messages, checked
 * as they are turned into typed values (a reply of another shape is an error, never a guess).
 */
import { isExpired, type AlertAck, type StoredEvent } from '../../protocol/index.js';
import type { BackplaneEvent } from './backplane.js';

export function asArray(value: unknown): unknown[] {
  if (!Array.isArray(value)) throw new Error('Redis backplane: unexpected reply from Redis');
  return value as unknown[];
}

export function asString(value: unknown): string {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString();
  throw new Error('Redis backplane: unexpected reply from Redis');
}

export function asNumber(value: unknown): number {
  const n = typeof value === 'number' ? value : Number(asString(value));
  if (!Number.isFinite(n)) throw new Error('Redis backplane: unexpected reply from Redis');
  return n;
}

/** An XRANGE entry [`<seq>-1`, [field, value, …]] as a StoredEvent. */
export function toStoredEvent(channel: string, entry: unknown): StoredEvent {
  const [id, flat] = asArray(entry);
  const fields = asArray(flat);
  let key: string | null = null;
  let ts = 0;
  let data: unknown = null;
  let expiresAt: number | null = null;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = asString(fields[i]);
    const value = asString(fields[i + 1]);
    if (name === 'key') key = value;
    else if (name === 'ts') ts = Number(value);
    else if (name === 'data') data = JSON.parse(value) as unknown;
    else if (name === 'exp') expiresAt = Number(value);
  }
  const seq = Number.parseInt(asString(id), 10);
  return expiresAt === null
    ? { channel, seq, key, ts, data }
    : { channel, seq, key, ts, data, expires_at: expiresAt };
}

export function unexpired(events: StoredEvent[], now: number): StoredEvent[] {
  return events.some((e) => isExpired(e, now)) ? events.filter((e) => !isExpired(e, now)) : events;
}

/** An acknowledgement as ACK_LUA publishes it. */
export interface AckNotice {
  readonly acked: AlertAck & { readonly epoch: string };
  readonly channel: string;
  readonly seq: number;
}

/** A message on a channel's pub/sub channel: an event, or an acknowledgement of an alert. */
export function parseMessage(text: string): BackplaneEvent | AckNotice {
  const msg = JSON.parse(text) as Partial<Record<keyof BackplaneEvent | keyof AckNotice, unknown>>;
  if (typeof msg.acked === 'object' && msg.acked !== null) {
    const ack = msg.acked as Partial<Record<'epoch' | 'by' | 'at', unknown>>;
    if (
      typeof msg.channel !== 'string' ||
      typeof msg.seq !== 'number' ||
      typeof ack.epoch !== 'string' ||
      typeof ack.by !== 'string' ||
      typeof ack.at !== 'number'
    )
      throw new Error('not an acknowledgement');
    return {
      channel: msg.channel,
      seq: msg.seq,
      acked: { epoch: ack.epoch, by: ack.by, at: ack.at },
    };
  }
  if (
    typeof msg.channel !== 'string' ||
    typeof msg.seq !== 'number' ||
    typeof msg.ts !== 'number' ||
    typeof msg.epoch !== 'string' ||
    (msg.key !== null && typeof msg.key !== 'string')
  ) {
    throw new Error('not a backplane event');
  }
  const event = {
    channel: msg.channel,
    seq: msg.seq,
    key: msg.key,
    ts: msg.ts,
    data: msg.data,
    epoch: msg.epoch,
  };
  return typeof msg.expires_at === 'number' ? { ...event, expires_at: msg.expires_at } : event;
}
