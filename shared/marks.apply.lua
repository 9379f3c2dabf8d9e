-- Mark deliveries applied: the body is dropped, the mark kept for the TTL to answer redeliveries.
-- KEYS: the marks. ARGV[1]: TTL in seconds.
for _, key in ipairs(KEYS) do
  redis.call('DEL', key)
  redis.call('HSET', key, 'state', 'applied')
  redis.call('EXPIRE', key, ARGV[1])
end
return #KEYS
