"""Job/run state and metric aggregates in Redis, changed together in one atomic step.

A batch of deliveries is applied as: ``WATCH`` the state keys it touches; read them all with one
script; decide in Python (:mod:`worker.state`); then ``MULTI`` + one script that writes the new
states, moves the in-flight set members and increments the aggregates + ``EXEC``. If another
worker changed one of those states in between, ``EXEC`` fails and the batch is decided again. So
a job is counted with all its metrics or not at all, exactly once, by any number of workers.

Keys (all under ``gha-exporter:``):

- ``state:job:<id>:<attempt>``, ``state:run:<id>:<attempt>``: hashes, expiring ``state.*_ttl_seconds``
  after their last change;
- ``inflight:job:<phase>``, ``inflight:run:<phase>``: sorted sets of attempts queued, waiting or in
  progress, scored by when they entered the phase;
- ``aggregate:<family>:<label names>``: one hash per family: ``<label text>\\x1f<suffix>`` ->
  number, the label text being the escaped inside of the sample's braces (``a="x",b="y"``, see
  :mod:`worker.textformat`, so a scrape only joins strings) and the suffix ``v`` (counter, gauge),
  ``sum``, ``count`` or a bucket bound;
- ``labelsets:<family>:<label names>``: the label sets of the family, for the cardinality guard.

Redis Cluster is not supported (the scripts touch keys they are not given as KEYS).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.client import Pipeline

from shared.queueing import KEY_PREFIX
from worker.metrics import BY_NAME, OVERFLOW, LabelPolicy, Update
from worker.state import INFLIGHT_JOB_PHASES, INFLIGHT_RUN_PHASES, State
from worker.textformat import label_text

SEPARATOR = "\x1f"

READ = r"""
local states = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  if i <= states then out[i] = redis.call('HGETALL', key) else out[i] = redis.call('GET', key) or '' end
end
return out
"""

APPLY = r"""
local batch = cjson.decode(ARGV[1])
local limit = tonumber(batch.limit)
for _, s in ipairs(batch.states) do
  redis.call('DEL', s[1])
  redis.call('HSET', s[1], unpack(s[2]))
  redis.call('EXPIRE', s[1], s[3])
end
for _, m in ipairs(batch.marks) do redis.call('SET', m, 'done', 'EX', batch.mark_ttl) end
for _, z in ipairs(batch.zrem) do redis.call('ZREM', z[1], z[2]) end
for _, z in ipairs(batch.zadd) do redis.call('ZADD', z[1], z[2], z[3]) end
for _, a in ipairs(batch.aggs) do
  local labels = a[3]
  if a[2] ~= '' and redis.call('SISMEMBER', a[2], labels) == 0 then
    if redis.call('SCARD', a[2]) >= limit then
      labels = a[4]
      redis.call('HINCRBY', batch.folded[1], a[5] .. batch.folded[2], 1)
    else
      redis.call('SADD', a[2], labels)
    end
  end
  for _, f in ipairs(a[6]) do
    local name = labels .. '\31' .. f[1]
    if f[2] == 'n' then redis.call('HINCRBY', a[1], name, f[3])
    elseif f[2] == 'f' then redis.call('HINCRBYFLOAT', a[1], name, f[3])
    else
      -- latest: keep the value of the newest fact (ties: the larger value, so any order agrees)
      local at_field = labels .. '\31at'
      local at = tonumber(redis.call('HGET', a[1], at_field) or '-1')
      local new_at = tonumber(f[4])
      local old = tonumber(redis.call('HGET', a[1], name) or '-1')
      if new_at > at or (new_at == at and tonumber(f[3]) > old) then
        redis.call('HSET', a[1], name, f[3], at_field, f[4])
      end
    end
  end
end
return 1
"""

SWEEP = r"""
local now = tonumber(ARGV[1])
local expired = 0
for i, zset in ipairs(KEYS) do
  local cutoff = now - tonumber(ARGV[i * 3 - 1])
  local members = redis.call('ZRANGEBYSCORE', zset, '-inf', '(' .. cutoff, 'LIMIT', 0, 1000)
  for _, member in ipairs(members) do
    if redis.call('ZREM', zset, member) == 1 then
      redis.call('HINCRBY', ARGV[i * 3], ARGV[i * 3 + 1] .. '\31v', 1)
      expired = expired + 1
    end
  end
