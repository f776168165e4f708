/**
 * The Lua scripts of the Redis backplane. Each runs atomically in Redis, so a publish
 * numbers, stores and fans out an event in one step, and a read sees one consistent moment
 * of a channel. The data model is described in redis.ts, the key names in redis-keys.ts.
 *
 * Each script comes in two layouts. On one primary they are what they always were. In a
 * Redis Cluster (docs/cluster.md#redis-cluster) every script touches the keys of one hash slot
 * only, fans out with SPUBLISH on the channel's sharded pub/sub channel (same slot), and
 * stamps each channel with the node that wrote it, so that a replica that took over starts a
 * new epoch instead of serving a history that may lack what the dead primary acknowledged.
 */
import type { RedisLayout } from './redis-keys.js';

// Creates the channel's epoch when it has none: a new channel, or Redis lost its data. The
// stream and state of a previous epoch (if a partial loss left them) are dropped with it, so
// nothing of another epoch is ever served under the new one, and seq restarts at 1.
const ENSURE_EPOCH_SINGLE = `
local function ensure_epoch(meta, stream, state, new_epoch)
  local epoch = redis.call('HGET', meta, 'epoch')
  if not epoch then
    epoch = new_epoch
    redis.call('DEL', stream, state)
    redis.call('HSET', meta, 'epoch', epoch, 'seq', 0)
  end
  return epoch
end
`;

// The same in a Redis Cluster, where the meta hash also names the node that wrote it
// (docs/cluster.md#failover-what-happens-and-what-the-operator-sees). A channel last written
// by another node was carried here by a failover (or a resharding). Replication is
// asynchronous: the dead primary may have acknowledged events its replica never got, and the
// next publish would reuse their seqs. So the channel starts a new epoch, and every subscriber
// is told (resync, recovered:false) instead of silently missing them. Its stream goes (seq
// restarts at 1); its state stays, as the state a new epoch starts from: a snapshot is all of
// it.
const ENSURE_EPOCH_CLUSTER = `
local function ensure_epoch(meta, stream, state, new_epoch)
  local me = redis.call('CLUSTER', 'MYID')
  local current = redis.call('HMGET', meta, 'epoch', 'node')
  local epoch = current[1]
  if not epoch then
    epoch = new_epoch
    redis.call('DEL', stream, state)
    redis.call('HSET', meta, 'epoch', epoch, 'seq', 0, 'node', me)
  elseif current[2] ~= me then
    epoch = new_epoch
    redis.call('DEL', stream)
    redis.call('HSET', meta, 'epoch', epoch, 'seq', 0, 'node', me)
  end
  return epoch
end
`;

const ensureEpoch = (layout: RedisLayout): string =>
  layout === 'cluster' ? ENSURE_EPOCH_CLUSTER : ENSURE_EPOCH_SINGLE;

/** PUBLISH on one primary; in a cluster, SPUBLISH on the channel's own shard. */
const fanOut = (layout: RedisLayout): string => (layout === 'cluster' ? 'SPUBLISH' : 'PUBLISH');

/** Keys each event of a publish passes, in this order: meta, stream, state, idem, exp. */
export const PUBLISH_KEYS_PER_EVENT = 5;
/** Values each event adds to ARGV after the batch's two shared ones (see PUBLISH_LUA). */
export const PUBLISH_ARGS_PER_EVENT = 11;

/**
 * A whole batch in one script, so it is stored whole or not at all: Redis runs a script
 * without interleaving, and refuses one that may write before it runs when out of memory.
 * KEYS: one primary: the expiring-channels index, then per event: meta, stream, state, idem,
 * exp. A cluster: the per-event keys only, all of one slot (the expiry index is written before,
 * redis-expiry.ts).
 * ARGV: ts, idempotency TTL s, then per event: new epoch, mode (stream|state|none), maxlen,
 * channel, has key (1|0), key, data JSON, has id (1|0), stream idle expiry ms, pub/sub channel,
 * expires_at ms ('' when the event never expires).
 * Returns, flattened, per event: duplicate (1|0), result JSON.
 */
