"""RQ's in-process worker with our hooks (see :mod:`shared.rqadapter`)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any, Protocol

from loguru import logger
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.executions import Execution
from rq.job import Job

from shared.outage import Outage
from shared.periodic import Periodic


class Stop(Protocol):
    def set(self, signum: int | None = None, frame: Any = None) -> None: ...
    def is_set(self) -> bool: ...


POLL_SECONDS = 1
UNREGISTER_SECONDS = 1.0
RQ_CONNECTION_RETRY = "Worker %s: could not connect to Redis instance"  # the start of RQ's message


class OutageLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """RQ's worker log, but the line its dequeue loop writes at every failed try (once a second
    during an outage) goes to the outage tracker, which logs an outage once."""

    def __init__(self, log: logging.Logger, outage: Outage) -> None:
        super().__init__(log, {})
        self.outage = outage

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if isinstance(msg, str) and msg.startswith(RQ_CONNECTION_RETRY) and len(args) >= 2:
            error = args[1]
            self.outage.failed(error if isinstance(error, BaseException) else OSError(error), "worker loop")
            return
        super().log(level, msg, *args, **kwargs)


class InProcessWorker(SimpleWorker):
    """RQ's in-process worker with a stop flag it always honours and a lease on the RQ job it runs.

    ``stop``, ``lease_seconds`` and ``on_heartbeat`` are set by whoever builds it (RQ builds workers
    with its own arguments). SIGTERM/SIGINT only set the flag; the dequeue wait is cut into slices
    of :data:`POLL_SECONDS` that look at it (RQ's own handler can be swallowed mid-job under load,
    and its blocking dequeue does not look at the flag). While an RQ job runs, a thread renews its
    started-registry entry every third of ``lease_seconds`` (RQ's in-process worker sends no
    heartbeat while it works), and calls ``on_heartbeat``: a worker that died is known to be dead
    ``lease_seconds`` later, however long its RQ job could have taken.
    """

    stop: Stop
    lease_seconds: int
    outage: Outage | None = None  # told when RQ's dequeue loop gets an answer again
    on_heartbeat: Callable[[], None] = staticmethod(lambda: None)
    on_progress: Callable[[], None] = staticmethod(lambda: None)  # each dequeue slice, each RQ job done
    # RQ's dequeue retries a Redis that does not answer for ever, sleeping 1, 2, 4 ... 60 s between
    # tries without looking at any flag. Its sleeps are held at POLL_SECONDS, and each try starts with
    # a heartbeat, where a stop is honoured (below), so a stop asked during an outage takes effect
    # within a try (connect timeout + POLL_SECONDS) instead of at the outage's end.
    max_connection_wait_time = float(POLL_SECONDS)
    _dequeuing = False  # inside RQ's dequeue loop ...
    _dequeued = False  # ... and it has an RQ job in hand

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        if self._dequeuing and not self._dequeued and self.stop.is_set():
            raise StopRequested  # work() ends on it; no RQ job is in hand
        super().heartbeat(timeout, pipeline)

    def subscribe(self) -> None:
        """No subscription to RQ's command channel: its commands are for forked workers (kill the
        work horse, stop a job) or a stop, which is a signal here. One connection and one thread
        less, and none left blocked on a Redis that went away when the worker stops."""

    def teardown(self) -> None:
        """RQ unregisters the worker from Redis. A stopping worker gives that
        :data:`UNREGISTER_SECONDS`, not the timeouts of a Redis that does not answer: past it the
        registration expires by itself (RQ's ``worker_ttl``)."""
        if not self.stop.is_set():
            super().teardown()  # type: ignore[no-untyped-call]
            return

        def unregister() -> None:
            try:
                super(InProcessWorker, self).teardown()  # type: ignore[no-untyped-call]
            except Exception as exc:
                logger.debug("worker not unregistered from RQ: {}", exc)

        thread = threading.Thread(target=unregister, name="rq-unregister", daemon=True)
        thread.start()
        thread.join(UNREGISTER_SECONDS)

    def reorder_queues(self, reference_queue: Queue) -> None:
        self._dequeued = True  # RQ calls it first thing with the RQ job it dequeued
        super().reorder_queues(reference_queue)

    def _install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop.set)
        signal.signal(signal.SIGINT, self.stop.set)

    @property
    def _stop_requested(self) -> bool:
        return self.stop.is_set()

    @_stop_requested.setter
    def _stop_requested(self, value: bool) -> None:
        if value:
            self.stop.set()

    def _set_connection(self, connection: Any) -> Any:
        """RQ raises the pool's socket timeout to ``worker_ttl - 5`` s (415 s by default) for its
        blocking dequeue; ours waits :data:`POLL_SECONDS` at a time, so the pool keeps the timeout
        it was given (``redis.socket_timeout_seconds``), for RQ's connections and every other."""
        return connection

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:  # noqa: ARG002
        return self.lease_seconds

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        def beat() -> None:
            self.maintain_heartbeats(job, execution)
            self.on_heartbeat()

        with Periodic(self.lease_seconds / 3, beat, name="rq-job-lease"):
            done = bool(super().perform_job(job, queue, execution))
        self.on_progress()
        return done

    def dequeue_job_and_maintain_ttl(
        self,
        timeout: int | None,
        max_idle_time: int | None = None,  # noqa: ARG002
    ) -> Any:
        if timeout is None:  # burst mode: RQ returns at once when the queues are empty
            return super().dequeue_job_and_maintain_ttl(None)
        while not self.stop.is_set():
            self.on_progress()
            self._dequeuing, self._dequeued = True, False
            try:
                result = super().dequeue_job_and_maintain_ttl(POLL_SECONDS, max_idle_time=POLL_SECONDS)
            finally:
                self._dequeuing = False
            if self.outage is not None:  # RQ's loop returns once Redis answered a dequeue
                self.outage.answered()
            if result is not None:
                return result
        return None
