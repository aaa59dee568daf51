-- ARGV: ttl (ms), a new epoch's name, how many. Returns {epoch, offset, latest entries...}.
local ttl, count = tonumber(ARGV[1]), tonumber(ARGV[3])
local now = now_ms()
local epoch = epoch_of(ARGV[2], ttl)
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset'))
drop_expired(now, ttl)
local result = {epoch, offset}
if count > 0 then
  for _, entry in ipairs(redis.call('LRANGE', KEYS[2], -count, -1)) do result[#result + 1] = entry end
end
return result
