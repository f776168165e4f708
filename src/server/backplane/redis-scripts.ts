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

/**
 * KEYS: meta, stream, state, idem. ARGV: new epoch, mode (stream|state|none), maxlen, ts,
 * channel, has key (1|0), key, data JSON, has id (1|0), idempotency TTL s, stream idle
 * expiry ms, pub/sub channel. Returns {duplicate (1|0), result JSON}.
 */
export const PUBLISH_LUA = `${ENSURE_EPOCH}
if ARGV[9] == '1' then
  local stored = redis.call('GET', KEYS[4])
  if stored then return {1, stored} end
end
local epoch = ensure_epoch(KEYS[1], KEYS[2], KEYS[3], ARGV[1])
local seq = string.format('%d', redis.call('HINCRBY', KEYS[1], 'seq', 1))
local has_key = ARGV[6] == '1'
if ARGV[2] == 'stream' then
  if has_key then
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-1',
      'key', ARGV[7], 'ts', ARGV[4], 'data', ARGV[8])
  else
    redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-1', 'ts', ARGV[4], 'data', ARGV[8])
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[11])
elseif ARGV[2] == 'state' and has_key then
  if ARGV[8] == 'null' then
    redis.call('HDEL', KEYS[3], ARGV[7])
  else
    redis.call('HSET', KEYS[3], ARGV[7], ARGV[8])
  end
end
local channel_json = cjson.encode(ARGV[5])
local epoch_json = cjson.encode(epoch)
local key_json = 'null'
if has_key then key_json = cjson.encode(ARGV[7]) end
redis.call('PUBLISH', ARGV[12], '{"channel":' .. channel_json .. ',"seq":' .. seq ..
  ',"key":' .. key_json .. ',"ts":' .. ARGV[4] .. ',"data":' .. ARGV[8] ..
  ',"epoch":' .. epoch_json .. '}')
local result = '{"channel":' .. channel_json .. ',"seq":' .. seq .. ',"epoch":' .. epoch_json .. '}'
if ARGV[9] == '1' then
  redis.call('SET', KEYS[4], result, 'EX', ARGV[10])
end
return {0, result}
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
