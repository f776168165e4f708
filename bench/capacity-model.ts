/**
 * The capacity model of docs/capacity.md: from measured costs (CPU per delivery and per event,
 * memory per connection, Redis CPU per published event) and a publish mix, how many gateway
 * workers (one Node process per core), nodes and Redis Cluster shards a load needs, and how
 * many bytes cross each wire. Pure functions only: bench/capacity.ts prints them and checks
 * them against a small run; test/unit/capacity-model.test.ts pins them. The formulas are
 * written out in docs/capacity.md with the same names.
 */

/** Who is connected and what is published to them, per second. */
export interface Mix {
  /** Connected traders, one connection and one account each. */
  readonly traders: number;
  /** Events on an account's `positions:<account>` channel per second (all its positions). */
  readonly positionEventsPerAccount: number;
  /** Publish scripts per account per second: the engine batches an account's changed
   * positions per tick, and one channel's events in a batch are one script (one hash slot). */
  readonly positionBatchesPerAccount: number;
  /** Events per second on the shared `signals` channel, which every trader subscribes to. */
  readonly signalRate: number;
  /** Risk alerts per account per hour (`risk:<account>`). */
  readonly alertsPerAccountPerHour: number;
  /** JSON bytes of an event's `data`, per class. */
  readonly positionDataBytes: number;
  readonly signalDataBytes: number;
  readonly alertDataBytes: number;
}

/** What one worker (one gateway process on one core) and one Redis shard cost. */
export interface Costs {
  /** Gateway CPU per delivery of an event to one connection (fan-out path), µs. */
  readonly usPerDelivery: number;
  /** Gateway CPU per event an instance takes in (its share of the HTTP publish, the script
   * round trip, the pub/sub message parsed, history, the frame built once), µs. */
  readonly usPerEvent: number;
  /** Gateway CPU per connected, idle connection per second (pings, liveness sweep), µs/s. */
  readonly usPerConnectionSecond: number;
  /** RSS of a worker with nothing connected, MB. */
  readonly baseRssMb: number;
  /** RSS per connection under load, KB (idle connections cost less). */
  readonly kbPerConnection: number;
  /** Redis CPU per published event inside a publish script, at the mix's batch size, µs. */
  readonly redisUsPerEvent: number;
  /** Redis CPU per copy of a pub/sub message to one more subscribed instance, µs. */
  readonly redisUsPerPubsubCopy: number;
}

/** How hard each resource may run, and how a node is cut. */
export interface Budget {
  /** Share of a core one worker may use in steady state; the rest absorbs reconnect storms
   * (sign-ins are CPU) and bursts. */
  readonly workerCpuShare: number;
  /** Connections one worker may hold at most (WEBSOCKET_MAX_CONNECTIONS). */
  readonly maxConnectionsPerWorker: number;
  /** Workers (cores) per gateway node. */
  readonly workersPerNode: number;
  /** Share of one core a Redis primary may use for commands (Redis runs them on one thread). */
  readonly redisCpuShare: number;
  /** Network a Redis shard may move each way, bytes per second. */
  readonly redisBytesPerSecond: number;
}

/** Event and delivery rates of a mix, per second, for the whole system. */
export interface Rates {
  readonly positionEvents: number;
  readonly signalEvents: number;
  readonly alertEvents: number;
  /** Publish scripts Redis runs (one per channel per batch). */
  readonly scripts: number;
  readonly positionDeliveries: number;
  readonly signalDeliveries: number;
  readonly alertDeliveries: number;
  readonly deliveries: number;
}

export function rates(mix: Mix): Rates {
  const positionEvents = mix.traders * mix.positionEventsPerAccount;
  const alertEvents = (mix.traders * mix.alertsPerAccountPerHour) / 3600;
  const signalEvents = mix.signalRate;
  // Each account's channel has one subscriber (its trader); `signals` has every trader.
  const positionDeliveries = positionEvents;
  const alertDeliveries = alertEvents;
  const signalDeliveries = signalEvents * mix.traders;
  return {
    positionEvents,
    signalEvents,
    alertEvents,
    scripts: mix.traders * mix.positionBatchesPerAccount + signalEvents + alertEvents,
    positionDeliveries,
    signalDeliveries,
    alertDeliveries,
    deliveries: positionDeliveries + signalDeliveries + alertDeliveries,
  };
}

/**
 * Gateway CPU of the whole fleet in cores, with `workers` processes:
 * deliveries × usPerDelivery + (position + alert events) × usPerEvent (each reaches the one
 * instance holding its trader) + signal events × workers × usPerEvent (each reaches every
 * instance) + traders × usPerConnectionSecond.
 */
