/**
 * The Lua scripts of the Redis backplane. Each runs atomically in Redis, so a publish
 * numbers, stores and fans out an event in one step, and a read sees one consistent moment
 * of a channel. The data model is described in redis.ts.
 */
// Creates the channel's epoch when it has none: a new channel, or Redis lost its data. The
// stream and state of a previous epoch (if a partial loss left them) are dropped with it, so
// nothing of another epoch is ever served under the new one, and seq restarts at 1.
const ENSURE_EPOCH = `
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

/** Keys each event of a publish passes, in this order: meta, stream, state, idem. */
export const PUBLISH_KEYS_PER_EVENT = 4;
/** Values each event adds to ARGV after the batch's two shared ones (see PUBLISH_LUA). */
export const PUBLISH_ARGS_PER_EVENT = 10;

/**
 * A whole batch in one script, so it is stored whole or not at all: Redis runs a script
 * without interleaving, and refuses one that may write before it runs when out of memory.
 * KEYS, per event: meta, stream, state, idem. ARGV: ts, idempotency TTL s, then per event:
 * new epoch, mode (stream|state|none), maxlen, channel, has key (1|0), key, data JSON,
 * has id (1|0), stream idle expiry ms, pub/sub channel.
 * Returns, flattened, per event: duplicate (1|0), result JSON.
 */
export const PUBLISH_LUA = `${ENSURE_EPOCH}
local ts = ARGV[1]
local idem_ttl = ARGV[2]
local out = {}
for i = 0, #KEYS / ${PUBLISH_KEYS_PER_EVENT} - 1 do
  local k = i * ${PUBLISH_KEYS_PER_EVENT}
  local meta, stream, state, idem = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4]
  local a = 2 + i * ${PUBLISH_ARGS_PER_EVENT}
  local new_epoch, mode, maxlen, channel = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]
  local has_key, key, data = ARGV[a + 5] == '1', ARGV[a + 6], ARGV[a + 7]
  local has_id, idle_ms, pubsub = ARGV[a + 8] == '1', ARGV[a + 9], ARGV[a + 10]
  local stored = false
  if has_id then stored = redis.call('GET', idem) end
  if stored then
    out[#out + 1] = 1
    out[#out + 1] = stored
  else
    local epoch = ensure_epoch(meta, stream, state, new_epoch)
    local seq = string.format('%d', redis.call('HINCRBY', meta, 'seq', 1))
    if mode == 'stream' then
      if has_key then
        redis.call('XADD', stream, 'MAXLEN', maxlen, seq .. '-1', 'key', key, 'ts', ts, 'data', data)
      else
        redis.call('XADD', stream, 'MAXLEN', maxlen, seq .. '-1', 'ts', ts, 'data', data)
      end
      redis.call('PEXPIRE', stream, idle_ms)
    elseif mode == 'state' and has_key then
      if data == 'null' then
        redis.call('HDEL', state, key)
      else
        redis.call('HSET', state, key, data)
      end
    end
    local channel_json = cjson.encode(channel)
    local epoch_json = cjson.encode(epoch)
    local key_json = 'null'
    if has_key then key_json = cjson.encode(key) end
    redis.call('PUBLISH', pubsub, '{"channel":' .. channel_json .. ',"seq":' .. seq ..
      ',"key":' .. key_json .. ',"ts":' .. ts .. ',"data":' .. data ..
      ',"epoch":' .. epoch_json .. '}')
    local result = '{"channel":' .. channel_json .. ',"seq":' .. seq .. ',"epoch":' .. epoch_json .. '}'
    if has_id then redis.call('SET', idem, result, 'EX', idem_ttl) end
    out[#out + 1] = 0
    out[#out + 1] = result
  end
end
return out
`;

/**
 * KEYS: meta, stream, state. ARGV: new epoch, sinceSeq, now, ttl ms.
 * Returns {epoch, seq, firstSeq, XRANGE entries with seq > sinceSeq}.
 * Entries older than the TTL are deleted from the head first (the memory History trims the
 * same way: the expired prefix goes, everything after the first live entry stays).
 */
export const HISTORY_LUA = `${ENSURE_EPOCH}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
local cutoff = tonumber(ARGV[3]) - tonumber(ARGV[4])
local first = nil
while first == nil do
  local batch = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 100)
  if #batch == 0 then break end
  for _, entry in ipairs(batch) do
    local fields = entry[2]
    local ts = nil
    for i = 1, #fields, 2 do
      if fields[i] == 'ts' then ts = tonumber(fields[i + 1]) end
    end
    if ts ~= nil and ts >= cutoff then
      first = tonumber(string.match(entry[1], '^(%d+)-'))
      break
    end
    redis.call('XDEL', KEYS[2], entry[1])
  end
end
local since = tonumber(ARGV[2])
local events = {}
if first ~= nil and since < seq then
  local from = since + 1
  if from < first then from = first end
  events = redis.call('XRANGE', KEYS[2], string.format('%d-1', from), '+')
end
return {epoch, seq, first or (seq + 1), events}
`;

/** KEYS: meta, stream, state. ARGV: new epoch. Returns {epoch, seq, flat HGETALL of state}. */
export const SNAPSHOT_LUA = `${ENSURE_EPOCH}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq'))
return {epoch, seq, redis.call('HGETALL', KEYS[3])}
`;

/** KEYS: meta, stream, state. ARGV: new epoch. Returns {epoch, seq}. */
export const META_LUA = `${ENSURE_EPOCH}
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
return {epoch, tonumber(redis.call('HGET', KEYS[1], 'seq'))}
`;

export type ScriptArg = string | number;

/** The commands defineCommand adds to the command connection. */
export interface ArchonScripts {
  archonPublish(...args: ScriptArg[]): Promise<unknown>;
  archonHistory(...args: ScriptArg[]): Promise<unknown>;
  archonSnapshot(...args: ScriptArg[]): Promise<unknown>;
  archonMeta(...args: ScriptArg[]): Promise<unknown>;
}
