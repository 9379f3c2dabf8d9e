"""What the scrape and the API read of the ledger: every family's stored series, the in-flight sets
(counted per group by Redis, listed a page at a time), the recent failures and some fields of
states. Reads only, on the connection it is given (the scrape's, with the scrape's timeout).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from redis import Redis

from shared import keys
from shared.scripts import LuaScript
from worker import codec
from worker.inflight import Inflight
from worker.metrics import BY_NAME, LabelPolicy
from worker.state import INFLIGHT_PHASES


def score_pairs(reply: list[Any]) -> tuple[Sequence[bytes], Sequence[Any]]:
    """``ZRANGE ... WITHSCORES`` unparsed: its members and their scores (pairs under RESP3, a flat
    list under RESP2)."""
    if reply and isinstance(reply[0], list):
        members, scores = zip(*reply, strict=True)
        return members, scores
    return reply[0::2], reply[1::2]


class LedgerReads:
    def __init__(self, connection: Redis, policy: LabelPolicy) -> None:
        self._connection = connection
        self._policy = policy
        self._summary = LuaScript("worker", "ledger_reads.summary")

    def read_fields(self) -> dict[str, dict[bytes, bytes]]:
        """Every family's hash as stored (``{family: {field: value}}``, see :mod:`worker.codec`), at once."""
        pipe = self._connection.pipeline(transaction=False)
        names = [family.name for family in BY_NAME.values()]
        for name in names:
            pipe.hgetall(self._policy.aggregate_key(name))
        return dict(zip(names, pipe.execute(), strict=True))

    def read_aggregates(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{family: {label text: {suffix: value}}}`` for every family."""
        return {name: codec.decode(raw) for name, raw in self.read_fields().items()}

    def read_inflight(self) -> Inflight:
        """Every in-flight set, counted per group by Redis at once; the attempts listed a page at a
        time when asked (:mod:`worker.inflight`)."""
        wanted = [(kind, phase) for kind, phases in INFLIGHT_PHASES.items() for phase in phases]
        sets = [keys.inflight(kind, phase) for kind, phase in wanted]
        replies = self._summary(self._connection, sets, [codec.SEPARATOR])
        summary = {
            place: [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]
            for place, flat in zip(wanted, replies, strict=True)
        }
        return Inflight(summary, self.inflight_page)

    def inflight_page(
        self, kind: str, phase: str, start: int, count: int
    ) -> tuple[Sequence[bytes], Sequence[Any]]:
        """Members ``start`` to ``start + count - 1`` of an in-flight set, with their scores."""
        # the reply as it comes: redis-py's pairing of WITHSCORES took most of the time
        reply = self._connection.execute_command(  # type: ignore[no-untyped-call]
            "ZRANGE", keys.inflight(kind, phase), start, start + count - 1, "WITHSCORES"
        )
        return score_pairs(reply)

    def read_recent_failures(self) -> list[dict[str, Any]]:
        """The completed jobs that did not succeed, newest first (by ``completed_at``)."""
        entries = [json.loads(raw) for raw in self._connection.lrange(keys.RECENT_FAILURES, 0, -1)]
        return sorted(entries, key=lambda e: e.get("completed_at") or 0.0, reverse=True)

    def read_states(self, attempt_keys: Sequence[str], fields: Sequence[str]) -> list[list[str | None]]:
        """Some fields of the states of ``attempt_keys`` (``None`` where absent), in one round trip."""
        pipe = self._connection.pipeline(transaction=False)
        for attempt_key in attempt_keys:
            pipe.hmget(keys.state(attempt_key), list(fields))
        return [[None if value is None else value.decode() for value in values] for values in pipe.execute()]
