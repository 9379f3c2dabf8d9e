-- Put back at the head of RQ's queue list KEYS[1], in their order, the claims of the sorted set
-- KEYS[2] scored below ARGV[1] (at most 1000 a call); a claim whose job hash (ARGV[2] .. id) is
-- gone is only dropped. Returns how many claims were taken out of KEYS[2].
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[1], 'LIMIT', 0, 1000)
for i = #ids, 1, -1 do
  redis.call('ZREM', KEYS[2], ids[i])
  if redis.call('EXISTS', ARGV[2] .. ids[i]) == 1 then redis.call('LPUSH', KEYS[1], ids[i]) end
end
return #ids
