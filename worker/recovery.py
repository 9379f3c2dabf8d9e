"""A dead worker's batches back on the queue, by any worker's sweeper.

A worker holds three kinds of batch: the one RQ runs (RQ's started registry, its heartbeat renewed
with the lease), the further ones it claimed (``gha-exporter:claimed:<queue>``, renewed with the
same lease: :mod:`worker.combine`), and, for a moment, one RQ took from the queue but had not
started (RQ's intermediate list). When a worker dies, each goes back once its lease is
``worker.lease_seconds`` old; their deliveries, applied or not, are then counted once (the marks
decide). Nothing here waits on RQ's maintenance lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared import keys
from shared.rqadapter.storage import QueueBatches


class Recovery:
    def __init__(
        self, batches: QueueBatches, lease_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._jobs = batches
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._claimed = keys.claimed(batches.queue.name)
        self._seen = keys.dequeued_seen(batches.queue.name)

    def reclaim(self) -> int:
        """Put back the batches whose claim was not renewed for a lease (their worker died)."""
        return self._jobs.reclaim(self._claimed, self._clock() - self._lease_seconds)

    def recover(self) -> int:
        """A dead worker's batch back on the queue: its claims, its batch in hand (RQ's started
        registry, whose lease it renewed too), and a batch it took but had not started yet (RQ's
        intermediate list). Run by every worker's sweeper; a short lock keeps two from retrying the
        same batch at once. Returns how many claims and taken jobs went back."""
        # redis-py's Lock, as the reconciler's lease; never released: it lapses, so one worker's
        # sweeper at most recovers per third of a lease
        lock = self._jobs.connection.lock(
            keys.recover_lock(self._jobs.queue.name),
            timeout=max(1.0, self._lease_seconds / 3),
            blocking=False,
            thread_local=False,
        )
        if not lock.acquire():
            return 0
        reclaimed = self.reclaim()
        self._jobs.requeue_abandoned()
        now = self._clock()
        reclaimed += self._jobs.requeue_stuck(self._seen, now, now - self._lease_seconds)
        return reclaimed
