-- ARGV: ttl (ms), a new epoch's name, "none" or "from", the asked epoch, the asked offset.
-- Returns {epoch, offset, recovered (1/0), entries after the asked offset...}.
local ttl = tonumber(ARGV[1])
local now = now_ms()
local epoch = epoch_of(ARGV[2], ttl)
local offset = tonumber(redis.call('HGET', KEYS[1], 'offset'))
drop_expired(now, ttl)
if ARGV[3] == 'none' then return {epoch, offset, 1} end
local from = tonumber(ARGV[5])
if ARGV[4] ~= epoch or not from or from < 0 or from > offset then return {epoch, offset, 0} end
if from == offset then return {epoch, offset, 1} end
local count = offset - from
local entries = redis.call('LRANGE', KEYS[2], -count, -1)
if #entries < count or tonumber(string.match(entries[1], '^(%d+):')) ~= from + 1 then
  return {epoch, offset, 0}
end
local result = {epoch, offset, 1}
for _, entry in ipairs(entries) do result[#result + 1] = entry end
return result
