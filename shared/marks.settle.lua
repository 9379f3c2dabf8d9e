-- Mark deliveries applied, all or none: the body is dropped, the mark kept for the TTL to answer
-- redeliveries. KEYS: the marks. ARGV[1]: TTL in seconds; ARGV[2]: a gate key ('' for none);
-- ARGV[3..]: each mark's state as the caller read it ('queued', or '' when there was no mark).
-- If a mark is no longer in that state (another worker applied it meanwhile), nothing is written
-- and 0 is returned. Else every mark is applied, the gate key is set (60 s) and 1 returned: a
-- script later in the same transaction writes what the deliveries move only if the gate is there
-- (worker/ledger.write.lua), so both happen or neither, without WATCHing every mark.
local ttl, gate = ARGV[1], ARGV[2]
for i, key in ipairs(KEYS) do
  local state = ''  -- as marks.read.lua reads it: a mark is a hash, anything else is none
  if redis.call('TYPE', key).ok == 'hash' then state = redis.call('HGET', key, 'state') or '' end
  if state ~= ARGV[i + 2] then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('DEL', key)  -- the body with it
  redis.call('HSET', key, 'state', 'applied')
  redis.call('EXPIRE', key, ttl)
end
if gate ~= '' then redis.call('SET', gate, '1', 'EX', 60) end
return 1
