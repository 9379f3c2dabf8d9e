"""Group commit: concurrent requests share one Redis write.

While one batch is being written, newly arrived deliveries gather into the next one (up to
``max_batch``); each request gets its answer only once the batch holding it is in Redis. At low load
a batch is one delivery, so latency does not grow; under a burst batches grow by themselves, and
one batch carries the whole batch (RQ's bookkeeping costs about 25 round trips per job).

A request waits until its deadline (``receiver.deadline_seconds`` after it started), then fails with
``TimeoutError`` (answered 503): one that gave up while still waiting is left out of the next write;
one whose batch was already being written may still reach Redis after its 503 (a redelivery is then
answered as a duplicate, and it is counted once). One timer watches every waiting request's deadline,
armed for the earliest: a timer per request (``asyncio.timeout``) cost the receiver about 7 µs per
delivery, a tenth of what the group commit adds to a request.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Awaitable, Callable, Sequence

from redis.exceptions import RedisError

from receiver.intake import Accepted, Admission


class CommitStopped(RedisError):
    """The receiver stopped before Redis answered for this delivery: it may or may not be queued
    (answered 503; a redelivery is then queued, or answered as a duplicate)."""


Submit = Callable[[Sequence[Accepted]], Awaitable[list[Admission]]]
Observer = Callable[[int], None]
Waiting = tuple[Accepted, "asyncio.Future[Admission]", float]  # the delivery, its answer, its deadline


class GroupCommit:
    def __init__(self, submit: Submit, max_batch: int, observe_batch: Observer = lambda _: None) -> None:
        self._submit = submit
        self._max_batch = max_batch
        self._observe_batch = observe_batch
        self._pending: list[Waiting] = []
        self._in_flight: list[Waiting] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.TimerHandle | None = None  # fires at the earliest deadline of those waiting

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="group-commit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for _, future, _ in self._in_flight + self._pending:
            if not future.done():
                future.set_exception(CommitStopped("the receiver stopped before Redis answered"))
        self._in_flight, self._pending = [], []

    async def submit(self, delivery: Accepted, deadline: float = math.inf) -> Admission:
        """The outcome once the batch holding ``delivery`` is in Redis; raises what the write raised,
        or ``TimeoutError`` at ``deadline`` (the event loop's clock)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Admission] = loop.create_future()
        self._pending.append((delivery, future, deadline))
        self._wakeup.set()
        if deadline < math.inf and (self._watch is None or deadline < self._watch.when()):
            self._arm(loop, deadline)
        return await future

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        if self._watch is not None:
            self._watch.cancel()
        self._watch = loop.call_at(deadline, self._expire)

    def _expire(self) -> None:
        """Fail those past their deadline, and watch for the next earliest."""
        self._watch = None
        loop = asyncio.get_running_loop()
        now, earliest = loop.time(), math.inf
        for _, future, deadline in itertools.chain(self._in_flight, self._pending):
            if future.done():
                continue
            if deadline <= now:
                future.set_exception(TimeoutError("the delivery's deadline passed before Redis answered"))
            else:
                earliest = min(earliest, deadline)
        if earliest < math.inf:
            self._arm(loop, earliest)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                batch = self._in_flight = [w for w in batch if not w[1].done()]  # not answered 503 yet
                if not batch:
                    continue
                self._observe_batch(len(batch))
                try:  # cancelled here (stop), the batch stays in flight for stop() to answer
                    outcomes = await self._submit([delivery for delivery, _, _ in batch])
                except Exception as exc:  # every waiting request gets the error to answer
                    self._in_flight = []
                    for _, future, _ in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                self._in_flight = []
                for (_, future, _), outcome in zip(batch, outcomes, strict=True):
                    if not future.done():  # a client that went away is still queued: GitHub sees a failure
                        future.set_result(outcome)
