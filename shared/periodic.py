"""Work done every so often on a thread of its own: the sweeper's rounds, the reconciler's look for
a due pass, the settings' watch for a changed file, and a lease renewed while a piece of work runs
(so others can tell a live holder from a dead one in seconds, not by the longest the work may take).

:class:`Periodic` calls ``tick`` every ``interval`` seconds from :meth:`~Periodic.start` to
:meth:`~Periodic.stop` (or for a ``with`` block); :meth:`~Periodic.wake` runs it at once and is
safe from a signal handler. A tick that raises is logged with the thread's name and the next one
comes on time: one failure (Redis gone for a moment, a bug) never ends the loop.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from loguru import logger

STOP_SECONDS = 5.0  # the longest stop() waits for a tick under way


class Periodic:
    def __init__(self, interval: float, tick: Callable[[], None], name: str) -> None:
        self._interval = interval
        self._tick = tick
        self.name = name
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_SECONDS)

    def wake(self) -> None:
        """Tick now rather than at the next interval."""
        self._wake.set()

    def __enter__(self) -> Periodic:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            if self._stop.is_set():
                return
            self._wake.clear()
            try:
                self._tick()
            except Exception as exc:  # the next tick tries again
                logger.warning("{} failed: {}: {}", self.name, type(exc).__name__, exc)
