/** Reads of the admin API that tests share, and filling a stopped client's queue. */
import { expect } from 'vitest';
import type { ConnectionEntry } from '../../src/protocol/index.js';
import { admin, publish, type TestGateway } from './gateway.js';

/** GET /websocket/connections: one entry per connection of the gateway. */
export async function connections(tg: TestGateway): Promise<ConnectionEntry[]> {
  const res = await admin(tg, 'GET', '/websocket/connections');
  expect(res.status).toBe(200);
  return res.body as ConnectionEntry[];
}

/** The listed connection with this client id, if the gateway still has it. */
export async function connectionOf(
  tg: TestGateway,
  clientId: string,
): Promise<ConnectionEntry | undefined> {
  return (await connections(tg)).find((c) => c.client_id === clientId);
}

/** How many messages wait in the gateway's queue for this client. */
export async function queueDepth(tg: TestGateway, clientId: string): Promise<number> {
  const conn = await connectionOf(tg, clientId);
  if (!conn) throw new Error(`connection ${clientId} not listed`);
  return conn.queue_depth;
}

/** 20 KB of padding: large events fill a stopped client's socket and kernel buffers fast. */
const PAD = 'x'.repeat(20_000);
/** How many events publishUntilQueued and bigSignals publish at a time. */
export const BATCH = 40;

/** A batch of large signals numbered from + 1 onwards. */
export function bigSignals(from: number): { channel: string; data: { n: number; pad: string } }[] {
  return Array.from({ length: BATCH }, (_, i) => ({
    channel: 'signals',
    data: { n: from + i + 1, pad: PAD },
  }));
}

/**
 * Publishes large signals in batches until the gateway holds messages queued for a client
 * that stopped reading (its socket and the kernel buffers are full), or has already let it
 * go. Returns how many events were published: the `n` of the last one.
 */
export async function publishUntilQueued(tg: TestGateway, clientId: string): Promise<number> {
  let published = 0;
  for (let batch = 0; batch < 60; batch++) {
    const res = await publish(tg, { events: bigSignals(published) });
    expect(res.status).toBe(200);
    published += BATCH;
    const conn = await connectionOf(tg, clientId);
    if (conn === undefined || conn.state !== 'open' || conn.queue_depth > 0) return published;
  }
  throw new Error('the stopped client never had messages queued');
}
