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
# time) and joins the owned set. A message that is not a kombu envelope is moved aside to the
# malformed list, never lost. Returns {list, malformed count, raw, raw, ...} or {}.
# The payload text is embedded as is (cjson would re-encode [] as {}).
FETCH = Script("""
local function envelope(raw)
  local ok, message = pcall(cjson.decode, raw)
  if not ok or type(message) ~= 'table' then return nil end
  local p = message['properties']
  if type(p) ~= 'table' or type(p['delivery_tag']) ~= 'string' then return nil end
  local d = p['delivery_info']
  if type(d) ~= 'table' then return nil end
  return p['delivery_tag'], d
end
local want = tonumber(ARGV[1])
for i = 5, #KEYS do
  local items = redis.call('RPOP', KEYS[i], want)
  if items then
    local record = string.sub(ARGV[2], i - 4, i - 4) == '1'
    local out = {KEYS[i], 0}
    for _, raw in ipairs(items) do
      local tag, d = envelope(raw)
      if tag == nil then
        redis.call('LPUSH', KEYS[4], raw)
        out[2] = out[2] + 1
      else
        if record then
          redis.call('ZADD', KEYS[2], ARGV[3], tag)
          redis.call('HSET', KEYS[1], tag, '[' .. raw .. ',' .. cjson.encode(d['exchange'] or '') ..
            ',' .. cjson.encode(d['routing_key'] or '') .. ']')
          redis.call('SADD', KEYS[3], tag)
        end
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
