"""Count in-flight jobs and runs that outlived their TTL without completing, so lost events show;
put back on the queue the jobs a dead worker had claimed (:mod:`worker.combine`); and move what
workers of an earlier version wrote to the current key layout (:mod:`worker.migrate`)."""

from __future__ import annotations

import threading
import time

from loguru import logger
from redis.exceptions import RedisError

from worker.combine import Combiner
from worker.ledger import Ledger
from worker.migrate import EarlierLayout

RECLAIM_SECONDS = 5.0


class Sweeper:
    def __init__(
        self,
        ledger: Ledger,
        interval_seconds: float,
        combiner: Combiner | None = None,
        earlier: EarlierLayout | None = None,
    ) -> None:
        self._ledger = ledger
        self._earlier = earlier
        self._interval = interval_seconds
        self._combiner = combiner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        tick = min(self._interval, RECLAIM_SECONDS)
        last_sweep = time.monotonic()
        while not self._stop.wait(tick):
            try:
                if self._combiner is not None and (reclaimed := self._combiner.reclaim()):
                    logger.warning("{} jobs claimed by a worker that died went back on the queue", reclaimed)
                if time.monotonic() - last_sweep < self._interval:
                    continue
                last_sweep = time.monotonic()
                if self._earlier is not None and (converted := self._earlier.convert()):
                    logger.info("converted {} aggregate keys of an earlier version", converted)
                expired = self._ledger.sweep(time.time())
            except RedisError as exc:
                logger.warning("sweep skipped: {}", exc)
                continue
            if expired:
                logger.warning("{} in-flight jobs or runs expired without completing", expired)
