"""Apply several queued batches as one batch.

The receivers' group commit makes one batch per batch of concurrent deliveries; under a burst
those jobs are small, and RQ's bookkeeping (about 25 Redis round trips per job) would then cost the
worker more than applying the deliveries. So, with the job RQ is running, the worker claims further
queued jobs of ours (one script and one fetch per round, however many jobs), until their deliveries
reach ``worker.max_batch``, applies them all in one batch, and deletes them.

A claimed job moves from the queue to the sorted set ``gha-exporter:claimed:<queue>``, scored by
when its claim was last renewed: the worker renews the claims it holds with the lease of the batch
it runs (every third of ``worker.lease_seconds``). If the worker dies before deleting them, any
worker's sweeper puts them back at the head of the queue once the claim is ``worker.lease_seconds``
old (:mod:`worker.recovery`), and their deliveries, applied or not, are then counted once (the
marks decide). A job that is not ours (another function, or arguments
that are not one list) is given back at the head of the queue for RQ to run as usual; so are the
claimed jobs when the batch fails, so that RQ retries them with the job in hand.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from loguru import logger
from redis.exceptions import OutOfMemoryError, RedisError
from rq.job import Job

from shared import keys
from shared.queueing import BATCH_FUNCTION
from shared.rqadapter.storage import QueueBatches

MAX_JOBS_PER_ROUND = 100


def is_ours(job: Job) -> bool:
    try:
        return (
            job.func_name == BATCH_FUNCTION
            and not job.kwargs
            and len(job.args) == 1
            and isinstance(job.args[0], list)
        )
    except Exception:  # data RQ cannot even decode: RQ's own run fails it properly
        return False


class Combiner:
    def __init__(self, jobs: QueueBatches, max_batch: int, clock: Callable[[], float] = time.time) -> None:
        self._jobs = jobs
        self._max_batch = max_batch
        self._clock = clock
        self._claimed = keys.claimed(jobs.queue.name)
        self._in_hand: list[str] = []  # the ids of the batches this worker claimed and still holds
        self._in_hand_lock = threading.Lock()

    def take(self, have: int) -> list[Job]:
        """Further batches of ours from the head of the queue, until ``have`` + theirs reach the limit
        (or Redis, at its memory limit, refuses to record more claims)."""
        taken: list[Job] = []
        per_job = max(have, 1)
        while have < self._max_batch:
            wanted = min(MAX_JOBS_PER_ROUND, max(1, (self._max_batch - have) // per_job))
            try:
                ids = self._jobs.claim(self._claimed, wanted, self._clock())
            except OutOfMemoryError:  # no room to claim more (the script claims all or nothing)
                break
            if not ids:
                break
            fetched = self._jobs.fetch(ids)
            gone = [job_id for job_id, job in zip(ids, fetched, strict=True) if job is None]
            if gone:  # deleted meanwhile
                self._jobs.connection.zrem(self._claimed, *gone)
            present = [job for job in fetched if job is not None]
            foreign = next((i for i, job in enumerate(present) if not is_ours(job)), None)
            if foreign is not None:  # leave it, and what follows, to RQ, in their order
                self.give_back(present[foreign:])
                present = present[:foreign]
            taken += present
            self._hold([job.id for job in present])
            have += sum(len(job.args[0]) for job in present)
            if foreign is not None or len(ids) < wanted:
                break
            per_job = max(1, have // (len(taken) + 1))
        return taken

    @staticmethod
    def entries(jobs: list[Job]) -> list[Any]:
        return [entry for job in jobs for entry in job.args[0]]

    def _hold(self, ids: list[str]) -> None:
        with self._in_hand_lock:
            self._in_hand += ids

    def _release(self, jobs: list[Job]) -> None:
        gone = {job.id for job in jobs}
        with self._in_hand_lock:
            self._in_hand = [job_id for job_id in self._in_hand if job_id not in gone]

    def renew(self) -> None:
        """Renew the claims this worker holds (called with the lease of the batch it runs)."""
        with self._in_hand_lock:
            in_hand = list(self._in_hand)
        if in_hand:
            self._jobs.renew(self._claimed, in_hand, self._clock())

    def finish(self, jobs: list[Job]) -> None:
        """The taken batches are applied: delete them."""
        if jobs:
            self._jobs.delete(self._claimed, jobs)
            self._release(jobs)

    def give_back(self, jobs: list[Job]) -> None:
        """Put batches back at the head of the queue, in their order (best effort: else the sweeper)."""
        if not jobs:
            return
        self._release(jobs)
        try:
            self._jobs.give_back(self._claimed, jobs)
        except RedisError as exc:
            logger.warning("could not give back {} claimed jobs: {}", len(jobs), exc)
