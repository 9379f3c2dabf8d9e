-- Write a decided batch: states, in-flight set moves, aggregate movements. Run inside the
-- transaction that WATCHes the states (worker/ledger.py). ARGV[1] is the batch as JSON:
--   states: {key, {field, value, ...}, ttl}: replaces the hash, expiring ttl seconds from now;
--   zrem: {set, member}; zadd: {set, score, member, labelset ('' when the gauge has no labels),
--          labels, overflow member, folded labels, state key}: the in-flight gauge's guard, as for
--          aggs below; a folded member is also written to the state's `member` field, so that
--          the attempt's next move removes what was added;
--   aggs: {hash, labelset ('' when the family is not guarded), labels, overflow labels,
--          folded labels, {{suffix, op, value[, at]}, ...}, updates}: the cardinality guard sends a
--          new label set past `limit` to the overflow labels and counts the updates it stands for
--          in the `folded` hash;
--          op 'n' adds an integer, 'f' a float, 'l' keeps the value of the newest fact
--          (ties: the larger value, so any order agrees), its time in the field with suffix `at`;
--          'x' keeps the exemplar of the newest fact, its time the first word of the value (ties:
--          the larger text);
--   sep: between label text and suffix in a field name (worker/codec.py);
--   recent: {} or {list, most kept, entry, ...}: entries pushed at the head, the list cut to most;
--   gate: '' or the key the marks' apply set just before in the same transaction, when the batch
--         applies deliveries: without it (a delivery was applied by another worker) nothing is written;
--   outbox: {} or {stream, bytes, sending, dropped, most entries, most bytes}: ARGV[2..] are trace
--           entries (worker/trace_entries.py) added to the stream; past either bound the oldest
--           entries after `sending` (the last one a worker is sending: never dropped) are deleted
--           and counted in the `dropped` hash (outbox_full).
local batch = cjson.decode(ARGV[1])
if batch.gate ~= '' and redis.call('DEL', batch.gate) == 0 then
  return 0  -- the marks were not applied (shared/marks.settle.lua): nothing is written
end
local limit = tonumber(batch.limit)
local sep = batch.sep
for _, s in ipairs(batch.states) do
  redis.call('DEL', s[1])
  redis.call('HSET', s[1], unpack(s[2]))
  redis.call('EXPIRE', s[1], s[3])
end
for _, z in ipairs(batch.zrem) do redis.call('ZREM', z[1], z[2]) end
for _, z in ipairs(batch.zadd) do
  local member = z[3]
  if z[4] ~= '' and redis.call('SISMEMBER', z[4], z[5]) == 0 then
    if redis.call('SCARD', z[4]) >= limit then
      member = z[6]
      redis.call('HINCRBY', batch.folded[1], z[7] .. sep .. batch.folded[2], 1)
      redis.call('HSET', z[8], 'member', member)
    else
      redis.call('SADD', z[4], z[5])
    end
  end
  redis.call('ZADD', z[1], z[2], member)
end
for _, a in ipairs(batch.aggs) do
  local labels = a[3]
  if a[2] ~= '' and redis.call('SISMEMBER', a[2], labels) == 0 then
    if redis.call('SCARD', a[2]) >= limit then
      labels = a[4]
      redis.call('HINCRBY', batch.folded[1], a[5] .. sep .. batch.folded[2], a[7])
    else
      redis.call('SADD', a[2], labels)
    end
  end
  for _, f in ipairs(a[6]) do
    local name = labels .. sep .. f[1]
    if f[2] == 'n' then redis.call('HINCRBY', a[1], name, f[3])
    elseif f[2] == 'f' then redis.call('HINCRBYFLOAT', a[1], name, f[3])
    elseif f[2] == 'x' then
      local old = redis.call('HGET', a[1], name)
      local new_at = tonumber(f[4])
      local old_at = old and tonumber(string.sub(old, 1, string.find(old, ' ', 1, true) - 1)) or -1
      if not old or new_at > old_at or (new_at == old_at and f[3] > old) then
        redis.call('HSET', a[1], name, f[3])
      end
    else
      local at_field = labels .. sep .. batch.at
      local at = tonumber(redis.call('HGET', a[1], at_field) or '-1')
      local new_at = tonumber(f[4])
      local old = tonumber(redis.call('HGET', a[1], name) or '-1')
      if new_at > at or (new_at == at and tonumber(f[3]) > old) then
        redis.call('HSET', a[1], name, f[3], at_field, f[4])
      end
    end
  end
end
local outbox = batch.outbox
if #ARGV > 1 then
  local stream, size_key = outbox[1], outbox[2]
  local added = 0
  for i = 2, #ARGV do
    redis.call('XADD', stream, '*', 'e', ARGV[i])
    added = added + #ARGV[i]
  end
  local size = redis.call('INCRBY', size_key, added)
  local count = redis.call('XLEN', stream)
  local most, most_bytes = tonumber(outbox[5]), tonumber(outbox[6])
  if count > most or size > most_bytes then
    local after = '(' .. (redis.call('GET', outbox[3]) or '0-0')
    while count > most or size > most_bytes do
      local oldest = redis.call('XRANGE', stream, after, '+', 'COUNT', 1)
      if #oldest == 0 then break end
      redis.call('XDEL', stream, oldest[1][1])
      size = redis.call('DECRBY', size_key, #oldest[1][2][2])
      count = count - 1
      redis.call('HINCRBY', outbox[4], 'outbox_full', 1)
    end
  end
end
local recent = batch.recent or {}
if #recent > 0 then
  for i = 3, #recent do redis.call('LPUSH', recent[1], recent[i]) end
  redis.call('LTRIM', recent[1], 0, tonumber(recent[2]) - 1)
end
return 1
