"""The worker loop: RQ's in-process worker (:class:`shared.rqadapter.worker.InProcessWorker`), with a stop
flag that is always honoured, kept alive through outages.

- ``SimpleWorker`` runs each job in this process: metrics updated by a forked child would be lost.
- SIGTERM/SIGINT only set a flag, which the worker looks at at least every second, so a stop
  takes effect within about a second after the batch in hand, also while Redis does not answer
  (RQ's own reconnection loop is cut short: :class:`shared.rqadapter.worker.InProcessWorker`). The signal
  also arms the stop deadline (``worker.stop_grace_seconds``): whatever Redis does, the process is
  gone by then (:mod:`shared.stop_deadline`).
- A started batch is leased for ``worker.lease_seconds``, renewed every third of it while it runs
  (and the batches claimed with it, :mod:`worker.combine`), so a killed worker's batch is retried
  about ``lease_seconds`` after its death, by any worker's sweeper, instead of RQ's ``timeout + 60 s``.
- RQ's ``work()`` returns on an unexpected error (e.g. Redis gone during a heartbeat, or not there
  yet when it registers); the supervisor starts a fresh worker until it is asked to stop, at most
  :data:`MAX_BACKOFF_SECONDS` apart, so the worker is back within seconds of Redis.
- An outage is logged once when it begins and once when it ends (:mod:`shared.outage`).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable
from itertools import count
from types import FrameType

from loguru import logger
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.outage import Outage
from shared.queueing import SERIALIZER
from shared.rqadapter.worker import InProcessWorker, OutageLog
from shared.settings import QueueSettings
from shared.stop_deadline import StopDeadline

MAX_BACKOFF_SECONDS = 2.0


class StopFlag:
    """Set by SIGTERM/SIGINT (or by hand). A signal also arms ``deadline``, when given: the process
    then exits within its grace even if Redis keeps the cooperative stop waiting."""

    def __init__(self, deadline: StopDeadline | None = None) -> None:
        self.event = threading.Event()
        self.deadline = deadline

    def set(self, signum: int | None = None, _frame: FrameType | None = None) -> None:
        if signum is not None and not self.event.is_set():
            grace = f" (exiting within {self.deadline.grace:g} s)" if self.deadline else ""
            logger.info("received {}, stopping after the job in hand{}", signal.Signals(signum).name, grace)
        if signum is not None and self.deadline is not None:
            self.deadline.arm()
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


def make_worker(
    connection: Redis,
    settings: QueueSettings,
    stop: StopFlag,
    *,
    name: str | None = None,
    lease_seconds: int = 10,
    on_heartbeat: Callable[[], None] = lambda: None,
    on_progress: Callable[[], None] = lambda: None,
    outage: Outage | None = None,
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
    worker.lease_seconds = lease_seconds
    worker.on_heartbeat = on_heartbeat
    worker.on_progress = on_progress
    if outage is not None:
        worker.outage = outage
        worker.log = OutageLog(worker.log, outage)  # type: ignore[assignment]
    return worker


def supervise(
    connection: Redis,
    settings: QueueSettings,
    stop: StopFlag,
    *,
    lease_seconds: int,
    on_heartbeat: Callable[[], None],
    on_progress: Callable[[], None],
    outage: Outage | None = None,
    max_backoff: float = MAX_BACKOFF_SECONDS,
) -> None:
    """Run workers until ``stop`` is set, restarting after failures with backoff (1 s, then
    ``max_backoff``)."""
    outage = outage or Outage()
    backoff = 1.0
    for generation in count(1):
        if stop.is_set():
            return
        try:
            name = f"{socket.gethostname()}.{os.getpid()}.{generation}"
            worker = make_worker(
                connection,
                settings,
                stop,
                name=name,
                lease_seconds=lease_seconds,
                on_heartbeat=on_heartbeat,
                on_progress=on_progress,
                outage=outage,
            )
            worker.work(logging_level=None)
            backoff = 1.0
        except (RedisConnectionError, RedisTimeoutError) as exc:  # Redis unreachable: keep trying
            outage.failed(exc, "worker start")
        except Exception as exc:
            logger.error("worker loop failed: {}: {}; retrying in {:.0f}s", type(exc).__name__, exc, backoff)
        if not stop.is_set():
            stop.event.wait(backoff)
            backoff = min(backoff * 2, max_backoff)