const publishLua = (layout: RedisLayout): string => {
  const first = layout === 'cluster' ? 0 : 1;
  const indexChannel =
    layout === 'cluster'
      ? ''
      : `
          local first = redis.call('ZRANGE', exp, 0, 0, 'WITHSCORES')
          redis.call('ZADD', KEYS[1], first[2], channel)`;
  return `${ensureEpoch(layout)}
local ts = ARGV[1]
local idem_ttl = ARGV[2]
local out = {}
for i = 0, (#KEYS - ${first}) / ${PUBLISH_KEYS_PER_EVENT} - 1 do
  local k = ${first} + i * ${PUBLISH_KEYS_PER_EVENT}
  local meta, stream, state, idem, exp = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local a = 2 + i * ${PUBLISH_ARGS_PER_EVENT}
  local new_epoch, mode, maxlen, channel = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local has_key, key, data = ARGV[a + 5] == '1', ARGV[a + 6], ARGV[a + 7]
  local has_id, idle_ms, pubsub, expires_at = ARGV[a + 8] == '1', ARGV[a + 9], ARGV[a + 10], ARGV[a + 11]
  local stored = false
  if has_id then stored = redis.call('GET', idem) end
  if stored then
    out[#out + 1] = 1
    out[#out + 1] = stored
  else
    local epoch = ensure_epoch(meta, stream, state, new_epoch)
    local seq = string.format('%d', redis.call('HINCRBY', meta, 'seq', 1))
    if mode == 'stream' then
      local fields = {'ts', ts, 'data', data}
      if has_key then table.insert(fields, 1, key); table.insert(fields, 1, 'key') end
      if expires_at ~= '' then fields[#fields + 1] = 'exp'; fields[#fields + 1] = expires_at end
      redis.call('XADD', stream, 'MAXLEN', maxlen, seq .. '-1', unpack(fields))
      redis.call('PEXPIRE', stream, idle_ms)
    elseif mode == 'state' and has_key then
      if data == 'null' then
        redis.call('HDEL', state, key)
        redis.call('ZREM', exp, key)
      else
        redis.call('HSET', state, key, data)
        if expires_at ~= '' then
          redis.call('ZADD', exp, expires_at, key)${indexChannel}
        else
          redis.call('ZREM', exp, key)
        end
      end
    end
    local channel_json = cjson.encode(channel)
    local epoch_json = cjson.encode(epoch)
    local key_json = 'null'
    if has_key then key_json = cjson.encode(key) end
    local expires_json = ''
    if expires_at ~= '' then expires_json = ',"expires_at":' .. expires_at end
    redis.call('${fanOut(layout)}', pubsub, '{"channel":' .. channel_json .. ',"seq":' .. seq ..
      ',"key":' .. key_json .. ',"ts":' .. ts .. ',"data":' .. data .. expires_json ..
      ',"epoch":' .. epoch_json .. '}')
    local result = '{"channel":' .. channel_json .. ',"seq":' .. seq .. ',"epoch":' .. epoch_json .. '}'
    if has_id then redis.call('SET', idem, result, 'EX', idem_ttl) end
    out[#out + 1] = 0
    out[#out + 1] = result
  end
end
return out
`;
};

/** Keys one expiry call deletes at most; a channel with more due is visited again. */
export const EXPIRE_BATCH = 1000;

/**
 * Deletes a state channel's expired keys, each with a numbered delete event (data null) like a
 * publish of one. Idempotent: instances that sweep the same channel at once delete each key
 * once. One primary: also moves the channel in the expiring index to its next expiry.
 * KEYS: one primary: expiring index, meta, stream, state, exp; a cluster: meta, stream, state,
 * exp. ARGV: new epoch, now, channel, pub/sub channel.
 * Returns the number of keys deleted; in a cluster {deleted, keys found due} (EXPIRE_BATCH found:
 * more may be due).
 */
const expireStateLua = (layout: RedisLayout): string => {
  const [keys, end] =
    layout === 'cluster'
      ? [
          'local meta, stream, state, exp = KEYS[1], KEYS[2], KEYS[3], KEYS[4]',
          `
return {deleted, #due}`,
        ]
      : [
          'local expiring, meta, stream, state, exp = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]',
          `
local first = redis.call('ZRANGE', exp, 0, 0, 'WITHSCORES')
if #first == 0 then
  redis.call('ZREM', expiring, channel)
else
  redis.call('ZADD', expiring, first[2], channel)
end
return deleted`,
        ];
  return `${ensureEpoch(layout)}
${keys}
local now, channel, pubsub = ARGV[2], ARGV[3], ARGV[4]
local due = redis.call('ZRANGEBYSCORE', exp, '-inf', now, 'LIMIT', 0, ${EXPIRE_BATCH})
local deleted = 0
if #due > 0 then
  local epoch = ensure_epoch(meta, stream, state, ARGV[1])
  for _, key in ipairs(due) do
    redis.call('ZREM', exp, key)
    if redis.call('HDEL', state, key) == 1 then
      local seq = string.format('%d', redis.call('HINCRBY', meta, 'seq', 1))
      redis.call('${fanOut(layout)}', pubsub, '{"channel":' .. cjson.encode(channel) .. ',"seq":' .. seq ..
        ',"key":' .. cjson.encode(key) .. ',"ts":' .. now .. ',"data":null,"epoch":' ..
        cjson.encode(epoch) .. '}')
      deleted = deleted + 1
    end
  end
end${end}
`;
};

