"""RQ's in-process worker, with a stop flag that is always honoured, kept alive through outages.

- ``SimpleWorker`` runs each job in this process: metrics updated by a forked child would be lost.
- SIGTERM/SIGINT only set a flag; the dequeue wait is cut into 1 s slices that look at it, so a
  stop takes effect within about a second after the job in hand (RQ's own handler can be
  swallowed mid-job under load, and its blocking dequeue does not look at the flag).
- RQ's ``work()`` returns on an unexpected error (e.g. Redis gone during a heartbeat); the
  supervisor starts a fresh worker with backoff until it is asked to stop.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from itertools import count
from types import FrameType
from typing import Any

from loguru import logger
from redis import Redis
from rq import SimpleWorker

from shared.queueing import SERIALIZER
from shared.settings import QueueSettings

POLL_SECONDS = 1
HEARTBEAT_MARGIN = 10


class StopFlag:
    def __init__(self) -> None:
        self.event = threading.Event()

    def set(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None and not self.event.is_set():
            logger.info("received {}, stopping after the job in hand", signal.Signals(signum).name)
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


class InProcessWorker(SimpleWorker):
    stop_flag: StopFlag

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop_flag.set)
        signal.signal(signal.SIGINT, self.stop_flag.set)

    @property
    def _stop_requested(self) -> bool:
        return self.stop_flag.is_set()

    @_stop_requested.setter
    def _stop_requested(self, value: bool) -> None:
        if value:
            self.stop_flag.set()

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:  # noqa: ARG002
        """How long a started job counts as alive. Jobs run in this process without heartbeats, and
        RQ's death penalty ends one at its timeout, so a small margin is enough: a killed worker's
        job is retried about ``job_timeout + 10 s`` later instead of RQ's ``+ 60 s``."""
        timeout = job.timeout if job.timeout and job.timeout > 0 else 60
        return int(timeout) + HEARTBEAT_MARGIN

    def dequeue_job_and_maintain_ttl(
        self,
        timeout: int | None,
        max_idle_time: int | None = None,  # noqa: ARG002
    ) -> Any:
        if timeout is None:  # burst mode: RQ returns at once when the queues are empty
            return super().dequeue_job_and_maintain_ttl(None)
        while not self.stop_flag.is_set():
            result = super().dequeue_job_and_maintain_ttl(POLL_SECONDS, max_idle_time=POLL_SECONDS)
            if result is not None:
                return result
        return None


def supervise(connection: Redis, settings: QueueSettings, stop: StopFlag, max_backoff: float = 30.0) -> None:
    """Run workers until ``stop`` is set, restarting after failures with exponential backoff."""
    backoff = 1.0
    for generation in count(1):
        if stop.is_set():
            return
        try:
            worker = InProcessWorker(
                [settings.name],
                name=f"{socket.gethostname()}.{os.getpid()}.{generation}",
                connection=connection,
                serializer=SERIALIZER,
                maintenance_interval=settings.maintenance_interval_seconds,
                default_result_ttl=settings.result_ttl_seconds,
            )
            worker.stop_flag = stop
            worker.work(logging_level=None)
            backoff = 1.0
        except Exception as exc:  # Redis unreachable while starting: keep trying
            logger.error("worker loop failed: {}: {}; retrying in {:.0f}s", type(exc).__name__, exc, backoff)
        if not stop.is_set():
            stop.event.wait(backoff)
            backoff = min(backoff * 2, max_backoff)
