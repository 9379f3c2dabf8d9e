"""The in-flight sets as read at once, summarised per label group without taking every member apart.

A set ``inflight:<kind>:<phase>`` holds one member per attempt: the gauge's label values as JSON,
the separator, the attempt's key (:func:`worker.codec.inflight_member`), scored by when it entered
the phase. At 10,000 attempts, building an object per member took most of a scrape's and of the
in-flight API's time. Here the members stay bytes: they are counted per group (the JSON before the
separator, decoded once per distinct group), a group's oldest is its first member (a set is in
score order), and only the attempts a page lists are taken apart (:meth:`Inflight.oldest_first`).
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

from worker import codec

_SEP = codec.SEPARATOR.encode()


class Phase(NamedTuple):
    """One set as read: its members and their scores, in score order."""

    kind: str  # job or run
    phase: str
    members: Sequence[bytes]
    scores: Sequence[Any]  # floats (RESP3) or their text (RESP2)


class GroupCount(NamedTuple):
    group: list[str]  # the gauge label values: [runs_on, runner_group, repository] or [repository]
    attempts: int
    oldest: float  # when the group's oldest attempt entered the phase


class InflightEntry(NamedTuple):
    kind: str
    phase: str
    group: list[str]
    since: float
    key: str  # the attempt's: job:<id>:<attempt> or run:<id>:<attempt>


Accept = Callable[[str, list[str]], bool]  # (phase, group) -> listed or not


class Inflight:
    def __init__(self, phases: Sequence[Phase]) -> None:
        self._phases = phases
        self._prefixes = [[member[: member.index(_SEP)] for member in p.members] for p in phases]
        groups: dict[bytes, list[str]] = {}
        self._counts: dict[tuple[str, str], dict[bytes, GroupCount]] = {}
        for phase, prefixes in zip(phases, self._prefixes, strict=True):
            oldest = dict(zip(reversed(prefixes), reversed(phase.scores), strict=True))  # first wins
            counted = {}
            for prefix, count in Counter(prefixes).items():
                group = groups.get(prefix)
                if group is None:
                    group = groups[prefix] = json.loads(prefix)
                counted[prefix] = GroupCount(group, count, float(oldest[prefix]))
            self._counts[phase.kind, phase.phase] = counted

    def groups(self, kind: str, phase: str) -> list[GroupCount]:
        """The attempts of one set, counted per group."""
        return list(self._counts.get((kind, phase), {}).values())

    def oldest_first(self, kind: str, accept: Accept, limit: int) -> tuple[list[InflightEntry], int]:
        """The first ``limit`` accepted attempts of ``kind``, oldest first, and how many were accepted."""
        streams, total = [], 0
        for phase, prefixes in zip(self._phases, self._prefixes, strict=True):
            if phase.kind != kind:
                continue
            counted = self._counts[kind, phase.phase]
            wanted = {prefix for prefix, c in counted.items() if accept(phase.phase, c.group)}
            total += sum(counted[prefix].attempts for prefix in wanted)
            if wanted:
                streams.append(_accepted(phase, prefixes, wanted))
        chosen = [found for found, _ in zip(heapq.merge(*streams), range(limit), strict=False)]
        parts = codec.inflight_parts_all([member for _since, member, _phase in chosen])
        entries = [
            InflightEntry(kind, phase, group, since, key)
            for (since, _member, phase), (group, key) in zip(chosen, parts, strict=True)
        ]
        return entries, total

    def entries(self) -> list[InflightEntry]:
        """Every attempt, jobs then runs, each oldest first."""
        everything = sum(len(prefixes) for prefixes in self._prefixes)
        return [entry for kind in ("job", "run") for entry in self.oldest_first(kind, _all, everything)[0]]


def _all(_phase: str, _group: list[str]) -> bool:
    return True


def _accepted(phase: Phase, prefixes: list[bytes], wanted: set[bytes]) -> Iterator[tuple[float, bytes, str]]:
    """(since, member, phase) of the set's accepted members, in score order (ties: by member)."""
    name = phase.phase
    for member, score, prefix in zip(phase.members, phase.scores, prefixes, strict=True):
        if prefix in wanted:
            yield float(score), member, name
