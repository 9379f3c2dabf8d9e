-- Claim queued RQ jobs: pop up to ARGV[1] job ids from the head of RQ's queue list KEYS[1] into
-- the sorted set KEYS[2], scored ARGV[2] (when they were claimed). Returns the ids, in order.
local ids = {}
for _ = 1, tonumber(ARGV[1]) do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  ids[#ids + 1] = id
end
return ids
