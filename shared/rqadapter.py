"""Everything this project relies on inside RQ that RQ does not document as its API, in one place.

RQ (tested: the range pinned in ``pyproject.toml``) is used through its public API where it has
one: ``Queue``, ``Queue.prepare_data``, ``Job.fetch_many``, the registries' counts, ``SimpleWorker``.
The rest is here, each piece pinned by ``tests/integration/test_rq_contract.py``, so an RQ upgrade
that changes one fails there, with the piece named:

- **Enqueue commands** (receiver): RQ builds a job on a pipeline; the commands it buffers (redis-py's
  ``command_stack``) are run by the delivery marks' create script, so the marks and the job are
  written all or nothing. RQ builds one such job once per process (:class:`JobTemplate`); each
  batch's job is that one with its own id, timestamps, description and data (RQ's ``data`` field:
  zlib over the serializer's ``(function, None, args, kwargs)``).
- **RQ's version cache**: ``Queue.redis_server_version``, which RQ fills with a blocking ``INFO`` on
  first use; the receiver fills it from its asyncio client (:func:`know_server_version`).
- **RQ's storage**: a queue is a list of job ids at ``Queue.key`` (head: next to run), a job is a
  hash at ``Job.redis_job_namespace_prefix + id``, and a job a worker took but has not started waits
  in the list at ``Queue.intermediate_queue_key`` (the worker puts back those left there by a dead
  worker: :meth:`QueueJobs.requeue_stuck`). The worker claims further jobs from the head of the
  list (:class:`QueueJobs`, scripts ``shared/rqadapter.*.lua``), and the scrape counts them.
- **The worker's hooks** (:class:`InProcessWorker`): ``SimpleWorker``'s private
  ``_install_signal_handlers``, ``_stop_requested`` and ``_set_connection``, ``subscribe`` and
  ``teardown`` (called by ``work()``), ``get_heartbeat_ttl``,
  ``dequeue_job_and_maintain_ttl(timeout, max_idle_time)`` (with, inside it, ``heartbeat()`` at the
  start of each try, ``reorder_queues`` first with a dequeued RQ job, ``max_connection_wait_time``
  between tries), ``perform_job(job, queue, execution)`` and ``maintain_heartbeats(job, execution)``;
  and ``StartedJobRegistry.cleanup`` retrying the RQ
  jobs whose heartbeat lapsed (:meth:`QueueJobs.requeue_abandoned`);
  its ``log`` and the message its dequeue loop logs at each failed try
  (:data:`RQ_CONNECTION_RETRY`), reported to the outage tracker instead (:class:`OutageLog`).
"""

from __future__ import annotations

import logging
import signal
import threading
import uuid
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from loguru import logger
from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job
from rq.queue import EnqueueData
from rq.registry import StartedJobRegistry
from rq.utils import now, utcformat, utcparse

from shared import resp
from shared.outage import Outage
from shared.periodic import Periodic
from shared.scripts import LuaScript

TESTED_RQ = ((3, 0), (3, 1))  # at least, below: keep in step with pyproject.toml


def rq_version() -> tuple[int, ...]:
    import rq  # noqa: PLC0415 - only its version

    return tuple(int(part) for part in rq.__version__.split(".")[:2] if part.isdigit())


def rq_is_tested() -> bool:
    low, high = TESTED_RQ
    return low <= rq_version() < high


# -- the receiver -------------------------------------------------------------------------------
def enqueue_commands(queue: Queue, data: EnqueueData) -> list[tuple[Any, ...]]:
    """The commands RQ would send to enqueue ``data`` (nothing is sent)."""
    pipe: Pipeline = queue.connection.pipeline(transaction=False)
    queue.enqueue_many([data], pipeline=pipe)
    commands = [args for args, _options in pipe.command_stack]
    pipe.reset()
    return commands


UNKNOWN_SERVER_VERSION = (5, 0, 9)  # what RQ assumes of a server without INFO (fakeredis)


def server_version(info: dict[str, Any] | None) -> tuple[int, int, int]:
    """Redis's version from its ``INFO server`` (None: it has no INFO), as RQ reads it
    (``rq.utils.get_version``)."""
    if info is None:
        return UNKNOWN_SERVER_VERSION
    parts = [int(part) for part in str(info["redis_version"]).split(".")[:3]]
    major, minor, patch = [*parts, 0, 0][:3]
    return major, minor, patch


def know_server_version(queue: Queue, info: dict[str, Any] | None) -> None:
    """Give ``queue`` Redis's version, read elsewhere. RQ asks for it once per queue with a blocking
    ``INFO`` (the receiver's first batch builds its job with it): an asyncio caller reads it on its
    own client instead, so a Redis that does not answer never blocks its event loop."""
    queue.redis_server_version = server_version(info)


