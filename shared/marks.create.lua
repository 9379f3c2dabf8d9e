-- Queue deliveries: create their marks, then run the commands that enqueue their RQ job, all or
-- nothing. If any of the marks exists already, nothing is written and the answer says which.
-- KEYS: the marks. ARGV[1]: TTL in seconds; ARGV[1 + i]: the body of KEYS[i]; then the commands,
-- each as its argument count followed by its arguments.
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    local taken = {}
    for i, k in ipairs(KEYS) do taken[i] = redis.call('EXISTS', k) end
    return taken
  end
end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'state', 'queued', 'body', ARGV[1 + i])
  redis.call('EXPIRE', key, ARGV[1])
end
local at = #KEYS + 2
while at <= #ARGV do
  local count = tonumber(ARGV[at])
  redis.call(unpack(ARGV, at + 1, at + count))
  at = at + count + 1
end
return {}
