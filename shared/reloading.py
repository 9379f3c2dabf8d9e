"""Hot reload: SIGHUP or a change of the YAML file swaps in the options that can change safely.

Options marked ``reload`` in :mod:`shared.settings` take effect at once; a change to any other
option is logged as needing a restart and ignored until then.

A new configuration is checked as at start (the process's own check too: the receiver's needs a
webhook secret), and an empty file is refused: a refused one is logged as an ERROR, counted
(``on_failure``), and the running configuration kept. A file is read once it holds still: two reads
:data:`SETTLE_SECONDS` apart must agree (an editor or a tool writing it in place is given time to
finish; writing a new file and renaming it over the old one is atomic and needs none).
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from loguru import logger
from prometheus_client import CollectorRegistry, Counter

from shared.periodic import Periodic
from shared.settings import OPTIONS, Settings
from shared.settings_loader import SettingsError, load_settings

Listener = Callable[[Settings], None]
Check = Callable[[Settings], None]  # raises SettingsError
SETTLE_SECONDS = 0.1
SETTLE_TRIES = 20


def settled_content(path: str, pause: Callable[[float], None] = time.sleep) -> bytes:
    """The file's content once two reads :data:`SETTLE_SECONDS` apart agree (else the last read)."""
    content = Path(path).read_bytes()
    for _ in range(SETTLE_TRIES):
        pause(SETTLE_SECONDS)
        again = Path(path).read_bytes()
        if again == content:
            break
        content = again
    return content


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

    def __init__(self, settings: Settings, poll_seconds: float = 1.0, check: Check | None = None) -> None:
        self.current = settings
        self._check = check
        self._listeners: list[Listener] = []
        self._failure_listeners: list[Callable[[], None]] = []
        self._requested = False  # a reload asked for (SIGHUP) since the last look
        self._seen: float | None = None  # the file's modification time at the last look
        self._watch = Periodic(poll_seconds, self._look, name="settings-reload")

    def on_reload(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_failure(self, listener: Callable[[], None]) -> None:
        """Called for each refused reload."""
        self._failure_listeners.append(listener)

    def reload(self) -> bool:
        """Load the configuration again; True when something changed."""
        try:
            merged, ignored = self._load()
        except SettingsError as exc:
            logger.error("reload refused, keeping the running configuration: {}", "; ".join(exc.problems))
            for counted in self._failure_listeners:
                counted()
            return False
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

    def _load(self) -> tuple[Settings, list[str]]:
        """The new configuration, checked, merged into the running one; raises SettingsError."""
        path = self.current.config_file
        if path:
            try:
                content = settled_content(path)
            except OSError as exc:
                raise SettingsError([f"cannot read {path}: {exc.strerror}"]) from None
            if not content.strip():
                raise SettingsError([f"{path} is empty"])
        merged, ignored = merge_reloadable(self.current, load_settings(path))
        if self._check is not None:
            self._check(merged)
        return merged, ignored

    def request_reload(self, _signum: int | None = None, _frame: FrameType | None = None) -> None:
        """Safe from a signal handler: the watcher thread does the work."""
        self._requested = True
        self._watch.wake()

    def start(self) -> None:
        """Reload on SIGHUP and when the config file's modification time changes."""
        self._seen = self._mtime()
        signal.signal(signal.SIGHUP, self.request_reload)
        self._watch.start()

    def stop(self) -> None:
        self._watch.stop()

    def _mtime(self) -> float | None:
        path = self.current.config_file
        try:
            return Path(path).stat().st_mtime if path else None
        except OSError:
            return None

    def _look(self) -> None:
        requested, self._requested = self._requested, False
        mtime = self._mtime()
        if requested or mtime != self._seen:
            self._seen = mtime
            self.reload()


def count_failures(holder: SettingsHolder, registry: CollectorRegistry, prefix: str) -> None:
    """``config_reload_failures_total`` in ``registry``, counting ``holder``'s refused reloads."""
    counter = Counter(
        f"{prefix}config_reload_failures",
        "Reloads refused (invalid, empty, or failing the process's start-up checks); the running"
        " configuration was kept.",
        registry=registry,
    )
    holder.on_failure(counter.inc)