class RQChanged(RuntimeError):
    """RQ's job no longer looks as :class:`JobTemplate` expects (tests/integration/test_rq_contract.py)."""


@dataclass(frozen=True)
class _Slot:
    """Where a filled job puts one of its own values: ``before + value + after``."""

    name: str  # "id", "time", "data" or "description"
    before: str = ""
    after: str = ""

    def fill(self, values: dict[str, Any]) -> Any:
        value = values[self.name]
        return self.before + value + self.after if self.before or self.after else value


Args = tuple[Any, ...]
MakeData = Callable[[str, Args, str], EnqueueData]  # (job id, job args, description) -> RQ's EnqueueData

_TEMPLATE_ID = "00000000-0000-4000-8000-0000000000aa"
_TEMPLATE_ARGS: Args = (["gha-exporter: template argument"],)
_TEMPLATE_DESCRIPTION = "gha-exporter: template description"


class JobTemplate:
    """RQ's commands to enqueue a job, built by RQ once, then filled per job.

    RQ building a job on a pipeline costs the receiver about 130 µs per batch (a job object, a UUID,
    timestamps, JSON, zlib, then redis-py's command stack); a filled template costs a tenth of it.
    Only a job's id, its timestamps (created, enqueued), its data and its description differ from one
    job to the next; the options (timeout, TTLs, retries, queue) are the template's. Building it
    checks that RQ's job still has that shape (:class:`RQChanged` otherwise).
    """

    def __init__(self, queue: Queue, make: MakeData) -> None:
        data = make(_TEMPLATE_ID, _TEMPLATE_ARGS, _TEMPLATE_DESCRIPTION)
        self._queue = queue
        self._make = make
        self._function: str = data.func  # named, as RQ stores it (shared.queueing.JOB_FUNCTION)
        template_data = self._data(_TEMPLATE_ARGS)
        self._commands = [
            [self._slot(arg, template_data) for arg in command] for command in enqueue_commands(queue, data)
        ]
        found = {part.name for command in self._commands for part in command if isinstance(part, _Slot)}
        if not {"id", "data"} <= found:
            raise RQChanged(
                f"RQ's enqueue commands no longer carry the job's {sorted({'id', 'data'} - found)}"
            )

    def _data(self, args: Args) -> bytes:
        return zlib.compress(self._queue.serializer.dumps((self._function, None, args, {})))

    @staticmethod
    def _slot(arg: Any, template_data: bytes) -> Any:
        if isinstance(arg, bytes) and arg == template_data:
            return _Slot("data")
        if not isinstance(arg, str):
            return resp.encode(arg)
        if arg == _TEMPLATE_DESCRIPTION:
            return _Slot("description")
        if _TEMPLATE_ID in arg:
            before, _, after = arg.partition(_TEMPLATE_ID)
            return _Slot("id", before, after)
        try:
            utcparse(arg)
        except ValueError:
            return resp.encode(arg)
        return _Slot("time")

    def commands(
        self, args: Args, description: str, job_id: str | None = None, at: datetime | None = None
    ) -> list[list[Any]]:
        """The commands that enqueue a new job (id ``job_id``, or a new UUID) calling the template's
        function with ``args``, created and enqueued ``at`` (now)."""
        values = {
            "id": job_id or str(uuid.uuid4()),
            "time": utcformat(at or now()),
            "data": self._data(args),
            "description": description,
        }
        return [
            [part.fill(values) if isinstance(part, _Slot) else part for part in command]
            for command in self._commands
        ]

    def rq_commands(self, job_id: str, args: Args, description: str) -> list[tuple[Any, ...]]:
        """What RQ itself builds for the same job (the contract test compares the two)."""
        return enqueue_commands(self._queue, self._make(job_id, args, description))


