"""The stored form of the metric aggregates: how a movement is written into Redis and read back.

One hash per family (:meth:`worker.metrics.LabelPolicy.aggregate_key`); one field per series and suffix::

    <label text> \\x1f <suffix>  ->  number

- the label text is the escaped inside of the sample's braces (``a="x",b="y"``), exactly as the
  exposition writes it, so a scrape only joins strings;
- the suffix is ``v`` (a counter's or a gauge's value), ``at`` (a latest-value gauge: the time of
  the fact it holds), or, for a histogram, ``sum``, ``count`` and one field per bucket bound
  (``10.0``; ``+Inf`` for values above every bound) counting the observations that fell in that
  bucket alone: buckets are made cumulative when read (:func:`worker.textformat.histogram_lines`);
- a histogram bucket's exemplar, ``x`` and the bucket (``x10.0``): not a number but the time of
  the fact, then the exemplar as OpenMetrics writes it after the ``#`` less its timestamp
  (``1700000000.0 {run_id="1",job_id="2"} 7.5``), of the observation in that bucket whose fact is
  the newest (ties: the larger text). The time comes first so the apply script finds it with a
  plain search (an unanchored pattern for the last word cost 28 µs per exemplar).

A member of an in-flight set (``inflight:<kind>:<phase>``) is its attempt's group (:class:`JobGroup`,
:class:`RunGroup`, :class:`RunnerGroup`: the in-flight gauges' label values) as JSON, then the
attempt's (or runner's) key: :func:`inflight_member`.

The cardinality guard keeps each family's label texts in a set. The write itself is the ledger's apply
script (``worker/ledger.write.lua``), given the fields built here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, NamedTuple

SEPARATOR = "\x1f"
VALUE = "v"
AT = "at"
SUM = "sum"
COUNT = "count"
INF = "+Inf"
EXEMPLAR = "x"
_SEP = SEPARATOR.encode()
_EXEMPLAR = EXEMPLAR.encode()

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
        stored = f"{float(at)!r} {{{exemplar}}} {float(value)!r}"  # finite: from timestamps
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


class RunnerGroup(NamedTuple):
    """The labels a busy self-hosted runner is counted under."""

    runner_group: str


InflightGroup = JobGroup | RunGroup | RunnerGroup
GROUPS: dict[str, type[InflightGroup]] = {"job": JobGroup, "run": RunGroup, "runner": RunnerGroup}


def group_labels(group: InflightGroup, names: Sequence[str]) -> tuple[str, ...]:
    """The group's values of the gauge labels ``names`` (``runs_on``, ``runner_group``, ``repository``)."""
    return tuple(getattr(group, name) for name in names)


def folded_group(group: InflightGroup, overflow: str) -> InflightGroup:
    """The group an attempt is counted under once its gauge reached its series limit."""
    return type(group)(*[overflow] * len(group))


def inflight_group(kind: str, values: Sequence[str]) -> InflightGroup:
    """A group of ``kind`` (``job``, ``run``, ``runner``) as stored."""
    return GROUPS[kind](*values)


def inflight_member(group: InflightGroup, attempt_key: str) -> str:
    """A member of an in-flight set: the group's values as JSON, then the attempt's key."""
    return json.dumps(list(group), separators=(",", ":")) + SEPARATOR + attempt_key


def inflight_parts_all(kind: str, members: Sequence[bytes]) -> list[tuple[InflightGroup, str]]:
    """Each member's group and attempt key, their JSON decoded in one call (at 10,000 members, one
    ``json.loads`` each took most of a scrape's and the in-flight API's time)."""
    split = [member.partition(_SEP) for member in members]
    groups: list[list[str]] = json.loads(b"[" + b",".join(text for text, _, _ in split) + b"]")
    made = GROUPS[kind]
    return [(made(*group), key.decode()) for group, (_, _, key) in zip(groups, split, strict=True)]


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
