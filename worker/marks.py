"""Per job attempt and per run attempt marks in Redis: was this step already counted?

``first(kind, ...)`` is an atomic SET NX with an expiry, so of any number of deliveries handled
by any number of workers, exactly one gets True for a given attempt and step.
"""

from __future__ import annotations

from redis import Redis

from shared.queueing import KEY_PREFIX


class ProgressMarks:
    def __init__(self, connection: Redis, ttl_seconds: int) -> None:
        self._connection = connection
        self._ttl = ttl_seconds

    @staticmethod
    def key(kind: str, object_id: int, attempt: int, step: str) -> str:
        return f"{KEY_PREFIX}:mark:{kind}:{object_id}:{attempt}:{step}"

    def first(self, kind: str, object_id: int, attempt: int, step: str) -> bool:
        return bool(self._connection.set(self.key(kind, object_id, attempt, step), 1, nx=True, ex=self._ttl))
