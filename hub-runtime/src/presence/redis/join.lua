-- Adds a connection of a user: to a group (KEYS[1] the group's user counts, KEYS[2] its
-- connections) or to the hub's online users (the hub's counts and connections), records the
-- entry under this server (KEYS[3]) and renews the server's lease (KEYS[4]).
-- ARGV: user, connection, entry, server, lease (ms), and the user's info in the group (JSON;
-- empty: none), kept in KEYS[5] (only for groups).
-- Returns the user's connection count after the join (1: the first), or -1 when the
-- connection was there already.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), ARGV[4])
if redis.call('HSETNX', KEYS[2], ARGV[2], ARGV[1]) == 0 then
  return -1
end
redis.call('SADD', KEYS[3], ARGV[3])
if KEYS[5] and ARGV[6] ~= '' then
  redis.call('HSET', KEYS[5], ARGV[1], ARGV[6])
end
return redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
