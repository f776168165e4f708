/**
 * Cluster mode on a Redis Cluster (docs/cluster.md#redis-cluster): a real local cluster of three
 * primaries and three replicas (test/support/redis-cluster.ts), in-process gateways with
 * ARCHON_REDIS_URL=redis+cluster://…. Delivery, resume and snapshots across instances, the admin
 * API across instances, where channels land among the primaries, expiring state keys, and a
 * primary killed while a publisher publishes and subscribers read.
 */
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AlertsAnswer, StatusAnswer, ConnectionEntry } from '../../src/protocol/index.js';
import type { BackplaneEvent, BackplaneListener } from '../../src/server/backplane/backplane.js';
import { RedisKeys } from '../../src/server/backplane/redis-keys.js';
import { RedisBackplane } from '../../src/server/backplane/redis.js';
import { keySlot } from '../../src/server/backplane/redis-slot.js';
import { TestClient } from '../support/client.js';
import { eventually } from '../support/eventually.js';
import {
  admin,
  publish,
  signToken,
  startGateway,
  type PublishAnswer,
  type TestGateway,
} from '../support/gateway.js';
import { formatReport, Publisher, settle, type Accepted } from '../support/loss.js';
import {
  startRedisCluster,
  type ClusterNodeInfo,
  type TestRedisCluster,
} from '../support/redis-cluster.js';
import { freePort } from '../support/redis.js';
import { ResumingClient } from '../support/resuming-client.js';
import { TestStream } from '../support/sse.js';

let rc: TestRedisCluster;
const gateways: TestGateway[] = [];
const clients: TestClient[] = [];
const resuming: ResumingClient[] = [];
const publishers: Publisher[] = [];
const backplanes: RedisBackplane[] = [];

beforeAll(async () => {
  rc = await startRedisCluster({ maxSeconds: 300 });
}, 60_000);

afterAll(async () => {
  await rc.stop();
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.ws.terminate();
  for (const c of resuming.splice(0)) c.stop();
  await Promise.all(publishers.splice(0).map((p) => p.stop()));
  await Promise.all(gateways.splice(0).map((g) => g.stop()));
  await Promise.all(backplanes.splice(0).map((bp) => bp.stop()));
  // Each test starts from an empty cluster.
  await rc.flush();
}, 30_000);

async function instance(server: string, env: Record<string, string> = {}): Promise<TestGateway> {
  const g = await startGateway({
    ARCHON_REDIS_URL: rc.url,
    ARCHON_SERVER_ID: server,
    WEBSOCKET_SHUTDOWN_TIMEOUT: '2',
    ...env,
  });
  gateways.push(g);
  return g;
}

async function client(g: TestGateway, accounts = ['ACC1']): Promise<TestClient> {
  const c = await TestClient.authed(g.ws, await signToken({ accounts }));
  clients.push(c);
  return c;
}

/** The primary serving a slot now. */
function ownerOf(primaries: readonly ClusterNodeInfo[], slot: number): ClusterNodeInfo {
  const owner = primaries.find((p) =>
    p.slots.some(([first, last]) => slot >= first && slot <= last),
  );
  if (!owner) throw new Error(`no primary serves slot ${slot}`);
  return owner;
}

