"""Apply several queued RQ jobs as one batch.

The receivers' group commit makes one RQ job per batch of concurrent deliveries; under a burst
those jobs are small, and RQ's bookkeeping (about 25 Redis round trips per job) would then cost the
worker more than applying the deliveries. So, with the job RQ is running, the worker takes further
queued jobs of ours, two round trips each, until their deliveries reach ``worker.max_batch``, applies
them all in one batch, and deletes them.

Taken jobs wait in RQ's intermediate list, as any job a worker has dequeued: if the worker dies
before deleting them, RQ's maintenance puts them back on the queue (after its one-minute grace), and
their deliveries, already applied or not, are then counted once (the redelivery marks decide). A job
that is not ours (another function, or arguments that are not a list) is given back at the head of
the queue for RQ to run as usual; so are the taken jobs when the batch fails, so that RQ retries
them with the job in hand.
"""

from __future__ import annotations

from typing import Any

from loguru import logger
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job

from shared.queueing import JOB_FUNCTION


def is_ours(job: Job) -> bool:
    try:
        return (
            job.func_name == JOB_FUNCTION
            and not job.kwargs
            and len(job.args) == 1
            and isinstance(job.args[0], list)
        )
    except Exception:  # data RQ cannot even decode: RQ's own run fails it properly
        return False


class Combiner:
    def __init__(self, queue: Queue, max_batch: int) -> None:
        self._queue = queue
        self._max_batch = max_batch

    def take(self, have: int) -> list[Job]:
        """Further jobs of ours from the head of the queue, until ``have`` + theirs reach the limit."""
        connection = self._queue.connection
        taken: list[Job] = []
        while have < self._max_batch:
            raw = connection.lmove(self._queue.key, self._queue.intermediate_queue_key)
            if raw is None:
                break
            job_id = raw.decode() if isinstance(raw, bytes) else str(raw)
            job = self._queue.fetch_job(job_id)
            if job is None:  # deleted meanwhile
                connection.lrem(self._queue.intermediate_queue_key, 1, job_id)
                continue
            if not is_ours(job):
                self.give_back([job])
                break
            taken.append(job)
            have += len(job.args[0])
        return taken

    @staticmethod
    def entries(jobs: list[Job]) -> list[Any]:
        return [entry for job in jobs for entry in job.args[0]]

    def finish(self, jobs: list[Job]) -> None:
        """The taken jobs are applied: delete them."""
        if not jobs:
            return
        with self._queue.connection.pipeline() as pipe:
            for job in jobs:
                pipe.lrem(self._queue.intermediate_queue_key, 1, job.id)
                pipe.delete(job.key)
            pipe.execute()

    def give_back(self, jobs: list[Job]) -> None:
        """Put jobs back at the head of the queue, in their order (best effort: else RQ's grace)."""
        if not jobs:
            return
        try:
            with self._queue.connection.pipeline() as pipe:
                for job in reversed(jobs):
                    pipe.lrem(self._queue.intermediate_queue_key, 1, job.id)
                    pipe.lpush(self._queue.key, job.id)
                pipe.execute()
        except RedisError as exc:  # Redis gone: RQ's maintenance brings them back later
            logger.warning("could not give back {} taken jobs: {}", len(jobs), exc)
