-- Count and drop in-flight entries older than their TTL. ARGV[1]: now. For each sorted set
-- KEYS[i]: ARGV[3i - 1] its TTL, ARGV[3i] the hash and ARGV[3i + 1] the field to count them in.
-- At most 1000 entries per set a call (the sweeper calls again at its next tick).
local now = tonumber(ARGV[1])
local expired = 0
for i, zset in ipairs(KEYS) do
  local cutoff = now - tonumber(ARGV[i * 3 - 1])
  local members = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. cutoff, 'LIMIT', 0, 1000)
  for _, member in ipairs(members) do
    if redis.call('ZREM', zset, member) == 1 then
      redis.call('HINCRBY', ARGV[i * 3], ARGV[i * 3 + 1], 1)
      expired = expired + 1
    end
  end
end
return expired
