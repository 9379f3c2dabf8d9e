"""Logging through loguru for both processes, including uvicorn's and RQ's stdlib loggers.

``text`` writes readable lines, ``json`` one JSON object per line. Every message passes a
redactor that replaces configured secrets, so even a mistaken log call cannot leak them.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from loguru import logger

if TYPE_CHECKING:
    from loguru import Message, Record

# Loggers of libraries we route; RQ 3's loggers do not propagate to the root logger.
LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "rq", "rq.worker", "rq.queue", "rq.job")
STDLIB_LEVELS = {
    "trace": 5, "debug": logging.DEBUG, "info": logging.INFO, "success": logging.INFO,
    "warning": logging.WARNING, "error": logging.ERROR, "critical": logging.CRITICAL,
}  # fmt: skip
TEXT_FORMAT = (
    "<green>{time:YYYY-MM-DD HH:mm:ss.SSS}</green> <level>{level: <8}</level> "
    "<cyan>{extra[component]}</cyan> {message}{exception}"
)


class InterceptHandler(logging.Handler):
    """Send stdlib logging records to loguru at the matching level."""

    def emit(self, record: logging.LogRecord) -> None:
        level: str | int
        try:
            level = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).bind(source=record.name).log(
            level, record.getMessage()
        )


class Redactor:
    """Replaces every configured secret in a record's message (and exception text)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: tuple[str, ...] = tuple(s for s in secrets if s)

    def __call__(self, record: Record) -> None:
        record["message"] = self.text(record["message"])

    def text(self, text: str) -> str:
        """``text`` with every secret masked (a command's output goes through it too)."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, "***")
        return text


def _json_sink(message: Message) -> None:
    record = message.record
    entry: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).isoformat(timespec="milliseconds"),
        "level": record["level"].name,
        "component": record["extra"].get("component", ""),
        "message": record["message"],
        "logger": record["extra"].get("source", record["name"]),
    }
    entry.update({k: v for k, v in record["extra"].items() if k not in ("component", "source")})
    if record["exception"] is not None:
        entry["exception"] = "".join(message.splitlines(keepends=True)[1:]) or repr(record["exception"].value)
    sys.stderr.write(json.dumps(entry, default=str) + "\n")


def configure_logging(component: str, level: str, fmt: str, secrets: Iterable[str] = ()) -> None:
    """Replace loguru's sinks and route library loggers; called again on reload."""
    redactor = Redactor(secrets)
    logger.remove()
    logger.configure(extra={"component": component}, patcher=redactor)
    if fmt == "json":
        logger.add(
            _json_sink, level=level.upper(), format="{message}\n{exception}", backtrace=False, diagnose=False
        )
    else:  # diagnose=False: a traceback never shows the values of variables (a token, a payload)
        logger.add(sys.stderr, level=level.upper(), format=TEXT_FORMAT, backtrace=False, diagnose=False)
    # Records below the level are never built: with a level of 0, uvicorn would even wrap the app in
    # its per-message trace logger (a fifth of the receiver's time under load).
    stdlib_level = STDLIB_LEVELS.get(level.lower(), logging.INFO)
    logging.basicConfig(handlers=[InterceptHandler()], level=stdlib_level, force=True)
    chatty = level.lower() in ("trace", "debug")
    for name in LIBRARY_LOGGERS:
        library_logger = logging.getLogger(name)
        library_logger.handlers = [InterceptHandler()]
        library_logger.propagate = False
        library_logger.setLevel(stdlib_level)
        if name.startswith("rq"):  # RQ logs every job at INFO: too much for a webhook stream
            library_logger.setLevel(logging.DEBUG if chatty else logging.WARNING)


def loggable(unverified: str | None, most: int = 64) -> str:
    """A value from outside (a header, an API's answer) fit for a log line: at most ``most``
    characters, printable ASCII only (anything else shows as ``?``), so a sender cannot forge or
    flood log lines through it."""
    if not unverified:
        return "-"
    shown = "".join(c if " " <= c <= "~" else "?" for c in unverified[:most])
    return shown + ("..." if len(unverified) > most else "")
