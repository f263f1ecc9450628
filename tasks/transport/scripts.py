"""The Lua scripts of the reliable fetch. Each runs atomically in Redis, so no message is ever
only in a worker's socket: it is in a queue list, or in the unacked hash and its taker's set."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Script:
    """A Lua script and its SHA1, for EVALSHA on a connection the event loop owns."""

    text: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.text.encode(), usedforsecurity=False).hexdigest()


# KEYS: unacked hash, unacked index, the taker's owned set, the malformed list, then the queue
#       lists in the order kombu's BRPOP would try them (priority first, then the queue cycle).
# ARGV: at most how many to take; one '1' or '0' per list (record as unacked, or a no_ack
#       consumer's list); the time for the unacked index (kombu compares it with client time).
# Takes up to ARGV[1] messages from the first non-empty list. Each taken message of a recorded
# list gets kombu's unacked entries (HSET tag -> [payload, exchange, routing_key], ZADD tag ->
# time) and joins the owned set. A message that is not a kombu envelope kombu could also restore
# (headers and delivery_info objects: its restore writes into both) is moved aside to the
# malformed list intact, never lost. Returns {list, {why, ...}, tag, raw, tag, raw, ...} or {},
# one `why` per message moved aside. The payload is embedded as is (cjson re-encodes [] as {}).
# Redis keeps a script's writes made before an error, so nothing may raise once RPOP has run:
# every decode and encode of message data is under pcall (cjson.encode refuses the NaN and
# Infinity that cjson.decode accepts); a failure sends the message aside.
FETCH = Script("""
local function object(t)
  return type(t) == 'table' and t[1] == nil
end
local function entry(raw)
  local ok, message = pcall(cjson.decode, raw)
  if not ok then return nil, 'not JSON' end
  if not object(message) then return nil, 'not a JSON object' end
  local p = message['properties']
  if not object(p) then return nil, 'properties not an object' end
  if type(p['delivery_tag']) ~= 'string' then return nil, 'properties.delivery_tag not a string' end
  local d = p['delivery_info']
  if not object(d) then return nil, 'properties.delivery_info not an object' end
  local h = message['headers']
  if h ~= nil and not object(h) then return nil, 'headers not an object' end
  local ok_x, exchange = pcall(cjson.encode, d['exchange'] or '')
  local ok_k, routing_key = pcall(cjson.encode, d['routing_key'] or '')
  if not (ok_x and ok_k) then
    return nil, 'delivery_info.exchange or routing_key not encodable (NaN, Infinity)'
  end
  return p['delivery_tag'], '[' .. raw .. ',' .. exchange .. ',' .. routing_key .. ']'
end
local want = tonumber(ARGV[1])
for i = 5, #KEYS do
  local items = redis.call('RPOP', KEYS[i], want)
  if items then
    local record = string.sub(ARGV[2], i - 4, i - 4) == '1'
    local aside = {}
    local out = {KEYS[i], aside}
    for _, raw in ipairs(items) do
      local tag, unacked = entry(raw)
      if tag == nil then
        redis.call('LPUSH', KEYS[4], raw)
        aside[#aside + 1] = unacked
      else
        if record then
          redis.call('ZADD', KEYS[2], ARGV[3], tag)
          redis.call('HSET', KEYS[1], tag, unacked)
          redis.call('SADD', KEYS[3], tag)
        end
        out[#out + 1] = tag
        out[#out + 1] = raw
      end
    end
    return out
  end
end
return {}
""")

# KEYS: the consumers' sorted set. ARGV: consumer id. Heartbeats use the server's clock, so
# consumers on machines with skewed clocks are judged alike.
HEARTBEAT = Script("""
local now = redis.call('TIME')
redis.call('ZADD', KEYS[1], now[1], ARGV[1])
""")

# KEYS: the consumers' sorted set. ARGV: seconds without a heartbeat after which a consumer is
# dead. Returns {id, seconds since its heartbeat, ...}.
DEAD = Script("""
local now = tonumber(redis.call('TIME')[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[1]), 'WITHSCORES')
local out = {}
for i = 1, #dead, 2 do
  out[#out + 1] = dead[i]
  out[#out + 1] = tostring(now - tonumber(dead[i + 1]))
end
return out
""")

# KEYS: the consumers' sorted set, the consumer's owned set. ARGV: consumer id.
# Forgets the consumer and returns what it held, in one step: two sweepers never claim one set.
CLAIM = Script("""
local tags = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return tags
""")
