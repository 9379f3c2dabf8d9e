"""Hot reload: SIGHUP or a change of the YAML file swaps in the options that can change safely.

Options marked ``reload`` in :mod:`shared.options` take effect at once; a change to any other
option is logged as needing a restart and ignored until then. An invalid new configuration is
logged and the running one kept.
"""

from __future__ import annotations

import dataclasses
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from loguru import logger

from shared.options import OPTIONS
from shared.settings import Settings, SettingsError, load_settings

Listener = Callable[[Settings], None]


def merge_reloadable(current: Settings, new: Settings) -> tuple[Settings, list[str]]:
    """Take reloadable options from ``new``; return the result and the restart-only keys that differ."""
    sections = {f.name: getattr(current, f.name) for f in dataclasses.fields(current)}
    ignored = []
    for option in OPTIONS:
        section, key = option.path.split(".", 1)
        old_value = getattr(sections[section], key)
        new_value = getattr(getattr(new, section), key)
        if old_value == new_value:
            continue
        if option.reload:
            sections[section] = dataclasses.replace(sections[section], **{key: new_value})
        else:
            ignored.append(option.path)
    return Settings(**sections), ignored


class SettingsHolder:
    """The current settings, replaced atomically on reload; readers take ``holder.current``."""

    def __init__(self, settings: Settings, poll_seconds: float = 1.0) -> None:
        self.current = settings
        self._listeners: list[Listener] = []
        self._poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_reload(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def reload(self) -> bool:
        """Load the configuration again; True when something changed."""
        try:
            new = load_settings(self.current.config_file)
        except SettingsError as exc:
            logger.error("reload refused, keeping the running configuration: {}", "; ".join(exc.problems))
            return False
        merged, ignored = merge_reloadable(self.current, new)
        for path in ignored:
            logger.warning("{} changed; it takes effect only after a restart", path)
        if merged == self.current:
            logger.info("configuration reloaded, nothing to change")
            return False
        self.current = merged
        logger.info("configuration reloaded")
        for listener in self._listeners:
            listener(merged)
        return True

    def request_reload(self, _signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Safe from a signal handler: the watcher thread does the work."""
        self._wake.set()

    def start(self) -> None:
        """Reload on SIGHUP and when the config file's modification time changes."""
        signal.signal(signal.SIGHUP, self.request_reload)
        self._thread = threading.Thread(target=self._watch, name="settings-reload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _mtime(self) -> float | None:
        path = self.current.config_file
        try:
            return Path(path).stat().st_mtime if path else None
        except OSError:
            return None

    def _watch(self) -> None:
        seen = self._mtime()
        while not self._stop.is_set():
            woke = self._wake.wait(self._poll_seconds)
            if self._stop.is_set():
                return
            self._wake.clear()
            mtime = self._mtime()
            if woke or mtime != seen:
                seen = mtime
                self.reload()
