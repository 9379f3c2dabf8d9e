"""Prometheus text exposition (format 0.0.4, or OpenMetrics 1.0 when the scraper asks), written directly.

The Redis-backed families can hold 100,000 series; prometheus_client formats one sample at a time
through several function calls, which took seconds at that size. The aggregates are stored with
their label text already escaped (:mod:`worker.codec`), so a scrape only joins strings.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict, deque
from collections.abc import Collection, Mapping, Sequence

from worker.codec import COUNT, EXEMPLAR, INF, SEPARATOR, SUM, VALUE

# A value as Prometheus's and OpenMetrics' parsers take it (Redis writes 3, 1.5, 1e+20; Python 1.0,
# nan, inf); at most MAX_VALUE_CHARS long: longer is no float (a 400-digit number is out of range).
_VALUE = re.compile(rb"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[Ii]nf|NaN|nan)")
MAX_VALUE_CHARS = 32
_NUMBER_BYTES = b"0123456789.eE+-NaNnIinf"  # what the values _VALUE takes are made of
_SEP, _EXEMPLAR = SEPARATOR.encode(), EXEMPLAR.encode()
_COUNT, _SUM, _INF_EXEMPLAR = COUNT.encode(), SUM.encode(), _EXEMPLAR + INF.encode()


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


# -- the Redis-backed families, from their stored form (worker.codec) -------------------------------
def value_lines(name: str, fields: Mapping[bytes, bytes]) -> tuple[list[str], int]:
    """A counter's or gauge's samples, sorted (a latest-value gauge's ``at`` fields are skipped),
    and how many series were left out because their value or labels cannot be rendered."""
    value = VALUE.encode()
    lines, skipped = [], 0
    if fields and all_stored_values(list(fields.values())):  # as nearly always: none checked alone
        try:
            for field, stored in fields.items():
                labels, _, suffix = field.rpartition(_SEP)  # split_field, inlined: runs per series
                if suffix == value:
                    text = stored.decode()
                    lines.append(f"{name}{{{labels.decode()}}} {text}\n" if labels else f"{name} {text}\n")
            lines.sort()
            return lines, 0
        except UnicodeDecodeError:
            lines = []  # labels that are no UTF-8: series by series below
    for field, stored in fields.items():
        labels, _, suffix = field.rpartition(_SEP)
        if suffix != value:
            continue
        shown = stored_value(stored)
        try:
            label_text = labels.decode()
        except UnicodeDecodeError:
            shown = None
        if shown is None:
            skipped += 1
            continue
        lines.append(sample(name, label_text, shown))
    lines.sort()
    return lines, skipped


def histogram_lines(
    name: str, fields: Mapping[bytes, bytes], bounds: Sequence[float], exemplars: bool = False
) -> tuple[list[str], int]:
    """A histogram's samples: cumulative buckets, ``+Inf`` (the count), count and sum; one string
    per series (its lines together, so that a scrape cut short never leaves half a series). With
    ``exemplars`` (OpenMetrics only), a bucket that has one carries it. A series with a value or
    labels that cannot be rendered is left out whole, and counted in the second item."""
    series: dict[bytes, dict[bytes, bytes]] = defaultdict(dict)
    for field, stored in fields.items():
        labels, _, suffix = field.rpartition(_SEP)  # split_field, inlined: this loop runs per field
        series[labels][suffix] = stored
    les = [repr(float(bound)) for bound in bounds]
    # the label text, the stored bucket field, its exemplar's field
    encoded = [(le, le.encode(), _EXEMPLAR + le.encode()) for le in les]
    lines, skipped = [], 0
    for stored_labels, values in sorted(series.items()):
        try:
            lines.append(_histogram_series(name, stored_labels, values, encoded, exemplars))
        except ValueError:  # UnicodeDecodeError among them
            skipped += 1
    return lines, skipped


def _histogram_series(
    name: str,
    stored_labels: bytes,
    values: Mapping[bytes, bytes],
    encoded: Sequence[tuple[str, bytes, bytes]],
    exemplars: bool,
) -> str:
    """One series of :func:`histogram_lines` (``ValueError`` when it cannot be rendered)."""
    text_labels = stored_labels.decode()
    comma = "," if text_labels else ""
    cumulative = 0.0
    one = []
    for text, bucket, exemplar in encoded:
        cumulative += float(values.get(bucket, 0))  # ValueError for what is no number
        tail = _exemplar_tail(values.get(exemplar)) if exemplars else ""
        one.append(f'{name}_bucket{{{text_labels}{comma}le="{text}"}} {number(cumulative)}{tail}\n')
    count, total = (stored_value(values.get(field, b"0")) for field in (_COUNT, _SUM))
    if count is None or total is None:
        raise ValueError("a count or sum that is no number")
    tail = _exemplar_tail(values.get(_INF_EXEMPLAR)) if exemplars else ""
    one.append(f'{name}_bucket{{{text_labels}{comma}le="{INF}"}} {count}{tail}\n')
    one.append(sample(f"{name}_count", text_labels, count))
    one.append(sample(f"{name}_sum", text_labels, total))
    return "".join(one)


def _exemplar_tail(stored: bytes | None) -> str:
    """`` # {labels} value timestamp`` from the stored ``timestamp {labels} value``."""
    if stored is None:
        return ""
    at, _, exemplar = stored.decode().partition(" ")
    if "\n" in exemplar:
        raise ValueError("an exemplar with a line break")
    return f" # {exemplar} {at}"
