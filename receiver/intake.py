"""Put accepted deliveries on the queue exactly once per (hook id, delivery id).

A batch is written in one round trip by the delivery marks' create script (:mod:`shared.marks`):
if none of its marks exists, it creates them (each holding its body until the worker applies the
delivery) and runs the commands that enqueue the batch of their bodiless envelopes; if some
exist, it writes nothing and says which, and the batch is tried again without those (answered as
duplicates). Scripts run atomically, so either a mark and its job are both in Redis or neither is:
a delivery that got 503 can be redelivered, and two receivers handed the same delivery at once
queue it only once. (Under ``maxmemory`` with ``noeviction`` Redis refuses the script at its first
write, before anything is written.)

RQ builds the job once (:class:`shared.rqadapter.enqueue.JobTemplate`); each batch fills it in. The
intake is asyncio's, so the receiver's event loop never waits on a thread; it is the one way a
delivery is queued (the tests and benchmarks queue through it too: ``bench/workload.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import OutOfMemoryError, ResponseError
from rq import Queue

from receiver.headroom import Headroom
from shared import keys
from shared.envelope import Envelope
from shared.marks import AsyncDeliveryMarks
from shared.queueing import job_args, job_template
from shared.redis_connect import close_async
from shared.rqadapter.enqueue import JobTemplate, know_server_version
from shared.settings import QueueSettings


class Admission(StrEnum):
    """What became of a delivery at the intake: queued, or a duplicate of one already marked."""

    QUEUED = "queued"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Accepted:
    """A verified delivery: its envelope (body None) and its body, for the mark."""

    envelope: Envelope
    body: bytes

    @property
    def key(self) -> str:
        return keys.mark(self.envelope.hook_id, self.envelope.delivery_id)


def plan(marks: Sequence[str]) -> tuple[list[Admission], list[int]]:
    """Admissions so far, and the indexes to try to queue: a repeat inside the batch is a duplicate."""
    seen: set[str] = set()
    outcomes, fresh = [], []
    for index, key in enumerate(marks):
        if key in seen:
            outcomes.append(Admission.DUPLICATE)
            continue
        seen.add(key)
        fresh.append(index)
        outcomes.append(Admission.QUEUED)
    return outcomes, fresh


def retry_without(fresh: list[int], taken: Sequence[int], outcomes: list[Admission]) -> list[int]:
    """After a refused try: the taken ones become duplicates, the others are tried again."""
    for index, flag in zip(fresh, taken, strict=True):
        if flag:
            outcomes[index] = Admission.DUPLICATE
    return [index for index, flag in zip(fresh, taken, strict=True) if not flag]


class AsyncIntake:
    """With ``headroom``, a batch is refused (:class:`receiver.headroom.RedisFull`) while Redis is
    above the receivers' memory high-water mark."""

    def __init__(
        self,
        connection: AsyncRedis,
        marks: AsyncDeliveryMarks,
        queue: Queue,
        settings: QueueSettings,
        headroom: Headroom | None = None,
    ) -> None:
        self._queue = queue
        self._settings = settings
        # built at the first batch, with Redis's version (which RQ asks for with a blocking call: it
        # is read first on this asyncio client)
        self._template: JobTemplate | None = None
        self.connection = connection
        self._marks = marks
        self.headroom = headroom

    async def submit(self, deliveries: Sequence[Accepted]) -> list[Admission]:
        """Queue the new ones among ``deliveries`` as one job; raises ``redis.RedisError`` if Redis fails."""
        if self._template is None and self._queue.redis_server_version is None:
            try:
                info = await self.connection.info("server")
            except ResponseError:  # a server without INFO (fakeredis): RQ's assumption
                info = None
            know_server_version(self._queue, info)
        if self.headroom is not None:
            self.headroom.check()
        outcomes, fresh = plan([d.key for d in deliveries])
        while fresh:
            try:
                taken = await self._marks.create(*self._create_call(deliveries, fresh))
            except OutOfMemoryError:
                if self.headroom is not None:
                    self.headroom.refused()
                raise
            if not taken:
                if self.headroom is not None:
                    self.headroom.wrote(sum(len(deliveries[i].body) for i in fresh), len(fresh))
                break
            fresh = retry_without(fresh, taken, outcomes)
        return outcomes

    def _create_call(
        self, deliveries: Sequence[Accepted], fresh: list[int]
    ) -> tuple[list[str], list[bytes], list[list[Any]]]:
        """The marks, bodies and enqueue commands of the deliveries at ``fresh``."""
        if self._template is None:
            self._template = job_template(self._queue, self._settings)
        chosen = [deliveries[i] for i in fresh]
        commands = self._template.commands(*job_args([d.envelope for d in chosen]))
        return [d.key for d in chosen], [d.body for d in chosen], commands

    async def ping(self) -> bool:
        return bool(await self.connection.ping())

    async def close(self) -> None:
        await self._marks.close()
        await close_async(self.connection)
