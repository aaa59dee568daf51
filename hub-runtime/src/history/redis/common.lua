-- Shared by the history scripts. KEYS[1]: the group's meta hash (epoch, offset); KEYS[2]: its
-- log, a list of "offset:milliseconds:payload", oldest first.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The group's epoch, created (with an empty log) when the history is gone.
local function epoch_of(new_epoch, ttl)
  local epoch = redis.call('HGET', KEYS[1], 'epoch')
  if not epoch then
    epoch = new_epoch
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[1], 'epoch', epoch, 'offset', 0)
    redis.call('PEXPIRE', KEYS[1], ttl)
  end
  return epoch
end

-- Drops the entries older than the TTL from the head of the log.
local function drop_expired(now, ttl)
  while true do
    local head = redis.call('LINDEX', KEYS[2], 0)
    if not head then return end
    local at = tonumber(string.match(head, '^%d+:(%d+):'))
    if at and now - at < ttl then return end
    redis.call('LPOP', KEYS[2])
  end
end
