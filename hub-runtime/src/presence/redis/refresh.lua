-- Renews the lease of server ARGV[1] in KEYS[1] for ARGV[2] ms from now (Redis' clock), and
-- marks it alive (KEYS[2], which a sweep of the server deletes).
-- Returns 1 if the server was marked alive already, 0 if it was swept (or is new): its entries
-- are then to be written again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local alive = redis.call('EXISTS', KEYS[2])
redis.call('SET', KEYS[2], '1')
return alive
