"""Prometheus text exposition (format 0.0.4, or OpenMetrics 1.0 when the scraper asks), written directly.

The Redis-backed families can hold 100,000 series; prometheus_client formats one sample at a time
through several function calls, which took seconds at that size. The aggregates are stored with
their label text already escaped (:mod:`worker.codec`), so a scrape only joins strings.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Collection

# A value as Prometheus's and OpenMetrics' parsers take it (Redis writes 3, 1.5, 1e+20; Python 1.0,
# nan, inf); at most MAX_VALUE_CHARS long: longer is no float (a 400-digit number is out of range).
_VALUE = re.compile(rb"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[Ii]nf|NaN|nan)")
MAX_VALUE_CHARS = 32
_NUMBER_BYTES = b"0123456789.eE+-NaNnIinf"  # what the values _VALUE takes are made of


def number(value: float) -> str:
    """As prometheus_client writes a value: ``1.0``, ``0.25``, ``+Inf``, ``NaN``."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def header(name: str, doc: str, kind: str, openmetrics: bool) -> str:
    """HELP and TYPE; OpenMetrics names a counter family without the ``_total`` of its samples."""
    if openmetrics and kind == "counter":
        name = name.removesuffix("_total")
    doc = doc.replace("\\", r"\\").replace("\n", r"\n")
    if openmetrics:
        doc = doc.replace('"', r"\"")
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"


def sample(name: str, labels: str, value: str) -> str:
    return f"{name}{{{labels}}} {value}\n" if labels else f"{name} {value}\n"


def stored_value(stored: bytes) -> str | None:
    """A value read from Redis as a sample's text, or None when it cannot be one (not a number,
    too long): a scrape skips that series instead of writing a body Prometheus rejects whole."""
    if len(stored) > MAX_VALUE_CHARS or _VALUE.fullmatch(stored) is None:
        return None
    return stored.decode("ascii")


def all_stored_values(values: Collection[bytes]) -> bool:
    """Whether every one of ``values`` can be written as it is: only the bytes a number is made of
    (``float()`` alone would take ``1_000`` and spaces, which Prometheus refuses), at most
    MAX_VALUE_CHARS each, and a number by ``float()``. Checked together, in C: at 100,000 series a
    regular expression per value cost a fifth of the scrape."""
    if b"".join(values).translate(None, _NUMBER_BYTES) or max(map(len, values), default=0) > MAX_VALUE_CHARS:
        return False
    try:
        deque(map(float, values), maxlen=0)
    except ValueError:
        return False
    return True
