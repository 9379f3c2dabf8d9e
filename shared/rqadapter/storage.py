"""RQ's storage as the worker reads and moves it: claims, give-backs, recovery, counts (see
:mod:`shared.rqadapter`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rq import Queue
from rq.job import Job
from rq.registry import StartedJobRegistry

from shared.scripts import LuaScript


class QueueBatches:
    """RQ's queue list and job hashes, for taking several queued jobs at once."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self._claim = LuaScript("shared.rqadapter", "storage.claim")
        self._reclaim = LuaScript("shared.rqadapter", "storage.reclaim")

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
