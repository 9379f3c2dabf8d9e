-- Delete trace entries from the outbox (worker/outbox.py): those sent, or those dropped.
-- KEYS: the stream, its byte count, the dropped-by-reason hash.
-- ARGV[1]: '' for entries sent, else the reason they are dropped (counted for those still there);
-- ARGV[2..]: id, size, id, size, ... An entry no longer there (another worker's send after this
-- one's lease lapsed) changes nothing. Returns how many were there.
local found = 0
for i = 2, #ARGV, 2 do
  if redis.call('XDEL', KEYS[1], ARGV[i]) == 1 then
    found = found + 1
    redis.call('DECRBY', KEYS[2], ARGV[i + 1])
  end
end
if ARGV[1] ~= '' and found > 0 then
  redis.call('HINCRBY', KEYS[3], ARGV[1], found)
end
return found
