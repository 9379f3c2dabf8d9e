"""Work one worker of any number does at a time, when it is due: reconciliation passes, runner polls,
sending the traces' outbox.

Every ``tick`` seconds each worker looks: if the work is on and due and the lease is free (redis-py's
:class:`~redis.lock.Lock`: a token, renewed and released only by its holder), it takes the lease,
looks again (another worker may have just finished), and runs the work with the lease renewed every
third of its time. A Redis error is one warning line and the next tick tries again; any other
exception is logged with its traceback: nothing here stops the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from loguru import logger
from redis import Redis
from redis.exceptions import LockError, RedisError

from shared.periodic import Periodic

LEASE_SECONDS = 30.0
T = TypeVar("T")


class LeasedWork(Generic[T]):
    def __init__(  # noqa: PLR0917 - the work and its lease
        self,
        connection: Redis,
        lock_key: str,
        name: str,
        due: Callable[[], bool],
        work: Callable[[], T],
        tick: float,
        lease: float = LEASE_SECONDS,
    ) -> None:
        self._name = name
        self._due = due
        self._work = work
        self._lease = lease
        self._lock = connection.lock(lock_key, timeout=lease, blocking=False, thread_local=False)
        self._loop = Periodic(tick, self._look, name=name)

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def owned(self) -> bool:
        """Whether this worker still holds the lease (work that goes on asks between its steps)."""
        return bool(self._lock.owned())

    def _look(self) -> None:
        try:
            self.tick()
        except RedisError as exc:
            logger.warning("{} skipped: {}", self._name, exc)
        except Exception:  # a bug must not stop the worker: logged with its traceback, tried again
            logger.exception("{} failed", self._name)

    def tick(self) -> T | None:
        """One look: do the work if it is due and the lease is free."""
        if not self._due() or not self._lock.acquire():
            return None
        try:
            if not self._due():  # another worker finished meanwhile
                return None
            with Periodic(self._lease / 3, self._lock.reacquire, name=f"{self._name}-lease"):
                return self._work()
        finally:
            try:
                self._lock.release()
            except LockError:  # the lease lapsed (Redis away): another worker may hold it now
                logger.warning("the {} lease lapsed while it ran", self._name)
