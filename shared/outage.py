"""One WARNING when Redis stops answering, one INFO when it answers again: an outage is two log
lines, not a line a second from every loop that retries.

The loops that talk to Redis on their own (the worker's RQ loop and its supervisor, the sweeper)
report each failure and each success here; the first failure of an outage is logged as a WARNING
(the later ones at DEBUG), and the first success after it as an INFO line with the outage's length.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from loguru import logger


class Outage:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._since: float | None = None  # when the current outage began; None: Redis answers

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, where: str) -> None:
        """``where`` could not reach Redis."""
        with self._lock:
            first = self._since is None
            if first:
                self._since = self._clock()
        reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if first:
            logger.warning("Redis unreachable ({}, {}); retrying until it answers", reason, where)
        else:
            logger.debug("Redis still unreachable ({}, {})", reason, where)

    def answered(self) -> None:
        """Redis answered; ends an outage."""
        if self._since is None:  # the common case, without the lock
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            logger.info("Redis reachable again after {:.1f} s", self._clock() - since)