export function gatewayCores(mix: Mix, costs: Costs, workers: number): number {
  const r = rates(mix);
  const us =
    r.deliveries * costs.usPerDelivery +
    (r.positionEvents + r.alertEvents) * costs.usPerEvent +
    r.signalEvents * workers * costs.usPerEvent +
    mix.traders * costs.usPerConnectionSecond;
  return us / 1e6;
}

/** RSS of one worker holding `connections` under load, MB. */
export function workerRssMb(costs: Costs, connections: number): number {
  return costs.baseRssMb + (connections * costs.kbPerConnection) / 1024;
}

export interface Fleet {
  readonly workers: number;
  /** Which bound set the number of workers. */
  readonly boundBy: 'cpu' | 'connections';
  readonly nodes: number;
  readonly connectionsPerWorker: number;
  readonly cores: number;
  /** Share of a core each worker uses in steady state. */
  readonly workerCpu: number;
  readonly rssPerWorkerMb: number;
  readonly memoryPerNodeGb: number;
}

/**
 * The fewest workers that keep each under workerCpuShare of a core and under
 * maxConnectionsPerWorker. CPU bound: W ≥ (fleet µs/s without the signal term) /
 * (share × 1e6 − signalRate × usPerEvent), since every worker pays for every signal.
 */
export function fleet(mix: Mix, costs: Costs, budget: Budget): Fleet {
  const fixed = gatewayCores(mix, costs, 0) * 1e6;
  const perWorkerRoom = budget.workerCpuShare * 1e6 - mix.signalRate * costs.usPerEvent;
  if (perWorkerRoom <= 0) throw new Error('the signals alone fill a worker');
  const byCpu = Math.ceil(fixed / perWorkerRoom);
  const byConnections = Math.ceil(mix.traders / budget.maxConnectionsPerWorker);
  const workers = Math.max(byCpu, byConnections, 1);
  const cores = gatewayCores(mix, costs, workers);
  const connectionsPerWorker = mix.traders / workers;
  const rssPerWorkerMb = workerRssMb(costs, connectionsPerWorker);
  return {
    workers,
    boundBy: byCpu >= byConnections ? 'cpu' : 'connections',
    nodes: Math.ceil(workers / budget.workersPerNode),
    connectionsPerWorker,
    cores,
    workerCpu: cores / workers,
    rssPerWorkerMb,
    memoryPerNodeGb: (budget.workersPerNode * rssPerWorkerMb) / 1024,
  };
}

// ---------------------------------------------------------------------------------------------
// Redis: what one publish costs, counted from the publish script (redis-scripts.ts).

/**
 * Commands a publish script runs per event in a Redis Cluster (commandstats counts them
 * besides the EVALSHA): GET idem (with an id), CLUSTER MYID and HMGET meta (ensure_epoch, run
 * per event), HINCRBY seq, then XADD + PEXPIRE (stream, alert) or HSET + ZREM (state without
 * ttl), SPUBLISH, SET idem (with an id). One primary runs HGET instead of CLUSTER MYID +
 * HMGET, so one fewer.
 */
export function redisCallsPerEvent(o: { withId: boolean; cluster: boolean }): number {
  return (o.withId ? 2 : 0) + (o.cluster ? 2 : 1) + 1 + 2 + 1;
}

/** Commands per second Redis runs for a mix: one EVALSHA per script plus the calls of each
 * event. */
export function redisCommands(mix: Mix, o: { withId: boolean; cluster: boolean }): number {
  const r = rates(mix);
  const events = r.positionEvents + r.signalEvents + r.alertEvents;
  return r.scripts + events * redisCallsPerEvent(o);
}

/** Bytes of a command or an array reply in RESP: `*n` then `$len` + bytes for each element. */
export function respBytes(parts: readonly string[]): number {
  let n = `*${parts.length}\r\n`.length;
  for (const p of parts) {
    const len = Buffer.byteLength(p);
    n += `$${len}\r\n`.length + len + 2;
  }
  return n;
}

/** The shape of one event as it crosses the wires. */
export interface EventShape {
  readonly channel: string;
  readonly key: string | null;
  readonly dataBytes: number;
  /** Digits of its seq. */
  readonly seqDigits: number;
}

const EPOCH = 'x'.repeat(8); // newEpoch(): 6 random bytes in base64url
const TS = '1'.repeat(13);
const pad = (bytes: number): string => `"${'x'.repeat(Math.max(0, bytes - 2))}"`;

