-- Read marks: for each of KEYS, its state ('queued', 'applied', or '' when there is no mark) and,
-- when ARGV[1] is '1', its body ('' when it has none), flat: {state1, body1, state2, body2, ...}.
-- A mark is a hash; a key of another type is no mark.
local bodies = ARGV[1] == '1'
local out = {}
for _, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key).ok
  local state, body = '', ''
  if kind == 'hash' then
    local found = redis.call('HMGET', key, 'state', 'body')
    state = found[1] or ''
    if bodies then body = found[2] or '' end
  end
  out[#out + 1] = state
  if bodies then out[#out + 1] = body end
end
return out
