"""Is this worker wedged? ``/health`` says no when its RQ loop has made no progress (no wait for
batches, no batch finished) for ``worker.stall_seconds`` while deliveries wait in the queue, so an
orchestrator restarts it, whatever the reason (Redis refusing its writes, a bug). When the queue
cannot be read, what was last read stands: an error while checking is no progress."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Liveness:
    def __init__(self, stall_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._stall_seconds = stall_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._last_progress = clock()
        self._waiting = False

    def progressed(self) -> None:
        """The RQ loop waited for batches, or finished one."""
        with self._lock:
            self._last_progress = self._clock()

    def saw_queue(self, waiting: int | None) -> None:
        """batches waiting in the queue as just read; None when Redis could not be read (what was
        read last stands)."""
        if waiting is None:
            return
        with self._lock:
            self._waiting = bool(waiting)

    def healthy(self) -> bool:
        with self._lock:
            stalled = self._clock() - self._last_progress > self._stall_seconds
            return not (stalled and self._waiting)