// Drops a stream's head entries older than the channel's history TTL (the memory History
// trims the same way: the expired prefix goes, everything after the first live entry stays);
// returns the seq of the first entry kept, or nil when none is.
const TRIM_HEAD = `
local function trim_head(stream, cutoff)
  while true do
    local batch = redis.call('XRANGE', stream, '-', '+', 'COUNT', 100)
    if #batch == 0 then return nil end
    for _, entry in ipairs(batch) do
      local fields = entry[2]
      local ts = nil
      for i = 1, #fields, 2 do
        if fields[i] == 'ts' then ts = tonumber(fields[i + 1]) end
      end
      if ts ~= nil and ts >= cutoff then
        return tonumber(string.match(entry[1], '^(%d+)-'))
      end
      redis.call('XDEL', stream, entry[1])
    end
  end
end
`;

/**
 * KEYS: meta, stream, state. ARGV: new epoch, sinceSeq, now, ttl ms.
 * Returns {epoch, seq, firstSeq, XRANGE entries with seq > sinceSeq}.
 * Entries older than the TTL are deleted from the head first.
 */
const historyLua = (layout: RedisLayout): string => `${ensureEpoch(layout)}${TRIM_HEAD}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local first = trim_head(KEYS[2], tonumber(ARGV[3]) - tonumber(ARGV[4]))
local since = tonumber(ARGV[2])
local events = {}
if first ~= nil and since < seq then
  local from = since + 1
  if from < first then from = first end
  events = redis.call('XRANGE', KEYS[2], string.format('%d-1', from), '+')
end
return {epoch, seq, first or (seq + 1), events}
`;

/**
 * Every alert a risk channel holds, with its acknowledgements (and deliveries when asked);
 * forgets the acknowledgements and deliveries of alerts no longer held or of another epoch.
 * KEYS: meta, stream, state, acks, deliveries. ARGV: new epoch, now, ttl ms, with deliveries (1|0).
 * Returns {epoch, XRANGE entries (without the acknowledged ones unless with deliveries), flat
 * HGETALL of acks, flat HGETALL of deliveries or {}}.
 * acks: seq → {"epoch","by","at"}; deliveries: "<epoch>:<seq>:<user>" → count.
 */
const alertsLua = (layout: RedisLayout): string => `${ensureEpoch(layout)}${TRIM_HEAD}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local first = trim_head(KEYS[2], tonumber(ARGV[2]) - tonumber(ARGV[3]))
local entries = {}
if first ~= nil then entries = redis.call('XRANGE', KEYS[2], '-', '+') end
local floor = first or math.huge
local acks = redis.call('HGETALL', KEYS[4])
local acked = {}
for i = 1, #acks, 2 do
  local ack = cjson.decode(acks[i + 1])
  if tonumber(acks[i]) < floor or ack.epoch ~= epoch then
    redis.call('HDEL', KEYS[4], acks[i])
  else
    acked[acks[i]] = true
  end
end
-- The unacknowledged read leaves acknowledged alerts out here: their data never leaves Redis.
if ARGV[4] ~= '1' and next(acked) ~= nil then
  local waiting = {}
  for _, entry in ipairs(entries) do
    if not acked[string.match(entry[1], '^(%d+)-')] then waiting[#waiting + 1] = entry end
  end
  entries = waiting
end
-- Deliveries are forgotten with their alert on every read, so the hash stays as small as the
-- alerts held times their users, whether or not anyone lists them.
local deliveries = redis.call('HGETALL', KEYS[5])
for i = 1, #deliveries, 2 do
  local e, s = string.match(deliveries[i], '^([^:]*):(%d+):')
  if e ~= epoch or tonumber(s) < floor then redis.call('HDEL', KEYS[5], deliveries[i]) end
end
if ARGV[4] ~= '1' then deliveries = {} end
return {epoch, entries, acks, deliveries}
`;

