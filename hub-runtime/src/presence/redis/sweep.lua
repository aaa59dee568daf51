-- Removes every entry of the servers whose lease in KEYS[1] ran out (at most ARGV[2] servers
-- a run). ARGV[1]: the key prefix. An entry is the JSON array ["g", hub, group, user,
-- connection] or ["u", hub, user, connection].
-- Returns hub, group, user, hub, group, user… for each user whose last connection in a group
-- was removed: the script runs alone, so each is returned to exactly one sweeper.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prefix = ARGV[1]
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local out = {}
for _, server in ipairs(dead) do
  local set = prefix .. 'server:' .. server
  for _, raw in ipairs(redis.call('SMEMBERS', set)) do
    local ok, e = pcall(cjson.decode, raw)
    if ok and type(e) == 'table' then
      local counts, connections, info, user, connection
      if e[1] == 'g' then
        counts = prefix .. e[2] .. ':gu:' .. e[3]
        connections = prefix .. e[2] .. ':gc:' .. e[3]
        info = prefix .. e[2] .. ':gi:' .. e[3]
        user, connection = e[4], e[5]
      else
        counts = prefix .. e[2] .. ':uu'
        connections = prefix .. e[2] .. ':uc'
        user, connection = e[3], e[4]
      end
      if redis.call('HDEL', connections, connection) == 1 then
        local n = redis.call('HINCRBY', counts, user, -1)
        if n <= 0 then
          redis.call('HDEL', counts, user)
          if info then
            redis.call('HDEL', info, user)
          end
          if e[1] == 'g' then
            table.insert(out, e[2])
            table.insert(out, e[3])
            table.insert(out, e[4])
          end
        end
      end
    end
  end
  redis.call('DEL', set)
  redis.call('DEL', prefix .. 'alive:' .. server)
  redis.call('ZREM', KEYS[1], server)
end
return out
