"""The worker's upkeep (its "sweeper"), every 2 s on a thread of its own: tell :class:`Liveness`
whether deliveries wait, look at Redis's dataset epoch (:mod:`shared.dataset`), put back on the
queue the batches of a worker whose lease lapsed (:mod:`worker.recovery`), and, every
``state.sweep_interval_seconds``, count in-flight jobs and runs that outlived their TTL without
completing (:mod:`worker.expiry`), so lost events show."""

from __future__ import annotations

import time
from collections.abc import Callable

from loguru import logger
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.outage import Outage
from shared.periodic import Periodic
from worker.expiry import Expiry
from worker.liveness import Liveness
from worker.recovery import Recovery

RECOVER_SECONDS = 2.0


class Upkeep:
    def __init__(
        self,
        expiry: Expiry,
        interval_seconds: float,
        *,
        recovery: Recovery | None = None,
        liveness: Liveness | None = None,
        waiting: Callable[[], int] = lambda: 0,
        outage: Outage | None = None,
        check_dataset: Callable[[], None] = lambda: None,
    ) -> None:
        self._expiry = expiry
        self._check_dataset = check_dataset
        self._outage = outage or Outage()
        self._liveness = liveness
        self._waiting = waiting
        self._interval = interval_seconds
        self._recovery = recovery
        self._last_sweep = time.monotonic()
        self._loop = Periodic(min(self._interval, RECOVER_SECONDS), self._round, name="state-sweeper")

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def _round(self) -> None:
        try:
            if self._liveness is not None:
                self._liveness.saw_queue(self._waiting())
            self._outage.answered()
            self._check_dataset()
            if self._recovery is not None and (reclaimed := self._recovery.recover()):
                logger.warning("{} jobs claimed by a worker that died went back on the queue", reclaimed)
            if time.monotonic() - self._last_sweep < self._interval:
                return
            self._last_sweep = time.monotonic()
            expired = self._expiry.sweep(time.time())
        except RedisError as exc:
            if self._liveness is not None:
                self._liveness.saw_queue(None)
            if isinstance(exc, RedisConnectionError | RedisTimeoutError):
                self._outage.failed(exc, "sweeper")
            else:  # Redis answered, with an error (e.g. refusing writes for memory)
                logger.warning("sweep skipped: {}", exc)
            return
        if expired:
            logger.warning("{} in-flight jobs or runs expired without completing", expired)
