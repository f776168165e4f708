/**
 * Risk alerts on the Redis backplane (docs/protocol.md#ack, docs/http-api.md#get-apiv1adminalerts):
 * acknowledgements, the unacknowledged list, the operators' listing and delivery counts. They
 * share with the rest of the backplane only the command connection and the key names.
 */
import { parseChannel, type AlertAck, type StoredEvent } from '../../protocol/index.js';
import {
  historyBounds,
  type DeliveryCount,
  type HeldAlert,
  type HistoryLimits,
  type UnackedRead,
} from './backplane.js';
import { newEpoch } from './memory.js';
import { primaries, type RedisClient } from './redis-connect.js';
import type { RedisKeys } from './redis-keys.js';
import { asArray, asNumber, asString, toStoredEvent, unexpired } from './redis-replies.js';
import type { ArchonScripts } from './redis-scripts.js';

/** SCAN batch of the alert listing. */
const SCAN_COUNT = 1000;

export class RedisAlerts {
  constructor(
    private readonly connection: () => RedisClient & ArchonScripts,
    private readonly keys: RedisKeys,
    private readonly limits: HistoryLimits,
    private readonly now: () => number,
    /** How long acknowledgements and deliveries outlive the last write to them (ms). */
    private readonly idleMs: number,
  ) {}

  async ack(
    channel: string,
    epoch: string,
    seq: number,
    ack: AlertAck,
  ): Promise<{ ack: AlertAck; first: boolean } | null> {
    const k = this.keys.channel(channel);
    const ttl = historyBounds(this.limits, 'alert').ttlMs;
    const [outcome, json] = asArray(
      await this.connection().archonAck(
        k.meta,
        k.stream,
        k.acks,
        epoch,
        seq,
        ack.by,
        ack.at,
        this.now(),
        ttl,
        this.idleMs,
        k.events,
        channel,
      ),
    );
    if (asNumber(outcome) === 0) return null;
    const standing = JSON.parse(asString(json)) as AlertAck;
    return { ack: { by: standing.by, at: standing.at }, first: asNumber(outcome) === 1 };
  }

  async unacked(channel: string): Promise<UnackedRead> {
    const { epoch, events, acks } = await this.read(channel, false);
    return { epoch, alerts: events.filter((e) => !acks.has(e.seq)) };
  }

  /** Every risk channel's alerts: the channels are found by SCAN (their streams), on every
   * primary of a cluster, so no index has to be kept in step with publishes. Bounded by the
   * alerts held, for operators only. */
  async alerts(): Promise<HeldAlert[]> {
    const channels = new Set<string>();
    for (const node of primaries(this.connection())) {
      let cursor = '0';
      do {
        const [next, found] = await node.scan(
          cursor,
          'MATCH',
          this.keys.alertStreams(),
          'COUNT',
          SCAN_COUNT,
        );
        cursor = next;
        for (const key of found) channels.add(this.keys.channelOfStream(key));
      } while (cursor !== '0');
    }
    const out: HeldAlert[] = [];
    for (const channel of channels) {
      if (parseChannel(channel)?.class !== 'alert') continue;
      const { epoch, events, acks, deliveries } = await this.read(channel, true);
      for (const event of events)
        out.push({
          ...event,
          epoch,
          ack: acks.get(event.seq) ?? null,
          deliveries: deliveries.get(event.seq) ?? {},
        });
    }
    return out;
  }

  /** One pipeline per channel: in a cluster a pipeline goes to one node, and a channel's keys
   * live on one. */
  async countDeliveries(counts: readonly DeliveryCount[]): Promise<void> {
    const byChannel = new Map<string, DeliveryCount[]>();
    for (const c of counts) byChannel.set(c.channel, [...(byChannel.get(c.channel) ?? []), c]);
    await Promise.all(
      [...byChannel].map(async ([channel, group]) => {
        const key = this.keys.channel(channel).deliv;
        const pipeline = this.connection().pipeline();
        for (const c of group)
          pipeline.hincrby(key, `${c.epoch}:${c.seq}:${c.user}`, c.count).pexpire(key, this.idleMs);
        const results = (await pipeline.exec()) ?? [];
        const failed = results.find(([err]) => err !== null);
        if (failed) throw failed[0] as Error;
      }),
    );
  }

  private async read(
    channel: string,
    withDeliveries: boolean,
  ): Promise<{
    epoch: string;
    events: StoredEvent[];
    acks: Map<number, AlertAck>;
    deliveries: Map<number, Record<string, number>>;
  }> {
    const k = this.keys.channel(channel);
    const [epochReply, entries, ackFlat, delivFlat] = asArray(
      await this.connection().archonAlerts(
        k.meta,
        k.stream,
        k.state,
        k.acks,
        k.deliv,
        newEpoch(),
        String(this.now()),
        String(historyBounds(this.limits, 'alert').ttlMs),
        withDeliveries ? '1' : '0',
      ),
    );
    const epoch = asString(epochReply);
    const acks = new Map<number, AlertAck>();
    const ackFields = asArray(ackFlat);
    for (let i = 0; i + 1 < ackFields.length; i += 2) {
      const ack = JSON.parse(asString(ackFields[i + 1])) as AlertAck & { epoch: string };
      if (ack.epoch === epoch) acks.set(Number(asString(ackFields[i])), { by: ack.by, at: ack.at });
    }
    const deliveries = new Map<number, Record<string, number>>();
    const delivFields = asArray(delivFlat);
    for (let i = 0; i + 1 < delivFields.length; i += 2) {
      const match = /^([^:]*):(\d+):(.*)$/s.exec(asString(delivFields[i]));
      if (!match || match[1] !== epoch) continue;
      const seq = Number(match[2]);
      const byUser = deliveries.get(seq) ?? {};
      byUser[match[3] as string] = asNumber(delivFields[i + 1]);
      deliveries.set(seq, byUser);
    }
    const events = unexpired(
      asArray(entries).map((entry) => toStoredEvent(channel, entry)),
      this.now(),
    );
    return { epoch, events, acks, deliveries };
  }
}
