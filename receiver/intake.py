"""Put accepted deliveries on the queue exactly once per (hook id, delivery id).

The redelivery mark (holding the body until the worker applies the delivery) and the RQ job (the
bodiless envelopes of a batch) are written in one MULTI/EXEC under WATCH of the marks: either both
are in Redis or neither is, so a delivery that got 503 can be redelivered, and two receivers handed
the same delivery at once queue it only once.

Two front ends share that logic: :class:`Intake` (blocking, redis-py) and :class:`AsyncIntake`
(asyncio, used by the receiver so that its event loop never waits on a thread). RQ builds the job
on a stand-in pipeline that records its commands; they are replayed inside the transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import WatchError
from rq import Queue

from shared.envelope import Envelope
from shared.queueing import delivery_key, job_data
from shared.settings import QueueSettings


class Outcome(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Accepted:
    """A verified delivery: its envelope (body None) and its body, for the mark."""

    envelope: Envelope
    body: bytes

    @property
    def key(self) -> str:
        return delivery_key(self.envelope.hook_id, self.envelope.delivery_id)


def plan(keys: Sequence[str], known: Sequence[Any]) -> tuple[list[Outcome], list[int]]:
    """Outcomes in order, and the indexes of the deliveries to queue (new, first of their id)."""
    seen = {key for key, value in zip(keys, known, strict=True) if value}
    outcomes, fresh = [], []
    for index, key in enumerate(keys):
        if key in seen:
            outcomes.append(Outcome.DUPLICATE)
            continue
        seen.add(key)
        fresh.append(index)
        outcomes.append(Outcome.QUEUED)
    return outcomes, fresh


class CommandRecorder:
    """Stands in for a redis pipeline while RQ builds a job: records the commands it would send."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name.startswith("_"):
            raise AttributeError(name)

        def record(*args: Any, **kwargs: Any) -> None:
            self.commands.append((name, args, kwargs))

        return record


class _Base:
    def __init__(self, queue: Queue, settings: QueueSettings, dedupe_ttl: Callable[[], int]) -> None:
        self._queue = queue
        self._settings = settings
        self._dedupe_ttl = dedupe_ttl

    def _job_commands(
        self, envelopes: Sequence[Envelope]
    ) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
        recorder = CommandRecorder()
        self._queue.enqueue_many([job_data(self._queue, envelopes, self._settings)], pipeline=recorder)  # type: ignore[arg-type]
        return recorder.commands

    def _queue_writes(self, pipe: Any, deliveries: Sequence[Accepted], fresh: list[int]) -> None:
        """After MULTI: the marks with the bodies, and the job, on a sync or an asyncio pipeline alike."""
        ttl = self._dedupe_ttl()
        for index in fresh:
            pipe.set(deliveries[index].key, deliveries[index].body, ex=ttl)
        for name, args, kwargs in self._job_commands([deliveries[i].envelope for i in fresh]):
            getattr(pipe, name)(*args, **kwargs)


class Intake(_Base):
    def __init__(
        self, connection: Redis, queue: Queue, settings: QueueSettings, dedupe_ttl: Callable[[], int]
    ) -> None:
        super().__init__(queue, settings, dedupe_ttl)
        self._connection = connection

    def submit(self, deliveries: Sequence[Accepted]) -> list[Outcome]:
        """Queue the new ones among ``deliveries`` as one job; raises ``redis.RedisError`` if Redis fails."""
        keys = [d.key for d in deliveries]
        with self._connection.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*keys)  # type: ignore[no-untyped-call]
                    outcomes, fresh = plan(keys, pipe.mget(keys))
                    if not fresh:
                        return outcomes
                    pipe.multi()
                    self._queue_writes(pipe, deliveries, fresh)
                    pipe.execute()
                    return outcomes
                except WatchError:
                    continue  # another receiver wrote one of the marks: look again


class AsyncIntake(_Base):
    def __init__(
        self, connection: AsyncRedis, queue: Queue, settings: QueueSettings, dedupe_ttl: Callable[[], int]
    ) -> None:
        super().__init__(queue, settings, dedupe_ttl)
        self._connection = connection

    async def submit(self, deliveries: Sequence[Accepted]) -> list[Outcome]:
        keys = [d.key for d in deliveries]
        async with self._connection.pipeline() as pipe:
            while True:
                try:
                    await pipe.watch(*keys)
                    outcomes, fresh = plan(keys, await pipe.mget(keys))
                    if not fresh:
                        return outcomes
                    pipe.multi()  # type: ignore[no-untyped-call]
                    self._queue_writes(pipe, deliveries, fresh)
                    await pipe.execute()
                    return outcomes
                except WatchError:
                    continue

    async def ping(self) -> bool:
        return bool(await self._connection.ping())

    async def close(self) -> None:
        await self._connection.aclose()
