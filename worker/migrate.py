"""Move aggregates written by earlier versions to the current key layout.

Earlier versions kept each family's hash at ``agg:<family>:<label names>`` with the label values as
JSON in the field names, and the cardinality guard's sets at ``series:…``. The current layout keeps
the escaped label text (:mod:`worker.ledger`). Each old key is converted and deleted by one script,
so two workers converting together move it once; counters and histograms are added to whatever
the new key already holds, a latest-value gauge keeps the newer value.

Only the keys of the configured families and label names are looked at (one pipelined round trip,
no keyspace scan), so the worker does it at start and again at every state sweep: what workers of
the earlier version still write during a rolling upgrade is moved too.
"""

from __future__ import annotations

import json

from worker.ledger import Ledger, key
from worker.metrics import FAMILIES

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


def migrate_aggregates(ledger: Ledger) -> int:
    """Convert the earlier layout's keys of the configured families; returns how many there were."""
    convert = ledger.connection.register_script(CONVERT)
    with ledger.connection.pipeline(transaction=False) as pipe:
        for family in FAMILIES:
            names = ledger.policy.names[family.name]
            args: list[str | int] = [json.dumps(list(names)), int(family.kind == "gauge")]
            joined = ",".join(names)
            convert([key("agg", family.name, joined), ledger.agg_key(family.name)], args, client=pipe)
            convert([key("series", family.name, joined), ledger.series_key(family.name)], args, client=pipe)
        return sum(int(converted) for converted in pipe.execute())