# -- the worker's view of RQ's storage ----------------------------------------------------------
class QueueJobs:
    """RQ's queue list and job hashes, for taking several queued jobs at once."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._claim = LuaScript("shared", "rqadapter.claim")
        self._reclaim = LuaScript("shared", "rqadapter.reclaim")

    @property
    def connection(self) -> Any:
        return self.queue.connection

    def claim(self, claimed: str, count: int, score: float) -> list[str]:
        """Pop up to ``count`` job ids from the head of the queue into the sorted set ``claimed``."""
        ids = self._claim(self.connection, [self.queue.key, claimed], [count, score])
        return [job_id.decode() for job_id in ids]

    def fetch(self, job_ids: Sequence[str]) -> list[Job | None]:
        return list(Job.fetch_many(job_ids, connection=self.connection, serializer=self.queue.serializer))

    def give_back(self, claimed: str, jobs: Sequence[Job]) -> None:
        """Back at the head of the queue, in their order, and out of ``claimed``."""
        with self.connection.pipeline() as pipe:
            pipe.lpush(self.queue.key, *(job.id for job in reversed(jobs)))
            pipe.zrem(claimed, *(job.id for job in jobs))
            pipe.execute()

    def renew(self, claimed: str, job_ids: Sequence[str], score: float) -> None:
        """Renew claims still in ``claimed`` (a claim reclaimed meanwhile stays gone)."""
        self.connection.zadd(claimed, dict.fromkeys(job_ids, score), xx=True)

    def delete(self, claimed: str, jobs: Sequence[Job]) -> None:
        """Applied: the jobs' hashes go, and their claims."""
        with self.connection.pipeline() as pipe:
            pipe.zrem(claimed, *(job.id for job in jobs))
            pipe.delete(*(job.key for job in jobs))
            pipe.execute()

    def reclaim(self, claimed: str, cutoff: float) -> int:
        """Put back at the head of the queue the claims older than ``cutoff`` whose job still exists."""
        prefix = self.queue.job_class.redis_job_namespace_prefix
        return int(self._reclaim(self.connection, [self.queue.key, claimed], [cutoff, prefix]))

    def requeue_stuck(self, seen_key: str, now: float, cutoff: float) -> int:
        """Put back at the head of the queue the RQ jobs a worker took but never started (it died
        between RQ's dequeue and the start), once seen so since before ``cutoff``; ``seen_key`` (a
        hash) keeps when each was first seen. A live worker starts what it takes within
        milliseconds; RQ's own cleanup of this list runs behind its maintenance lock, which a worker
        killed while holding it keeps for 15 minutes. Returns how many went back."""
        intermediate = self.queue.intermediate_queue_key
        waiting = [job_id.decode() for job_id in self.connection.lrange(intermediate, 0, -1)]
        seen = {k.decode(): float(v) for k, v in self.connection.hgetall(seen_key).items()}
        started = StartedJobRegistry(queue=self.queue)
        moved = 0
        for job_id in waiting:
            if job_id in started:
                continue
            first = seen.get(job_id)
            if first is None:
                self.connection.hset(seen_key, job_id, repr(now))
            elif first < cutoff:
                with self.connection.pipeline() as pipe:
                    pipe.lrem(intermediate, 1, job_id)
                    pipe.lpush(self.queue.key, job_id)
                    pipe.hdel(seen_key, job_id)
                    pipe.execute()
                moved += 1
        gone = set(seen) - set(waiting)
        if gone:
            self.connection.hdel(seen_key, *gone)
        return moved

    def requeue_abandoned(self) -> None:
        """Retry (or fail, past its retries) every started RQ job whose lease lapsed: its worker died."""
        StartedJobRegistry(queue=self.queue).cleanup()

    def counts(self, claimed: str | None = None) -> dict[str, int]:
        """Jobs waiting, taken by a worker but not started, running, failed (and in ``claimed``)."""
        counts = {
            "queued": self.queue.count,
            "dequeued": int(self.connection.llen(self.queue.intermediate_queue_key)),
            "started": self.queue.started_job_registry.count,
            "failed": self.queue.failed_job_registry.count,
        }
        if claimed is not None:
            counts["claimed"] = int(self.connection.zcard(claimed))
        return counts


# -- the worker loop ----------------------------------------------------------------------------
class Stop(Protocol):
    def set(self, signum: int | None = None, frame: Any = None) -> None: ...
    def is_set(self) -> bool: ...


POLL_SECONDS = 1
UNREGISTER_SECONDS = 1.0
RQ_CONNECTION_RETRY = "Worker %s: could not connect to Redis instance"  # the start of RQ's message


class OutageLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """RQ's worker log, but the line its dequeue loop writes at every failed try (once a second
    during an outage) goes to the outage tracker, which logs an outage once."""

    def __init__(self, log: logging.Logger, outage: Outage) -> None:
        super().__init__(log, {})
        self.outage = outage

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(RQ_CONNECTION_RETRY) and len(args) >= 2:
            error = args[1]
            self.outage.failed(error if isinstance(error, BaseException) else OSError(error), "worker loop")
            return
        super().log(level, msg, *args, **kwargs)


