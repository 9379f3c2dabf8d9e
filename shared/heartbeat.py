"""A background beat while a piece of work runs: a lease renewed every so often, so that others can
tell a live holder from a dead one in seconds rather than by the longest the work may take."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

from loguru import logger


class Heartbeat:
    """``with Heartbeat(interval, beat):`` calls ``beat`` every ``interval`` seconds until the block
    ends. A failing beat is logged and tried again at the next interval (the lease may lapse: the
    work is then taken over, which is safe, only slower)."""

    def __init__(self, interval: float, beat: Callable[[], None], name: str = "heartbeat") -> None:
        self._interval = interval
        self._beat = beat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._beat()
            except Exception as exc:  # Redis gone for a moment: the next beat tries again
                logger.warning("{} failed: {}: {}", self._thread.name, type(exc).__name__, exc)
