-- Count and drop in-flight entries whose state is gone: a state expires state.*_ttl_seconds after
-- its last write (Redis's own clock), so an entry expires by when it was last written, never by
-- GitHub's timestamps (a replayed old delivery stays in flight until its state, just written,
-- expires). ARGV[1]: now; members scored up to now - TTL + a day are looked at (a member's score,
-- GitHub's time, is about when its state was first written, so a gone state's member is among
-- them); ARGV[2]: the states' key prefix;
-- ARGV[3]: the separator before a member's attempt key (worker/codec.py). For each sorted set
-- KEYS[i]: ARGV[3i + 1] its TTL, ARGV[3i + 2] the hash and ARGV[3i + 3] the field to count it in.
-- At most 5000 members looked at per set a call (the sweeper calls again at its next tick).
local now, prefix, sep = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local slack = 86400
local expired = 0
local function attempt_key(member)
  local at, last = 0, nil
  repeat
    last = at
    at = string.find(member, sep, at + 1, true)
  until at == nil
  return string.sub(member, last + 1)
end
for i, zset in ipairs(KEYS) do
  local base = 3 + (i - 1) * 3
  local cutoff = now - tonumber(ARGV[base + 1]) + slack
  local offset, budget = 0, 5000
  while budget > 0 do
    local members = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. cutoff, 'LIMIT', offset, 1000)
    for _, member in ipairs(members) do
      budget = budget - 1
      if redis.call('EXISTS', prefix .. attempt_key(member)) == 0 then
        redis.call('ZREM', zset, member)
        redis.call('HINCRBY', ARGV[base + 2], ARGV[base + 3], 1)
        expired = expired + 1
      else
        offset = offset + 1
      end
    end
    if #members < 1000 then break end
  end
end
return expired
