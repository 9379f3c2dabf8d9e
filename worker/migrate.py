"""Move aggregates written by earlier versions to the current key layout.

Earlier versions kept each family's hash at ``agg:<family>:<label names>`` with the label values as
JSON in the field names, and the cardinality guard's sets at ``series:…``. The current layout is
:mod:`worker.codec`'s. Each old key is converted in one transaction (``WATCH`` the old and the new
key, read, ``MULTI``, write, delete the old key, ``EXEC``), so two workers converting together move
it once: counters and histogram fields are added to what the new key holds; a latest-value gauge
keeps the value of the newer fact (by its ``at`` field; ties: the larger value, as the ledger does).

Only the keys of the configured families and label names are looked at (one pipelined round trip,
no keyspace scan), so the worker does it at start and again at every state sweep: what workers of
the earlier version still write during a rolling upgrade is moved too.
"""

from __future__ import annotations

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from worker import codec
from worker.ledger import aggregate_key, key, labelset_key
from worker.metrics import FAMILIES, LabelPolicy


def earlier_aggregate_key(family: str, joined_names: str) -> str:
    return key("agg", family, joined_names)


def earlier_labelset_key(family: str, joined_names: str) -> str:
    return key("series", family, joined_names)


class EarlierLayout:
    def __init__(self, connection: Redis, policy: LabelPolicy) -> None:
        self._connection = connection
        self._policy = policy

    def convert(self) -> int:
        """Convert the earlier layout's keys of the configured families; returns how many moved."""
        candidates = []
        for family in FAMILIES:
            names = self._policy.names[family.name]
            joined = ",".join(names)
            candidates.append(
                (earlier_aggregate_key(family.name, joined), aggregate_key(family.name, names), family)
            )
            candidates.append(
                (earlier_labelset_key(family.name, joined), labelset_key(family.name, names), family)
            )
        with self._connection.pipeline(transaction=False) as pipe:
            for old, _new, _family in candidates:
                pipe.exists(old)
            present = pipe.execute()
        return sum(
            self._convert(old, new, self._policy.names[family.name], family.kind == "gauge")
            for (old, new, family), exists in zip(candidates, present, strict=True)
            if exists
        )

    def _convert(self, old: str, new: str, names: tuple[str, ...], latest: bool) -> int:
        with self._connection.pipeline() as pipe:
            try:
                pipe.watch(old, new)  # type: ignore[no-untyped-call]
                kind = pipe.type(old)
                if kind == b"hash":
                    self._hash(pipe, old, new, names, latest)
                elif kind == b"set":
                    members = [codec.earlier_label_text(names, m) for m in pipe.smembers(old)]
                    pipe.multi()
                    if members:
                        pipe.sadd(new, *members)
                else:
                    return 0  # another worker converted it meanwhile
                pipe.delete(old)
                pipe.execute()
            except WatchError:
                return 0  # the same
        return 1

    @staticmethod
    def _hash(pipe: Pipeline, old: str, new: str, names: tuple[str, ...], latest: bool) -> None:
        """Read ``old`` and queue its fields' moves into ``new`` (MULTI is opened here)."""
        series = codec.decode(pipe.hgetall(old))  # type: ignore[arg-type]  # bytes: not decode_responses
        converted = {
            codec.earlier_label_text(names, labels.encode()): values for labels, values in series.items()
        }
        current: dict[str, dict[str, float]] = {}
        if latest:
            wanted = [codec.field_name(labels, s) for labels in converted for s in (codec.VALUE, codec.AT)]
            stored = pipe.hmget(new, wanted) if wanted else []
            for name, value in zip(wanted, stored, strict=True):
                if value is not None:
                    labels, _, suffix = name.rpartition(codec.SEPARATOR)
                    current.setdefault(labels, {})[suffix] = float(value)
        pipe.multi()
        for labels, values in converted.items():
            if latest:
                have = current.get(labels, {})
                mine = (values.get(codec.AT, -1.0), values.get(codec.VALUE, -1.0))
                if mine > (have.get(codec.AT, -1.0), have.get(codec.VALUE, -1.0)):
                    pipe.hset(new, mapping={codec.field_name(labels, s): repr(v) for s, v in values.items()})
                continue
            for suffix, amount in values.items():
                pipe.hincrbyfloat(new, codec.field_name(labels, suffix), amount)
