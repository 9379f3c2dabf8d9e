"""A stop that always ends the process in time, whatever Redis is doing.

A process asked to stop (SIGTERM from ``docker stop``, a rollout, a node drain) first stops
cooperatively: it finishes what it has in hand and closes its connections. When Redis does not
answer (a silent partition, a failover in progress), each of those steps can wait for its timeouts,
and the orchestrator would end the wait with SIGKILL. :class:`StopDeadline` ends it first: armed at
the first stop request, it exits the process when the grace is over, with a log line that says so.

Nothing acknowledged is lost by that: the worker's batch in hand is applied in one Redis transaction
or not at all, and its batches go back to the queue when its lease lapses (``worker.lease_seconds``);
a delivery the receiver had not yet answered is failed for GitHub, which redelivers it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

from loguru import logger

EXIT_CODE = 1  # the stop did not finish cooperatively


class StopDeadline:
    """``arm()`` once a stop is asked; ``grace`` seconds later the process exits, unless it has by
    then. ``on_expiry`` is replaceable for tests (the default ends the process at once)."""

    def __init__(self, grace: float, component: str, on_expiry: Callable[[int], None] = os._exit) -> None:
        self.grace = grace
        self.component = component
        self._on_expiry = on_expiry
        self.armed = False
        self._lock = threading.Lock()

    def arm(self) -> None:
        with self._lock:
            if self.armed:
                return
            self.armed = True
        thread = threading.Thread(target=self._expire, name="stop-deadline", daemon=True)
        thread.start()

    def _expire(self) -> None:
        time.sleep(self.grace)
        logger.error(
            "{} did not stop within its grace of {:g} s (Redis not answering?): exiting now; work in"
            " hand is abandoned and taken up again (nothing acknowledged is lost)",
            self.component,
            self.grace,
        )
        logger.complete()
        sys.stderr.flush()
        sys.stdout.flush()
        self._on_expiry(EXIT_CODE)