/** The pub/sub message the script sends (redis-scripts.ts, publishLua). */
function pubsubPayload(e: EventShape): string {
  const key = e.key === null ? 'null' : JSON.stringify(e.key);
  return (
    `{"channel":${JSON.stringify(e.channel)},"seq":${'9'.repeat(e.seqDigits)},"key":${key},` +
    `"ts":${TS},"data":${pad(e.dataBytes)},"epoch":"${EPOCH}"}`
  );
}

/** Bytes one pub/sub copy of an event takes from Redis to one subscribed instance. */
export function pubsubBytes(e: EventShape, prefix = 'archon:'): number {
  return respBytes(['smessage', `${prefix}ev:{${e.channel}}`, pubsubPayload(e)]);
}

/** Bytes of a publish script call carrying `events` (all of one channel), cluster layout,
 * with ids of `idBytes`, and of its reply. */
export function scriptBytes(
  events: readonly EventShape[],
  idBytes = 20,
  prefix = 'archon:',
): { request: number; reply: number } {
  const parts = ['evalsha', 'f'.repeat(40), String(events.length * 5), TS, '600'];
  const replies: string[] = [];
  for (const e of events) {
    const base = `${prefix}ch:{${e.channel}}`;
    parts.push(`${base}:meta`, `${base}:stream`, `${base}:state`);
    parts.push(`${prefix}idem:{${e.channel}}:${'i'.repeat(idBytes)}`, `${base}:exp`);
  }
  for (const e of events) {
    parts.push(EPOCH, e.key === null ? 'stream' : 'state', '1000', e.channel);
    parts.push(e.key === null ? '0' : '1', e.key ?? '', pad(e.dataBytes), '1', '310000');
    parts.push(`${prefix}ev:{${e.channel}}`, '');
    replies.push('0');
    replies.push(
      `{"channel":${JSON.stringify(e.channel)},"seq":${'9'.repeat(e.seqDigits)},"epoch":"${EPOCH}"}`,
    );
  }
  return { request: respBytes(parts), reply: respBytes(replies) };
}

/** Bytes of the WebSocket frame of one delivered event: the `event` message (its epoch rides
 * in `subscribed`, not here) and the frame header. */
export function frameBytes(e: EventShape): number {
  const key = e.key === null ? 'null' : JSON.stringify(e.key);
  const json =
    `{"type":"event","channel":${JSON.stringify(e.channel)},"seq":${'9'.repeat(e.seqDigits)},` +
    `"key":${key},"ts":${TS},"data":${pad(e.dataBytes)}}`;
  const len = Buffer.byteLength(json);
  return len + (len < 126 ? 2 : len < 65_536 ? 4 : 10);
}

/** The typical event of each class in a mix (channel names of 8-digit account ids). */
export function shapes(mix: Mix): { position: EventShape; signal: EventShape; alert: EventShape } {
  return {
    position: {
      channel: 'positions:10000000',
      key: 'EURUSD',
      dataBytes: mix.positionDataBytes,
      seqDigits: 6,
    },
    signal: { channel: 'signals', key: null, dataBytes: mix.signalDataBytes, seqDigits: 7 },
    alert: { channel: 'risk:10000000', key: null, dataBytes: mix.alertDataBytes, seqDigits: 3 },
  };
}

export interface Network {
  /** Gateway → traders, bytes/s (WebSocket payload and headers, no TCP/IP). */
  readonly egress: number;
  /** Gateways → Redis (script calls), bytes/s. */
  readonly toRedis: number;
  /** Redis → gateways (script replies and pub/sub copies), bytes/s. */
  readonly fromRedis: number;
}

/** Request bytes of a script call: a fixed part per call and a part per event it carries. */
function callBytes(e: EventShape): { fixed: number; perEvent: number; reply: number } {
  const one = scriptBytes([e]);
  const perEvent = scriptBytes([e, e]).request - one.request;
  return { fixed: one.request - perEvent, perEvent, reply: one.reply };
}

