-- The in-flight sets summarised per group, so that a reader never holds every member: for each of
-- KEYS (an in-flight set, in score order), a flat list of group, attempts, oldest score, groups in
-- the order of their oldest. A member's group is its part before ARGV[1] (the separator): the
-- gauge's label values. Read in pages of 1,000, so the script's own memory stays small.
local separator = ARGV[1]
local out = {}
for i, key in ipairs(KEYS) do
  local counts, oldest, order = {}, {}, {}
  local start = 0
  while true do
    local page = redis.call('ZRANGE', key, start, start + 999, 'WITHSCORES')
    for j = 1, #page, 2 do
      local member = page[j]
      local cut = string.find(member, separator, 1, true)
      local group = cut and string.sub(member, 1, cut - 1) or member
      local seen = counts[group]
      if seen then
        counts[group] = seen + 1
      else
        counts[group] = 1
        oldest[group] = page[j + 1]
        order[#order + 1] = group
      end
    end
    if #page < 2000 then break end
    start = start + 1000
  end
  local flat = {}
  for _, group in ipairs(order) do
    flat[#flat + 1] = group
    flat[#flat + 1] = counts[group]
    flat[#flat + 1] = oldest[group]
  end
  out[i] = flat
end
return out
