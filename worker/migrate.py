"""Move aggregates written by earlier versions to the current key layout, once, at worker start.

Earlier versions kept each family's hash at ``agg:<family>:<label names>`` with the label values as
JSON in the field names, and the cardinality guard's sets at ``series:…``. The current layout keeps
the escaped label text (:mod:`worker.ledger`). Each old key is converted and deleted by one script,
so two workers starting together convert it once; counters and histograms are added to whatever
the new key already holds, a latest-value gauge keeps the newer value.
"""

from __future__ import annotations

import json

from redis import Redis

from shared.queueing import KEY_PREFIX
from worker.ledger import aggregate_key, labelset_key
from worker.metrics import BY_NAME

NEW_KEY = {"agg": aggregate_key, "series": labelset_key}

CONVERT = r"""
local names = cjson.decode(ARGV[1])
local latest = ARGV[2] == '1'
local function text(json)
  local values = cjson.decode(json)
  local parts = {}
  for i, name in ipairs(names) do
    local v = tostring(values[i] or ''):gsub('\\', '\\\\'):gsub('\n', '\\n'):gsub('"', '\\"')
    parts[i] = name .. '="' .. v .. '"'
  end
  return table.concat(parts, ',')
end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then return 0 end  -- another worker converted it meanwhile
if kind == 'hash' then
  local flat = redis.call('HGETALL', KEYS[1])
  for i = 1, #flat, 2 do
    local labels, suffix = string.match(flat[i], '^(.*)\31([^\31]*)$')
    if labels then
      local field = text(labels) .. '\31' .. suffix
      if latest then redis.call('HSETNX', KEYS[2], field, flat[i + 1])
      else redis.call('HINCRBYFLOAT', KEYS[2], field, flat[i + 1]) end
    end
  end
else
  for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do redis.call('SADD', KEYS[2], text(member)) end
end
redis.call('DEL', KEYS[1])
return 1
"""


def migrate_aggregates(connection: Redis) -> int:
    """Convert every old-layout aggregate and guard key; returns how many were converted."""
    convert = connection.register_script(CONVERT)
    converted = 0
    for old, new_key in NEW_KEY.items():
        for raw in connection.scan_iter(match=f"{KEY_PREFIX}:{old}:*", count=1000):
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            family, _, joined = name.removeprefix(f"{KEY_PREFIX}:{old}:").partition(":")
            names = [n for n in joined.split(",") if n]
            latest = family in BY_NAME and BY_NAME[family].kind == "gauge"
            converted += int(convert([name, new_key(family, names)], [json.dumps(names), int(latest)]))
    return converted