/**
 * Acknowledges a held alert once. KEYS: meta, stream, acks. ARGV: epoch, seq, by, at, now,
 * history ttl ms, acks idle expiry ms, pub/sub channel, channel.
 * Returns {0} when no such alert is held (other epoch, trimmed, expired, or in a cluster a
 * channel this node took over and whose epoch is about to end), {1, ack JSON} when this call
 * acknowledged it (and told every instance), {2, ack JSON} when it already was.
 */
const ackLua = (layout: RedisLayout): string => {
  const current =
    layout === 'cluster'
      ? `local meta = redis.call('HMGET', KEYS[1], 'epoch', 'node')
if meta[1] ~= epoch or meta[2] ~= redis.call('CLUSTER', 'MYID') then return {0} end`
      : `if redis.call('HGET', KEYS[1], 'epoch') ~= epoch then return {0} end`;
  return `
local epoch, seq, now = ARGV[1], ARGV[2], tonumber(ARGV[5])
${current}
local entry = redis.call('XRANGE', KEYS[2], seq .. '-1', seq .. '-1')
if #entry == 0 then return {0} end
local fields = entry[1][2]
for i = 1, #fields, 2 do
  if fields[i] == 'ts' and tonumber(fields[i + 1]) < now - tonumber(ARGV[6]) then return {0} end
  if fields[i] == 'exp' and tonumber(fields[i + 1]) <= now then return {0} end
end
local standing = redis.call('HGET', KEYS[3], seq)
if standing and cjson.decode(standing).epoch == epoch then return {2, standing} end
local ack = '{"epoch":' .. cjson.encode(epoch) .. ',"by":' .. cjson.encode(ARGV[3]) ..
  ',"at":' .. ARGV[4] .. '}'
redis.call('HSET', KEYS[3], seq, ack)
redis.call('PEXPIRE', KEYS[3], ARGV[7])
redis.call('${fanOut(layout)}', ARGV[8], '{"acked":' .. ack .. ',"channel":' .. cjson.encode(ARGV[9]) ..
  ',"seq":' .. seq .. '}')
return {1, ack}
`;
};

/**
 * KEYS: meta, stream, state, exp. ARGV: new epoch, now.
 * Returns {epoch, seq, flat HGETALL of state, keys expired by now}: those are left out of the
 * snapshot (the expiry sweep deletes them with a delete event).
 */
const snapshotLua = (layout: RedisLayout): string => `${ensureEpoch(layout)}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
return {epoch, seq, redis.call('HGETALL', KEYS[3]), redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[2])}
`;

/** KEYS: meta, stream, state. ARGV: new epoch. Returns {epoch, seq}. */
const metaLua = (layout: RedisLayout): string => `${ensureEpoch(layout)}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
return {epoch, tonumber(redis.call('HGET', KEYS[1], 'seq'))}
`;

export type ScriptArg = string | number;

/** Each script by the command name it is defined under (numberOfKeys absent: the first
 * argument of each call says how many keys follow). */
export function archonScripts(
  layout: RedisLayout,
): Record<keyof ArchonScripts, { lua: string; numberOfKeys?: number }> {
  return {
    archonPublish: { lua: publishLua(layout) },
    archonHistory: { numberOfKeys: 3, lua: historyLua(layout) },
    archonSnapshot: { numberOfKeys: 4, lua: snapshotLua(layout) },
    archonMeta: { numberOfKeys: 3, lua: metaLua(layout) },
    archonAlerts: { numberOfKeys: 5, lua: alertsLua(layout) },
    archonAck: { numberOfKeys: 3, lua: ackLua(layout) },
    archonExpireState: { numberOfKeys: layout === 'cluster' ? 4 : 5, lua: expireStateLua(layout) },
  };
}

/** The commands defineCommand adds to the command connection. */
export interface ArchonScripts {
  archonPublish(...args: ScriptArg[]): Promise<unknown>;
  archonHistory(...args: ScriptArg[]): Promise<unknown>;
  archonSnapshot(...args: ScriptArg[]): Promise<unknown>;
  archonMeta(...args: ScriptArg[]): Promise<unknown>;
  archonAlerts(...args: ScriptArg[]): Promise<unknown>;
  archonAck(...args: ScriptArg[]): Promise<unknown>;
  archonExpireState(...args: ScriptArg[]): Promise<unknown>;
}
