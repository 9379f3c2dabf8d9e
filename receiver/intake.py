"""Put accepted deliveries on the queue exactly once per (hook id, delivery id).

The redelivery mark and the RQ job are written in one MULTI/EXEC under WATCH of the marks: either
both are in Redis or neither is, so a delivery that got 503 can be redelivered, and two receivers
handed the same delivery at once queue it only once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum

from redis import Redis
from redis.exceptions import WatchError
from rq import Queue

from shared.envelope import Envelope
from shared.queueing import delivery_key, job_data
from shared.settings import QueueSettings


class Outcome(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


class Intake:
    def __init__(
        self, connection: Redis, queue: Queue, settings: QueueSettings, dedupe_ttl: Callable[[], int]
    ) -> None:
        self._connection = connection
        self._queue = queue
        self._settings = settings
        self._dedupe_ttl = dedupe_ttl

    def submit(self, envelopes: Sequence[Envelope]) -> list[Outcome]:
        """Queue the new ones among ``envelopes`` as one job; raises ``redis.RedisError`` when Redis fails."""
        keys = [delivery_key(e.hook_id, e.delivery_id) for e in envelopes]
        with self._connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*keys)  # type: ignore[no-untyped-call]
                    seen = {key for key, known in zip(keys, pipe.mget(keys), strict=True) if known}
                    outcomes, fresh = [], []
                    for key, envelope in zip(keys, envelopes, strict=True):
                        if key in seen:
                            outcomes.append(Outcome.DUPLICATE)
                            continue
                        seen.add(key)
                        fresh.append((key, envelope))
                        outcomes.append(Outcome.QUEUED)
                    if not fresh:
                        pipe.unwatch()
                        return outcomes
                    pipe.multi()
                    ttl = self._dedupe_ttl()
                    for key, envelope in fresh:
                        pipe.set(key, envelope.received_at, ex=ttl)
                    data = job_data(self._queue, [e for _, e in fresh], self._settings)
                    self._queue.enqueue_many([data], pipeline=pipe)
                    pipe.execute()
                    return outcomes
                except WatchError:
                    continue  # another receiver wrote one of the marks: look again

    def ping(self) -> bool:
        return bool(self._connection.ping())
