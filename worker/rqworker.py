"""The worker loop: RQ's in-process worker (:class:`shared.rqadapter.InProcessWorker`), with a stop
flag that is always honoured, kept alive through outages.

- ``SimpleWorker`` runs each job in this process: metrics updated by a forked child would be lost.
- SIGTERM/SIGINT only set a flag, which the worker looks at at least every second, so a stop
  takes effect within about a second after the RQ job in hand.
- A started RQ job counts as alive for its timeout + :data:`HEARTBEAT_MARGIN` (RQ's death penalty
  ends one at its timeout), so a killed worker's job is retried about ``job_timeout + 10 s`` later
  instead of RQ's ``+ 60 s``.
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

from loguru import logger
from redis import Redis
from rq.job import Job

from shared.queueing import SERIALIZER
from shared.rqadapter import InProcessWorker
from shared.settings import QueueSettings

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


def heartbeat_ttl(job: Job) -> int:
    """How long a started RQ job counts as alive: jobs run here without heartbeats."""
    timeout = job.timeout if job.timeout and job.timeout > 0 else 60
    return int(timeout) + HEARTBEAT_MARGIN


def make_worker(
    connection: Redis, settings: QueueSettings, stop: StopFlag, name: str | None = None
) -> InProcessWorker:
    worker = InProcessWorker(
        [settings.name],
        name=name,
        connection=connection,
        serializer=SERIALIZER,
        maintenance_interval=settings.maintenance_interval_seconds,
        default_result_ttl=settings.result_ttl_seconds,
    )
    worker.stop = stop
    worker.heartbeat_ttl = heartbeat_ttl
    return worker


def supervise(connection: Redis, settings: QueueSettings, stop: StopFlag, max_backoff: float = 30.0) -> None:
    """Run workers until ``stop`` is set, restarting after failures with exponential backoff."""
    backoff = 1.0
    for generation in count(1):
        if stop.is_set():
            return
        try:
            name = f"{socket.gethostname()}.{os.getpid()}.{generation}"
            make_worker(connection, settings, stop, name).work(logging_level=None)
            backoff = 1.0
        except Exception as exc:  # Redis unreachable while starting: keep trying
            logger.error("worker loop failed: {}: {}; retrying in {:.0f}s", type(exc).__name__, exc, backoff)
        if not stop.is_set():
            stop.event.wait(backoff)
            backoff = min(backoff * 2, max_backoff)
