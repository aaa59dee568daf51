-- ARGV: max_len, ttl (ms), a new epoch's name, the payload, the live channel.
-- Appends, trims, refreshes the TTL and publishes "epoch:offset:payload", all at once.
-- Returns {epoch, offset}.
local max_len, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local now = now_ms()
local epoch = epoch_of(ARGV[3], ttl)
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
redis.call('RPUSH', KEYS[2], offset .. ':' .. now .. ':' .. ARGV[4])
redis.call('LTRIM', KEYS[2], -max_len, -1)
drop_expired(now, ttl)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PUBLISH', ARGV[5], epoch .. ':' .. offset .. ':' .. ARGV[4])
return {epoch, offset}
