-- Removes a connection of a user (the keys of join.lua, without the lease: KEYS[4] is the
-- group's info, if any).
-- ARGV: connection, entry.
-- Returns the user's connection count after the leave (0: the last), or -1 when the connection
-- was not there (never joined, or swept).
local user = redis.call('HGET', KEYS[2], ARGV[1])
if not user then
  return -1
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[2])
local n = redis.call('HINCRBY', KEYS[1], user, -1)
if n <= 0 then
  redis.call('HDEL', KEYS[1], user)
  if KEYS[4] then
    redis.call('HDEL', KEYS[4], user)
  end
  return 0
end
return n