class InProcessWorker(SimpleWorker):
    """RQ's in-process worker with a stop flag it always honours and a lease on the RQ job it runs.

    ``stop``, ``lease_seconds`` and ``on_heartbeat`` are set by whoever builds it (RQ builds workers
    with its own arguments). SIGTERM/SIGINT only set the flag; the dequeue wait is cut into slices
    of :data:`POLL_SECONDS` that look at it (RQ's own handler can be swallowed mid-job under load,
    and its blocking dequeue does not look at the flag). While an RQ job runs, a thread renews its
    started-registry entry every third of ``lease_seconds`` (RQ's in-process worker sends no
    heartbeat while it works), and calls ``on_heartbeat``: a worker that died is known to be dead
    ``lease_seconds`` later, however long its RQ job could have taken.
    """

    stop: Stop
    lease_seconds: int
    outage: Outage | None = None  # told when RQ's dequeue loop gets an answer again
    on_heartbeat: Callable[[], None] = staticmethod(lambda: None)
    on_progress: Callable[[], None] = staticmethod(lambda: None)  # each dequeue slice, each RQ job done
    # RQ's dequeue retries a Redis that does not answer for ever, sleeping 1, 2, 4 ... 60 s between
    # tries without looking at any flag. Its sleeps are held at POLL_SECONDS, and each try starts with
    # a heartbeat, where a stop is honoured (below), so a stop asked during an outage takes effect
    # within a try (connect timeout + POLL_SECONDS) instead of at the outage's end.
    max_connection_wait_time = float(POLL_SECONDS)
    _dequeuing = False  # inside RQ's dequeue loop ...
    _dequeued = False  # ... and it has an RQ job in hand

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if self._dequeuing and not self._dequeued and self.stop.is_set():
            raise StopRequested  # work() ends on it; no RQ job is in hand
        super().heartbeat(timeout, pipeline)

    def subscribe(self) -> None:
        """No subscription to RQ's command channel: its commands are for forked workers (kill the
        work horse, stop a job) or a stop, which is a signal here. One connection and one thread
        less, and none left blocked on a Redis that went away when the worker stops."""

    def teardown(self) -> None:
        """RQ unregisters the worker from Redis. A stopping worker gives that
        :data:`UNREGISTER_SECONDS`, not the timeouts of a Redis that does not answer: past it the
        registration expires by itself (RQ's ``worker_ttl``)."""
        if not self.stop.is_set():
            super().teardown()  # type: ignore[no-untyped-call]
            return

        def unregister() -> None:
            try:
                super(InProcessWorker, self).teardown()  # type: ignore[no-untyped-call]
            except Exception as exc:
                logger.debug("worker not unregistered from RQ: {}", exc)

        thread = threading.Thread(target=unregister, name="rq-unregister", daemon=True)
        thread.start()
        thread.join(UNREGISTER_SECONDS)

    def reorder_queues(self, reference_queue: Queue) -> None:
        self._dequeued = True  # RQ calls it first thing with the RQ job it dequeued
        super().reorder_queues(reference_queue)

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop.set)
        signal.signal(signal.SIGINT, self.stop.set)

    @property
    def _stop_requested(self) -> bool:
        return self.stop.is_set()

    @_stop_requested.setter
    def _stop_requested(self, value: bool) -> None:
        if value:
            self.stop.set()

    def _set_connection(self, connection: Any) -> Any:
        """RQ raises the pool's socket timeout to ``worker_ttl - 5`` s (415 s by default) for its
        blocking dequeue; ours waits :data:`POLL_SECONDS` at a time, so the pool keeps the timeout
        it was given (``redis.socket_timeout_seconds``), for RQ's connections and every other."""
        return connection

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:  # noqa: ARG002
        return self.lease_seconds

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        def beat() -> None:
            self.maintain_heartbeats(job, execution)
            self.on_heartbeat()

        with Periodic(self.lease_seconds / 3, beat, name="rq-job-lease"):
            done = bool(super().perform_job(job, queue, execution))
        self.on_progress()
        return done

    def dequeue_job_and_maintain_ttl(
        self,
        timeout: int | None,
        max_idle_time: int | None = None,  # noqa: ARG002
    ) -> Any:
        if timeout is None:  # burst mode: RQ returns at once when the queues are empty
            return super().dequeue_job_and_maintain_ttl(None)
        while not self.stop.is_set():
            self.on_progress()
            self._dequeuing, self._dequeued = True, False
            try:
                result = super().dequeue_job_and_maintain_ttl(POLL_SECONDS, max_idle_time=POLL_SECONDS)
            finally:
                self._dequeuing = False
            if self.outage is not None:  # RQ's loop returns once Redis answered a dequeue
                self.outage.answered()
            if result is not None:
                return result
        return None
