"""The stored form of the metric aggregates: how a movement is written into Redis and read back.

One hash per family (:func:`worker.ledger.Ledger.agg_key`); one field per series and suffix::

    <label text> \\x1f <suffix>  ->  number

- the label text is the escaped inside of the sample's braces (``a="x",b="y"``), exactly as the
  exposition writes it, so a scrape only joins strings;
- the suffix is ``v`` (a counter's or a gauge's value), ``at`` (a latest-value gauge: the time of
  the fact it holds), or, for a histogram, ``sum``, ``count`` and one field per bucket bound
  (``10.0``; ``+Inf`` for values above every bound) counting the observations that fell in that
  bucket alone: buckets are made cumulative when read (:func:`histogram_lines`);
- a histogram bucket's exemplar, ``x`` and the bucket (``x10.0``): not a number but the time of
  the fact, then the exemplar as OpenMetrics writes it after the ``#`` less its timestamp
  (``1700000000.0 {run_id="1",job_id="2"} 7.5``), of the observation in that bucket whose fact is
  the newest (ties: the larger text). The time comes first so the apply script finds it with a
  plain search (an unanchored pattern for the last word cost 28 µs per exemplar).

A member of an in-flight set (``inflight:<kind>:<phase>``) is its attempt's group (:class:`JobGroup`,
:class:`RunGroup`: the in-flight gauges' label values) as JSON, then the attempt's key:
:func:`inflight_member`.

The cardinality guard keeps each family's label texts in a set. The write itself is the ledger's apply
script (``worker/ledger.apply.lua``), given the fields built here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

from worker.textformat import all_stored_values, number, sample, stored_value

SEPARATOR = "\x1f"
VALUE = "v"
AT = "at"
SUM = "sum"
COUNT = "count"
INF = "+Inf"
EXEMPLAR = "x"
_SEP = SEPARATOR.encode()
_EXEMPLAR = EXEMPLAR.encode()
_COUNT, _SUM, _INF_EXEMPLAR = COUNT.encode(), SUM.encode(), _EXEMPLAR + INF.encode()

# How the apply script moves a field: add an integer, add a float, keep the latest value, or keep
# the latest exemplar.
Op = Literal["n", "f", "l", "x"]


def escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def label_text(names: Sequence[str], values: Iterable[str]) -> str:
    """``a="x",b="y"``: the inside of a sample's braces."""
    return ",".join(f'{name}="{escape_value(value)}"' for name, value in zip(names, values, strict=True))


def field_name(labels: str, suffix: str) -> str:
    return labels + SEPARATOR + suffix


def split_field(field: bytes) -> tuple[bytes, bytes]:
    """A stored field name: its label text and its suffix."""
    labels, _, suffix = field.rpartition(_SEP)
    return labels, suffix


def bucket_of(value: float, bounds: Sequence[float]) -> str:
    """The bucket field of an observation: the first bound at or above it."""
    bound = next((b for b in bounds if value <= b), None)
    return INF if bound is None else repr(float(bound))


def counter_fields(value: float) -> list[list[Any]]:
    return [[VALUE, "f", repr(float(value))]]


def latest_fields(value: float, at: float) -> list[list[Any]]:
    return [[VALUE, "l", repr(float(value)), repr(float(at))]]


def observation_fields(
    value: float, bounds: Sequence[float], exemplar: str = "", at: float = 0.0
) -> list[list[Any]]:
    """An observation; with ``exemplar`` (label text), also its bucket's exemplar if ``at`` is the
    newest fact of that bucket."""
    bucket = bucket_of(value, bounds)
    fields: list[list[Any]] = [[bucket, "n", "1"], [SUM, "f", repr(float(value))], [COUNT, "n", "1"]]
    if exemplar:
        stored = f"{number(at)} {{{exemplar}}} {number(value)}"
        fields.append([EXEMPLAR + bucket, "x", stored, repr(float(at))])
    return fields


class JobGroup(NamedTuple):
    """The labels an in-flight job attempt is counted under (the job gauges' labels are a prefix)."""

    runs_on: str
    runner_group: str
    repository: str


class RunGroup(NamedTuple):
    """The labels an in-flight run attempt is counted under."""

    repository: str


InflightGroup = JobGroup | RunGroup


def group_labels(group: InflightGroup, names: Sequence[str]) -> tuple[str, ...]:
    """The group's values of the gauge labels ``names`` (``runs_on``, ``runner_group``, ``repository``)."""
    return tuple(getattr(group, name) for name in names)


def folded_group(group: InflightGroup, overflow: str) -> InflightGroup:
    """The group an attempt is counted under once its gauge reached its series limit."""
    return type(group)(*[overflow] * len(group))


def inflight_group(values: Sequence[str]) -> InflightGroup:
    """A group as stored: a job's three values, a run's one."""
    return JobGroup(*values) if len(values) == len(JobGroup._fields) else RunGroup(*values)


def inflight_member(group: InflightGroup, attempt_key: str) -> str:
    """A member of an in-flight set: the group's values as JSON, then the attempt's key."""
    return json.dumps(list(group), separators=(",", ":")) + SEPARATOR + attempt_key


def inflight_parts_all(members: Sequence[bytes]) -> list[tuple[InflightGroup, str]]:
    """Each member's group and attempt key, their JSON decoded in one call (at 10,000 members, one
    ``json.loads`` each took most of a scrape's and the in-flight API's time)."""
    split = [member.partition(_SEP) for member in members]
    groups: list[list[str]] = json.loads(b"[" + b",".join(text for text, _, _ in split) + b"]")
    return [(inflight_group(group), key.decode()) for group, (_, _, key) in zip(groups, split, strict=True)]


# -- reading -----------------------------------------------------------------------------------
def decode(fields: Mapping[bytes, bytes]) -> dict[str, dict[str, float]]:
    """``{label text: {suffix: value}}`` (exemplars left out: they are not numbers)."""
    series: dict[str, dict[str, float]] = {}
    for field, value in fields.items():
        labels, suffix = split_field(field)
        if suffix.startswith(_EXEMPLAR):
            continue
        series.setdefault(labels.decode(), {})[suffix.decode()] = float(value)
    return series


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