/** A direct connection to one node (no redirects): where a key really is. */
async function onNode<T>(port: number, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
  redis.on('error', () => {});
  await redis.connect();
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

const LIMITS = { streamSize: 100, streamTtlMs: 60_000, alertSize: 200, alertTtlMs: 600_000 };

class Recorder implements BackplaneListener {
  readonly events: BackplaneEvent[] = [];
  readonly resyncs: string[][] = [];
  event(event: BackplaneEvent): void {
    this.events.push(event);
  }
  acked(): void {}
  acksMissed(): void {}
  resync(channels: string[]): void {
    this.resyncs.push(channels);
  }
  seqs(channel: string): number[] {
    return this.events.filter((e) => e.channel === channel).map((e) => e.seq);
  }
}

async function backplane(url = rc.url): Promise<{ bp: RedisBackplane; listener: Recorder }> {
  const bp = new RedisBackplane({ url, limits: LIMITS });
  const listener = new Recorder();
  await bp.start(listener);
  backplanes.push(bp);
  return { bp, listener };
}

describe('cluster mode on a Redis Cluster', () => {
  it('delivers, replays with since and serves snapshots across two instances', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const onB = await client(b);
    const sub = await onB.subscribe('risk:ACC1');
    await onB.subscribe('signals');
    // One batch over channels of three different slots, published on the other instance.
    const res = await publish(a, {
      events: [
        { channel: 'risk:ACC1', data: { n: 1 }, id: 'r1' },
        { channel: 'signals', data: { n: 1 } },
        { channel: 'positions:ACC1', key: 'EURUSD', data: { size: 1 } },
      ],
    });
    expect(res.status).toBe(200);
    expect((res.body as PublishAnswer).results.map((r) => [r.channel, r.seq])).toEqual([
      ['risk:ACC1', 1],
      ['signals', 1],
      ['positions:ACC1', 1],
    ]);
    await eventually(
      () => onB.events('risk:ACC1').length === 1 && onB.events('signals').length === 1,
      'both events on B',
    );
    // A retry of an id is the same event, on either instance.
    const retry = await publish(b, { channel: 'risk:ACC1', data: { n: 1 }, id: 'r1' });
    expect((retry.body as PublishAnswer).results[0]).toMatchObject({ seq: 1, duplicate: true });

    onB.ws.terminate();
    for (let n = 2; n <= 4; n++) await publish(b, { channel: 'risk:ACC1', data: { n } });
    const onA = await client(a);
    const resumed = await onA.subscribe('risk:ACC1', { epoch: sub.epoch as string, seq: 1 });
    expect(resumed).toMatchObject({ recovered: true, replayed: 3, epoch: sub.epoch });
    await eventually(() => onA.events('risk:ACC1').length === 3, 'the replay on A');
    expect(onA.events('risk:ACC1').map((m) => (m.data as { n: number }).n)).toEqual([2, 3, 4]);

    await publish(b, { channel: 'positions:ACC1', key: 'GBPUSD', data: { size: 2 } });
    await publish(a, { channel: 'positions:ACC1', key: 'EURUSD', data: null });
    await onA.subscribe('positions:ACC1');
    expect(await onA.type('snapshot')).toMatchObject({
      seq: 3,
      entries: [{ key: 'GBPUSD', data: { size: 2 } }],
    });
  });

  it('answers status, connections and alerts for every instance', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    await client(a);
    const watcher = await client(b);
    await client(b);
    await watcher.subscribe('risk:ACC1');
    await publish(a, { channel: 'risk:ACC2', data: { level: 'warning' } });
    await publish(b, { channel: 'risk:ACC1', data: { level: 'critical' } });
    await watcher.type('event');

    const status = (await admin(a, 'GET', '/websocket/status')).body as StatusAnswer & {
      missing_instances: string[];
    };
    expect(status).toMatchObject({ mode: 'cluster', active_connections: 3, missing_instances: [] });
    expect(status.instances.map((i) => [i.server, i.active_connections, i.healthy])).toEqual([
      ['api-1', 1, true],
      ['api-2', 2, true],
    ]);
    const list = (await admin(a, 'GET', '/websocket/connections')).body as ConnectionEntry[];
    expect(list.map((c) => c.server).sort()).toEqual(['api-1', 'api-2', 'api-2']);
    // Risk channels on every primary are found (SCAN runs on each).
    const alerts = (await admin(b, 'GET', '/alerts?state=all')).body as AlertsAnswer;
    expect(alerts.alerts.map((e) => e.channel).sort()).toEqual(['risk:ACC1', 'risk:ACC2']);
    // Deliveries are counted by B (the watcher's instance) and written in batches; A reads them.
    await eventually(async () => {
      const now = (await admin(a, 'GET', '/alerts?state=unacked')).body as AlertsAnswer;
      return now.alerts.find((e) => e.channel === 'risk:ACC1')?.deliveries['user-1'] === 1;
    }, 'the delivery of risk:ACC1 to be counted');
    const primaries = await rc.primaries();
    const owners = new Set(
      ['risk:ACC1', 'risk:ACC2'].map((c) => ownerOf(primaries, keySlot(c)).port),
    );
    // The two channels live on two primaries: the listing did not just read one.
    expect(owners.size).toBe(2);
  });

  it('takes ops for an HTTP stream on any instance over its sharded channel', async () => {
    const [a, b] = [await instance('sse-a'), await instance('sse-b')];
    const token = await signToken();
    const s = await TestStream.welcomed(a.http, { token });
    try {
      const answer = await s.post(
        { op: 'subscribe', id: 9, channel: 'signals' },
        token,
        s.clientId,
        b.http,
      );
      expect(answer).toEqual({ status: 202, body: { accepted: 1 } });
      expect(await s.next((m) => m.id === 9)).toMatchObject({ type: 'subscribed' });
      s.close();
      await eventually(() => a.gateway.connections.size === 0, 'the stream to close');
      const gone = await s.post({ op: 'ping' }, token, s.clientId, b.http);
      expect(gone).toMatchObject({ status: 404, body: { error: { code: 'sse_session_unknown' } } });
    } finally {
      s.close();
    }
  });

  it('deletes an expired state key once, with a delete event on every instance', async () => {
    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const onB = await client(b);
    await onB.subscribe('positions:ACC1');
    await onB.type('snapshot');
    const res = await publish(a, {
      channel: 'positions:ACC1',
      key: 'EURUSD',
      data: { size: 1 },
      ttl: 0.5,
    });
    expect(res.status).toBe(200);
    // The delete comes from the sweep of whichever instance gets there first, once.
    await eventually(
      () => onB.events('positions:ACC1').some((m) => m.data === null),
      'the delete event',
      { timeoutMs: 15_000 },
    );
    expect(onB.events('positions:ACC1').map((m) => [m.seq, m.key, m.data])).toEqual([
      [1, 'EURUSD', { size: 1 }],
      [2, 'EURUSD', null],
    ]);
    // Its index entry is gone with it: nothing is left to sweep.
    const keys = new RedisKeys('archon:', 'cluster');
    await eventually(async () => {
      const primaries = await rc.primaries();
      const bucket = keys.expiryBucket('positions:ACC1');
      const left = await onNode(ownerOf(primaries, keySlot(bucket)).port, (r) => r.zcard(bucket));
      return left === 0;
    }, 'the expiry index to empty');
  });

  it('spreads the channels of 10,000 accounts within 10 % across the three primaries', async () => {
    const channels = ['signals'];
    for (let i = 1; i <= 10_000; i++) {
      const account = `ACC${String(i).padStart(5, '0')}`;
      channels.push(`positions:${account}`, `risk:${account}`, `signals:${account}`);
    }
    const keys = new RedisKeys('archon:', 'cluster');
    const primaries = await rc.primaries();
    const perPrimary = new Map<number, number>(primaries.map((p) => [p.port, 0]));
    for (const channel of channels) {
      const k = keys.channel(channel);
      const slot = calculateSlot(k.meta);
      // Every key of a channel, and its pub/sub channel, share its slot; ours agrees with ioredis.
      for (const key of [k.stream, k.state, k.exp, k.acks, k.deliv, k.events])
        expect(calculateSlot(key)).toBe(slot);
      expect(calculateSlot(keys.idempotency(channel, 'id-1'))).toBe(slot);
      expect(keySlot(k.meta)).toBe(slot);
      const port = ownerOf(primaries, slot).port;
      perPrimary.set(port, (perPrimary.get(port) ?? 0) + 1);
    }
    const counts = [...perPrimary.values()];
    const mean = channels.length / primaries.length;
    console.log(
      `slot balance: ${channels.length} channels over ${primaries.length} primaries: ` +
        `${counts.join(' / ')} (mean ${mean.toFixed(0)}, ` +
        `max deviation ${((Math.max(...counts.map((n) => Math.abs(n - mean))) / mean) * 100).toFixed(2)} %)`,
    );
    expect(counts).toHaveLength(3);
    for (const n of counts) expect(Math.abs(n - mean) / mean).toBeLessThan(0.1);

    // Where the keys really land: a publish puts each channel's keys on the predicted primary.
    const g = await instance('api-1');
    const sample = channels.slice(0, 30);
    for (const channel of sample) {
      const event = channel.startsWith('positions:')
        ? { channel, key: 'EURUSD', data: { size: 1 } }
        : { channel, data: { n: 1 } };
      expect((await publish(g, event)).status).toBe(200);
    }
    for (const channel of sample) {
      const meta = keys.channel(channel).meta;
      const port = ownerOf(primaries, keySlot(meta)).port;
      expect(await onNode(port, (r) => r.exists(meta)), `${channel} on ${port}`).toBe(1);
    }
  });

  it('replays what a dropped connection to one primary missed, in order, without a gap', async () => {
    const [a, b] = [await backplane(), await backplane()];
    const channel = 'signals:ACC9';
    await b.bp.subscribe(channel);
    const publishOne = (n: number) => a.bp.publish([{ channel, key: null, data: n }]);
    await publishOne(1);
    await eventually(() => b.listener.seqs(channel).length === 1, 'the first event');
    const owner = ownerOf(await rc.primaries(), keySlot(channel));
    // Only subscriber connections drop: the primary keeps its data and takes A's publishes.
    const killed = await onNode(owner.port, (r) => r.call('CLIENT', 'KILL', 'TYPE', 'pubsub'));
    expect(killed).toBeGreaterThanOrEqual(1);
    for (let n = 2; n <= 5; n++) await publishOne(n);
    await eventually(() => b.listener.seqs(channel).length === 5, 'the replay');
    expect(b.listener.seqs(channel)).toEqual([1, 2, 3, 4, 5]);
    expect(b.listener.events.map((e) => e.data)).toEqual([1, 2, 3, 4, 5]);
    expect(b.listener.resyncs).toEqual([]);
    await publishOne(6);
    await eventually(() => b.listener.seqs(channel).length === 6, 'live events after it');
  });

  it('refuses to start when no node of the cluster answers, naming the nodes without credentials', async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const bp = new RedisBackplane({
      url: `redis+cluster://app:s3cret@127.0.0.1:${p1},127.0.0.1:${p2}/`,
      limits: LIMITS,
    });
    const failure = await bp.start(new Recorder()).then(
      () => null,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(Error);
    const message = (failure as Error).message;
    expect(message).toContain(`cannot connect to redis+cluster://127.0.0.1:${p1},127.0.0.1:${p2}/`);
    expect(message).not.toContain('s3cret');
    expect(bp.healthy()).toBe(false);
  });

  // Last: it leaves one primary without a replica.
  it('survives a primary killed under load: 503 during the gap, every acknowledged event delivered once or announced as a gap', async () => {
    const accounts = ['ACC1', 'ACC2', 'ACC3', 'ACC4', 'ACC5', 'ACC6'];
    const candidates = ['signals', ...accounts.flatMap((a) => [`risk:${a}`, `signals:${a}`])];
    const primaries = await rc.primaries();
    const slotOwner = (channel: string) => ownerOf(primaries, keySlot(channel)).port;
    // The victim is the primary serving risk:ACC1; two of its channels and two elsewhere.
    const victim = slotOwner('risk:ACC1');
    const onVictim = candidates.filter((c) => slotOwner(c) === victim).slice(0, 2);
    const elsewhere = candidates.filter((c) => slotOwner(c) !== victim).slice(0, 2);
    expect(onVictim).toHaveLength(2);
    expect(elsewhere).toHaveLength(2);
    const channels = [...onVictim, ...elsewhere];

    const [a, b] = [await instance('api-1'), await instance('api-2')];
    const token = await signToken({ sub: 'trader-1', accounts });
    for (const [i, g] of [a, a, b, b].entries()) {
      const c = new ResumingClient({ url: g.ws, token, channels, name: `c${i}` });
      resuming.push(c);
      await c.start(20_000);
    }
    const pub = new Publisher({ url: a.http, channels, rate: 20, idPrefix: 'failover' });
    publishers.push(pub);
    pub.start();
    const count = (chs: readonly string[], pred: (x: Accepted) => boolean = () => true) =>
      pub.accepted.filter((x) => chs.includes(x.channel) && pred(x)).length;
    await eventually(() => count(channels) >= 20 * channels.length, 'traffic before the kill', {
      timeoutMs: 20_000,
    });
    const before = new Map(
      channels.map((ch) => [ch, pub.accepted.find((x) => x.channel === ch)?.epoch]),
    );

    const promoted = await rc.killPrimary(victim);
    // Traffic after the replica took over, in the new epoch of the victim's channels.
    const acceptedAtPromotion = pub.accepted.length;
    await eventually(
      () =>
        onVictim.every(
          (ch) =>
            pub.accepted.filter((x, i) => i >= acceptedAtPromotion && x.channel === ch).length >=
            20,
        ),
      'traffic after the failover',
      { timeoutMs: 30_000 },
    );
    await pub.stop();

    const gapsExcuse = (channel: string, epoch: string) =>
      onVictim.includes(channel) && before.get(channel) === epoch;
    const report = await settle(resuming, pub, channels, 30_000, { gapsExcuse });
    console.log(formatReport(`failover of ${victim} to ${promoted.port}`, report));
    console.log(
      `failover: ${pub.accepted.length} accepted, retries ${JSON.stringify([...pub.retries])}, ` +
        `${report.total.gaps} gaps, ${report.total.inGaps} events in announced gaps`,
    );
    const detail = report.problems.slice(0, 10).join('\n');
    expect(pub.failures).toEqual([]);
    // Publishes that could not be stored during the gap were refused, and retried.
    expect(pub.retries.get('503') ?? 0).toBeGreaterThan(0);
    expect(report.total.lost, detail).toBe(0);
    expect(report.total.dup, detail).toBe(0);
    expect(report.total.ooo, detail).toBe(0);
    expect(report.total.anomalies, detail).toBe(0);
    expect(report.total.skips, detail).toBe(0);

    for (const ch of onVictim) {
      // The replica's copy may lack what the dead primary acknowledged: a new epoch, announced.
      const epochs = new Set(pub.accepted.filter((x) => x.channel === ch).map((x) => x.epoch));
      expect(epochs.size, `${ch}: a new epoch after the failover`).toBe(2);
      for (const c of resuming)
        expect(c.log(ch).gaps.length, `${c.name} ${ch} told of the gap`).toBeGreaterThan(0);
    }
    for (const ch of elsewhere) {
      const epochs = new Set(pub.accepted.filter((x) => x.channel === ch).map((x) => x.epoch));
      expect(epochs.size, `${ch}: same epoch`).toBe(1);
      for (const c of resuming) expect(c.log(ch).gaps, `${c.name} ${ch}`).toEqual([]);
    }
    // A receipt nobody saw accepted can only be of a victim channel's old epoch: stored and
    // fanned out, then lost with the primary before its answer (the retry went to the new one).
    const acceptedKeys = new Set(pub.accepted.map((x) => `${x.channel} ${x.epoch}:${x.seq}`));
    for (const c of resuming)
      for (const ch of channels)
        for (const [epoch, seqs] of c.log(ch).received)
          for (const seq of seqs)
            if (!acceptedKeys.has(`${ch} ${epoch}:${seq}`))
              expect(gapsExcuse(ch, epoch), `${c.name} ${ch} ${epoch}:${seq}`).toBe(true);
    // 200 means stored: every event acknowledged in a current epoch is in its history.
    for (const ch of channels) {
      const current = pub.accepted.filter((x) => x.channel === ch && x.epoch !== before.get(ch));
      const held = current.length > 0 ? current : pub.accepted.filter((x) => x.channel === ch);
      const res = await fetch(`${b.http}/api/v1/history?channel=${ch}&since_seq=0`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const history = (await res.json()) as { epoch: string; events: { seq: number }[] };
      const stored = new Set(history.events.map((e) => e.seq));
      for (const x of held) {
        expect(x.epoch, ch).toBe(history.epoch);
        expect(stored.has(x.seq), `${ch} ${x.epoch}:${x.seq} stored`).toBe(true);
      }
    }
    // What the operator sees: each instance says it replayed or resynced the moved channels.
    for (const g of [a, b]) {
      const restored = g.logs.filter((l) => l.message === 'Redis backplane subscriptions restored');
      const resynced = restored.flatMap((l) => l.resynced as string[]);
      for (const ch of onVictim) expect(resynced, `${g.config.serverId}`).toContain(ch);
    }
  }, 110_000);
});