end
return expired
"""


def key(*parts: str) -> str:
    return ":".join((KEY_PREFIX, *parts))


def aggregate_key(family: str, label_names: Sequence[str]) -> str:
    return key("aggregate", family, ",".join(label_names))


def labelset_key(family: str, label_names: Sequence[str]) -> str:
    return key("labelsets", family, ",".join(label_names))


def state_key(attempt_key: str) -> str:
    return key("state", attempt_key)


def inflight_key(kind: str, phase: str) -> str:
    return key("inflight", kind, phase)


@dataclass(frozen=True)
class InflightEntry:
    kind: str  # job or run
    phase: str
    group: list[str]  # gauge label values: [runs_on, runner_group, repository] or [repository]
    since: float


class Ledger:
    def __init__(
        self,
        connection: Redis,
        policy: LabelPolicy,
        job_ttl: int,
        run_ttl: int,
        mark_ttl: int = 8 * 24 * 3600,
    ) -> None:
        self.connection = connection
        self.policy = policy
        self.job_ttl = job_ttl
        self.run_ttl = run_ttl
        self.mark_ttl = mark_ttl
        self.limit = policy.settings.max_series_per_family

    # -- names -------------------------------------------------------------------------------
    def agg_key(self, family: str) -> str:
        return aggregate_key(family, self.policy.names[family])

    def series_key(self, family: str) -> str:
        return labelset_key(family, self.policy.names[family])

    # -- one batch ---------------------------------------------------------------------------
    def read(
        self, pipe: Pipeline, attempt_keys: Sequence[str], marks: Sequence[str]
    ) -> tuple[dict[str, State], set[str]]:
        """Under WATCH, in one round trip: the states, and which deliveries are already applied."""
        keys = [state_key(k) for k in attempt_keys] + list(marks)
        raw = pipe.eval(READ, len(keys), *keys, str(len(attempt_keys)))
        states = {}
        for attempt_key, flat in zip(attempt_keys, raw, strict=False):
            pairs = [item.decode() if isinstance(item, bytes) else str(item) for item in flat]
            states[attempt_key] = dict(zip(pairs[::2], pairs[1::2], strict=True))
        done = {mark for mark, value in zip(marks, raw[len(attempt_keys) :], strict=True) if value == b"done"}
        return states, done

    def write(
        self,
        pipe: Pipeline,
        initial: Mapping[str, State],
        final: Mapping[str, State],
        updates: Sequence[Update],
        marks: Sequence[str] = (),
    ) -> bool:
        """Queue the batch's single write on ``pipe`` (after MULTI); False when there is nothing to write."""
        batch: dict[str, Any] = {
            "limit": self.limit, "states": [], "zrem": [], "zadd": [], "aggs": [],
            "marks": list(marks), "mark_ttl": self.mark_ttl,
        }  # fmt: skip
        for attempt_key, state in final.items():
            before = initial.get(attempt_key, {})
            if state == before:
                continue
            ttl = self.job_ttl if attempt_key.startswith("job:") else self.run_ttl
            flat = [item for pair in sorted(state.items()) for item in pair]
            batch["states"].append([state_key(attempt_key), flat, ttl])
            kind = attempt_key.split(":", 1)[0]
            old = (before.get("inflight"), before.get("member"), before.get("score"))
            new = (state.get("inflight"), state.get("member"), state.get("score"))
            if old != new:
                if old[0] and old[1]:
                    batch["zrem"].append([inflight_key(kind, old[0]), old[1]])
                if new[0] and new[1]:
                    batch["zadd"].append([inflight_key(kind, new[0]), new[2], new[1]])
        batch["aggs"] = [self._encode(update) for update in updates]
        folded = BY_NAME["series_folded_total"].name
        batch["folded"] = [self.agg_key(folded), SEPARATOR + "v"]
        if not (batch["states"] or batch["aggs"] or batch["marks"]):
            return False
        pipe.eval(APPLY, 0, json.dumps(batch, separators=(",", ":")))
        return True

    def _encode(self, update: Update) -> list[Any]:
        family = BY_NAME[update.family]
        if update.op == "inc":
            fields = [["v", "f", repr(float(update.value))]]
        elif update.op == "set":
            fields = [["v", "l", repr(float(update.value)), repr(float(update.at))]]
        else:
            bound = next((b for b in self.policy.buckets_of(update.family) if update.value <= b), None)
            le = "+Inf" if bound is None else repr(float(bound))
            fields = [[le, "n", "1"], ["sum", "f", repr(float(update.value))], ["count", "n", "1"]]
        names = self.policy.names[update.family]
        return [
            self.agg_key(update.family),
            self.series_key(update.family) if family.configurable else "",
            label_text(names, update.labels),
            label_text(names, [OVERFLOW] * len(names)),
            label_text(BY_NAME["series_folded_total"].default, [update.family]),
            fields,
        ]

    # -- expiry ------------------------------------------------------------------------------
    def sweep(self, now: float) -> int:
        """Count and drop in-flight entries older than their TTL; safe to run on every worker."""
        zsets, args = [], [repr(now)]
        expired_key = self.agg_key("state_expired_total")
        expired_names = self.policy.names["state_expired_total"]
        for kind, phases, ttl in (
            ("job", INFLIGHT_JOB_PHASES, self.job_ttl),
            ("run", INFLIGHT_RUN_PHASES, self.run_ttl),
        ):
            for phase in phases:
                zsets.append(inflight_key(kind, phase))
                args += [str(ttl), expired_key, label_text(expired_names, [kind, phase])]
        return int(self.connection.eval(SWEEP, len(zsets), *zsets, *args))

    # -- reading, at scrape time ---------------------------------------------------------------
    def read_fields(self) -> dict[str, dict[bytes, bytes]]:
        """Every family's hash as stored (``{family: {label text \\x1f suffix: value}}``), at once."""
        pipe = self.connection.pipeline(transaction=False)
        names = [family.name for family in BY_NAME.values()]
        for name in names:
            pipe.hgetall(self.agg_key(name))
        return dict(zip(names, pipe.execute(), strict=True))

    def read_aggregates(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{family: {label text: {suffix: value}}}`` for every family."""
        result: dict[str, dict[str, dict[str, float]]] = {}
        for name, raw in self.read_fields().items():
            series: dict[str, dict[str, float]] = {}
            for field, value in raw.items():
                labels, _, suffix = field.decode().rpartition(SEPARATOR)
                series.setdefault(labels, {})[suffix] = float(value)
            result[name] = series
        return result

    def read_inflight(self) -> list[InflightEntry]:
        pipe = self.connection.pipeline(transaction=False)
        wanted = [("job", p) for p in INFLIGHT_JOB_PHASES] + [("run", p) for p in INFLIGHT_RUN_PHASES]
        for kind, phase in wanted:
            pipe.zrange(inflight_key(kind, phase), 0, -1, withscores=True)
        entries = []
        for (kind, phase), members in zip(wanted, pipe.execute(), strict=True):
            for member, score in members:
                group_json = member.decode().split(SEPARATOR, 1)[0]
                entries.append(InflightEntry(kind, phase, json.loads(group_json), float(score)))
        return entries
