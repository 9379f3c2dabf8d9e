"""Group commit: concurrent requests share one Redis write.

While one batch is being written, newly arrived deliveries gather into the next one (up to
``max_batch``); each request gets its answer only once the batch holding it is in Redis. At low load
a batch is one delivery, so latency does not grow; under a burst batches grow by themselves, and
one RQ job carries the whole batch (RQ's bookkeeping costs about 25 round trips per job).

A request waits at most ``receiver.deadline_seconds`` (the handler's ``asyncio.timeout``): one that gave up
while still waiting is left out of the next write; one whose batch was already being written may
still reach Redis after its 503 (a redelivery is then answered as a duplicate, and it is counted once).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from redis.exceptions import RedisError

from receiver.intake import Accepted, Outcome


class CommitStopped(RedisError):
    """The receiver stopped before Redis answered for this delivery: it may or may not be queued
    (answered 503; a redelivery is then queued, or answered as a duplicate)."""


Submit = Callable[[Sequence[Accepted]], Awaitable[list[Outcome]]]
Observer = Callable[[int], None]


class GroupCommit:
    def __init__(self, submit: Submit, max_batch: int, observe_batch: Observer = lambda _: None) -> None:
        self._submit = submit
        self._max_batch = max_batch
        self._observe_batch = observe_batch
        self._pending: list[tuple[Accepted, asyncio.Future[Outcome]]] = []
        self._in_flight: list[tuple[Accepted, asyncio.Future[Outcome]]] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for _, future in self._in_flight + self._pending:
            if not future.done():
                future.set_exception(CommitStopped("the receiver stopped before Redis answered"))
        self._in_flight, self._pending = [], []

    async def submit(self, delivery: Accepted) -> Outcome:
        """The outcome once the batch holding ``delivery`` is in Redis; raises what the write raised."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((delivery, future))
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                batch = self._in_flight = [(d, f) for d, f in batch if not f.done()]  # not answered 503 yet
                if not batch:
                    continue
                self._observe_batch(len(batch))
                try:  # cancelled here (stop), the batch stays in flight for stop() to answer
                    outcomes = await self._submit([delivery for delivery, _ in batch])
                except Exception as exc:  # every waiting request gets the error to answer
                    self._in_flight = []
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self._in_flight = []
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():  # a client that went away is still queued: GitHub sees a failure
                        future.set_result(outcome)
