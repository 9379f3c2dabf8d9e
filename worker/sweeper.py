"""Count in-flight jobs and runs that outlived their TTL without completing, so lost events show."""

from __future__ import annotations

import threading
import time

from loguru import logger
from redis.exceptions import RedisError

from worker.ledger import Ledger


class Sweeper:
    def __init__(self, ledger: Ledger, interval_seconds: float) -> None:
        self._ledger = ledger
        self._interval = interval_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="state-sweeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                expired = self._ledger.sweep(time.time())
            except RedisError as exc:
                logger.warning("state sweep skipped: {}", exc)
                continue
            if expired:
                logger.warning("{} in-flight jobs or runs expired without completing", expired)
