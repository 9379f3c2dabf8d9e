"""The runners' inventory in Redis, so that every replica exposes the same numbers.

One hash, ``gha-exporter:runners``: a field per polled scope (``orgs/O``, ...) holding what its last
complete reading found, as JSON ``{"at": <when read>, "runners": [[id, name, os, state, group,
[labels], kind], ...]}``, beside it ``at:<scope>`` (that time alone: a reader decodes a reading once,
and reads the field again only when it changed: 5,000 runners are half a megabyte), and ``next_poll``
(when the next poll is due, on any replica). A scope
whose reading failed keeps its last complete one (its ``at`` says how old); a scope no longer in
``github.runners`` is forgotten at the next poll. Written by the worker holding the poll's lease
(:mod:`worker.runner_poll`), read by every scrape and API request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis import Redis

from shared import keys
from worker.github_runners import Runner

NEXT_POLL = "next_poll"
AT = "at:"


@dataclass(frozen=True)
class Polled:
    """A scope's last complete reading."""

    scope: str
    at: float
    runners: tuple[Runner, ...]


def encode(runners: Sequence[Runner], at: float) -> bytes:
    rows = [[r.id, r.name, r.os, r.state, r.group, list(r.labels), r.kind] for r in runners]
    return orjson.dumps({"at": at, "runners": rows})


def decode(scope: str, raw: bytes) -> Polled | None:
    """A stored reading, or None when it is not one (written by something else)."""
    try:
        found = orjson.loads(raw)
        rows = found["runners"]
        runners = tuple(
            Runner(int(i), str(n), str(o), str(s), str(g), tuple(str(label) for label in labels), str(k))
            for i, n, o, s, g, labels, k in rows
        )
        return Polled(scope, float(found["at"]), runners)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


class Inventory:
    def __init__(self, connection: Redis) -> None:
        self._connection = connection
        self._decoded: dict[str, tuple[bytes, Polled]] = {}  # scope -> (its at field, its reading)

    def save(self, scope: str, runners: Sequence[Runner], at: float) -> int:
        """Keep ``scope``'s reading; the bytes it takes."""
        data = encode(runners, at)
        self._connection.hset(keys.RUNNERS, mapping={scope: data, AT + scope: repr(at)})
        return len(data)

    def forget_others(self, scopes: Sequence[str]) -> None:
        """Drop the readings of scopes no longer polled."""
        stored = [field.decode() for field in self._connection.hkeys(keys.RUNNERS)]  # type: ignore[union-attr]
        gone = [f for f in stored if f != NEXT_POLL and f.removeprefix(AT) not in scopes]
        if gone:
            self._connection.hdel(keys.RUNNERS, *gone)

    def read(self, scopes: Sequence[str]) -> list[Polled]:
        """The readings of ``scopes`` that exist, in their order (each decoded once)."""
        if not scopes:
            return []
        stamps = self._connection.hmget(keys.RUNNERS, [AT + s for s in scopes])
        times = {s: at for s, at in zip(scopes, stamps, strict=True) if isinstance(at, bytes)}
        changed = [s for s, at in times.items() if self._decoded.get(s, (b"",))[0] != at]
        if changed:
            for scope, blob in zip(changed, self._connection.hmget(keys.RUNNERS, changed), strict=True):
                polled = decode(scope, blob) if isinstance(blob, bytes) else None
                if polled is not None:
                    self._decoded[scope] = (times[scope], polled)
        return [
            self._decoded[s][1] for s, at in times.items() if s in self._decoded and self._decoded[s][0] == at
        ]

    def next_poll(self) -> bytes | None:
        return self._connection.hget(keys.RUNNERS, NEXT_POLL)  # type: ignore[return-value]

    def plan_next(self, at: float) -> None:
        self._connection.hset(keys.RUNNERS, NEXT_POLL, repr(at))
