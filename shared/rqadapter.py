"""Everything this project relies on inside RQ that RQ does not document as its API, in one place.

RQ (tested: the range pinned in ``pyproject.toml``) is used through its public API where it has
one: ``Queue``, ``Queue.prepare_data``, ``Job.fetch_many``, the registries' counts, ``SimpleWorker``.
The rest is here, each piece pinned by ``tests/integration/test_rq_contract.py``, so an RQ upgrade
that changes one fails there, with the piece named:

- **Enqueue commands** (receiver): RQ builds a job on a pipeline; the commands it buffers (redis-py's
  ``command_stack``) are run by the delivery marks' create script, so the marks and the job are
  written all or nothing.
- **RQ's storage**: a queue is a list of job ids at ``Queue.key`` (head: next to run), a job is a
  hash at ``Job.redis_job_namespace_prefix + id``, and a job a worker took but has not started waits
  in the list at ``Queue.intermediate_queue_key``. The worker claims further jobs from the head of
  the list (:class:`QueueJobs`, scripts ``shared/rqadapter.*.lua``), and the scrape counts them.
- **The worker's hooks** (:class:`InProcessWorker`): ``SimpleWorker``'s private
  ``_install_signal_handlers`` and ``_stop_requested``, ``get_heartbeat_ttl`` and
  ``dequeue_job_and_maintain_ttl(timeout, max_idle_time)``.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from redis.client import Pipeline
from rq import Queue, SimpleWorker
from rq.job import Job
from rq.queue import EnqueueData

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

    def counts(self) -> dict[str, int]:
        """Jobs waiting, taken by a worker but not started, running, failed."""
        return {
            "queued": self.queue.count,
            "dequeued": int(self.connection.llen(self.queue.intermediate_queue_key)),
            "started": self.queue.started_job_registry.count,
            "failed": self.queue.failed_job_registry.count,
        }


def intermediate_key(queue: Queue) -> str:
    return str(queue.intermediate_queue_key)


# -- the worker loop ----------------------------------------------------------------------------
class Stop(Protocol):
    def set(self, signum: int | None = None, frame: Any = None) -> None: ...
    def is_set(self) -> bool: ...


POLL_SECONDS = 1


class InProcessWorker(SimpleWorker):
    """RQ's in-process worker with a stop flag it always honours and a heartbeat of our choosing.

    ``stop`` and ``heartbeat_ttl`` are set by whoever builds it (RQ builds workers with its own
    arguments). SIGTERM/SIGINT only set the flag; the dequeue wait is cut into slices of
    :data:`POLL_SECONDS` that look at it (RQ's own handler can be swallowed mid-job under load, and
    its blocking dequeue does not look at the flag).
    """

    stop: Stop
    heartbeat_ttl: Callable[[Job], int]

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

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:  # noqa: ARG002
        return self.heartbeat_ttl(job)

    def dequeue_job_and_maintain_ttl(
        self,
        timeout: int | None,
        max_idle_time: int | None = None,  # noqa: ARG002
    ) -> Any:
        if timeout is None:  # burst mode: RQ returns at once when the queues are empty
            return super().dequeue_job_and_maintain_ttl(None)
        while not self.stop.is_set():
            result = super().dequeue_job_and_maintain_ttl(POLL_SECONDS, max_idle_time=POLL_SECONDS)
            if result is not None:
                return result
        return None