/** Bytes per second on each wire, with `instances` gateway processes subscribed to signals. */
export function network(mix: Mix, instances: number): Network {
  const r = rates(mix);
  const s = shapes(mix);
  const [p, sg, a] = [callBytes(s.position), callBytes(s.signal), callBytes(s.alert)];
  const positionScripts = mix.traders * mix.positionBatchesPerAccount;
  const egress =
    r.positionDeliveries * frameBytes(s.position) +
    r.signalDeliveries * frameBytes(s.signal) +
    r.alertDeliveries * frameBytes(s.alert);
  const toRedis =
    positionScripts * p.fixed +
    r.positionEvents * p.perEvent +
    r.signalEvents * (sg.fixed + sg.perEvent) +
    r.alertEvents * (a.fixed + a.perEvent);
  // Replies are about one element per event; the pub/sub copy goes to each instance holding a
  // subscriber: one for an account's channel, every instance for `signals`.
  const fromRedis =
    r.positionEvents * (p.reply + pubsubBytes(s.position)) +
    r.signalEvents * (sg.reply + instances * pubsubBytes(s.signal)) +
    r.alertEvents * (a.reply + pubsubBytes(s.alert));
  return { egress, toRedis, fromRedis };
}

export interface Shards {
  readonly shards: number;
  readonly boundBy: 'cpu' | 'network';
  /** Redis CPU of the whole mix, cores (of one thread each). */
  readonly redisCores: number;
  readonly commandsPerShard: number;
  readonly cpuPerShard: number;
  readonly bytesPerShard: number;
}

/**
 * Redis Cluster primaries: enough that each stays under redisCpuShare of its command thread
 * and under redisBytesPerSecond each way. Channels spread evenly over slots (docs/cluster.md
 * measured 0.14 % from even), so shards divide the load; `signals` is one channel and lives
 * on one shard, whose share is negligible at these rates.
 */
export function shards(mix: Mix, costs: Costs, budget: Budget, instances: number): Shards {
  const r = rates(mix);
  const events = r.positionEvents + r.signalEvents + r.alertEvents;
  const us =
    events * costs.redisUsPerEvent + r.signalEvents * instances * costs.redisUsPerPubsubCopy;
  const redisCores = us / 1e6;
  const net = network(mix, instances);
  const bytes = Math.max(net.toRedis, net.fromRedis);
  const byCpu = Math.ceil(redisCores / budget.redisCpuShare);
  const byNet = Math.ceil(bytes / budget.redisBytesPerSecond);
  const n = Math.max(byCpu, byNet, 1);
  return {
    shards: n,
    boundBy: byCpu >= byNet ? 'cpu' : 'network',
    redisCores,
    commandsPerShard: redisCommands(mix, { withId: true, cluster: true }) / n,
    cpuPerShard: redisCores / n,
    bytesPerShard: bytes / n,
  };
}

/** The model's answer for a mix. */
export function plan(mix: Mix, costs: Costs, budget: Budget) {
  const f = fleet(mix, costs, budget);
  return {
    rates: rates(mix),
    fleet: f,
    shards: shards(mix, costs, budget, f.workers),
    network: network(mix, f.workers),
  };
}

// ---------------------------------------------------------------------------------------------
// The stated case of docs/capacity.md.

/** 1,000,000 traders, one account each of ~20 positions: the engine sends a position when it
 * moves (on average every 10 s: 2 events/s per account) in one batch per account per second;
 * one shared signal a second; one risk alert per account per hour. Sizes from src/demo/feed.ts. */
export const MILLION: Mix = {
  traders: 1_000_000,
  positionEventsPerAccount: 2,
  positionBatchesPerAccount: 1,
  signalRate: 1,
  alertsPerAccountPerHour: 1,
  positionDataBytes: 170,
  signalDataBytes: 200,
  alertDataBytes: 160,
};

/**
 * Measured costs: bench/capacity.ts, 2026-12-08, 2-core AMD EPYC VM (shared), Node 24.21, Redis
 * 7.0.15 as a one-shard cluster, 2,000 traders, gateway as the Docker image runs it
 * (--max-semi-space-size=16). redisUsPerPubsubCopy is not measured (one instance only): an
 * assumption, negligible at one signal a second. See docs/capacity.md.
 */
export const MEASURED: Costs = {
  usPerDelivery: 11.3,
  usPerEvent: 55,
  usPerConnectionSecond: 16,
  baseRssMb: 122,
  kbPerConnection: 71,
  redisUsPerEvent: 31,
  redisUsPerPubsubCopy: 2,
};

/** One worker per core, at most 60 % busy, 20,000 connections each; 16-core nodes; Redis
 * primaries at most 60 % busy and 100 MB/s each way. */
export const BUDGET: Budget = {
  workerCpuShare: 0.6,
  maxConnectionsPerWorker: 20_000,
  workersPerNode: 16,
  redisCpuShare: 0.6,
  redisBytesPerSecond: 100e6,
};
