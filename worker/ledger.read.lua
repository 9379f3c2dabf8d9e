-- Read job and run states: HGETALL of each of KEYS, in order (an empty list for a missing state).
local out = {}
for i, key in ipairs(KEYS) do out[i] = redis.call('HGETALL', key) end
return out
