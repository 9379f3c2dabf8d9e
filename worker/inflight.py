"""The in-flight sets as a reader sees them: counted per label group, and listed oldest first a page
at a time, so that no reader holds every member.

A set ``inflight:<kind>:<phase>`` holds one member per attempt: the gauge's label values as JSON,
the separator, the attempt's key (:func:`worker.codec.inflight_member`), scored by when it entered
the phase. Every reader (the scrape's gauges, the API's counts) needs only each group's attempts
and oldest: Redis counts them (``worker/ledger_reads.summary.lua``) and sends one line per group. Before,
every member was read for every scrape and API request: 40,000 attempts with long labels took the
worker from 50 to 237 MB, and each concurrent request added its own copy. The attempts a page lists
are read in pages of :data:`PAGE`, oldest first, until the list is full
(:meth:`Inflight.oldest_first`): the counts are one read, the list another, so a list may lag its
counts by what changed in between.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from worker import codec

_SEP = codec.SEPARATOR.encode()
PAGE = 1000


class Phase(NamedTuple):
    """One set as read whole: its members and their scores, in score order."""

    kind: str  # job, run or runner
    phase: str
    members: Sequence[bytes]
    scores: Sequence[Any]  # floats (RESP3) or their text (RESP2)


class GroupCount(NamedTuple):
    group: codec.InflightGroup
    attempts: int
    oldest: float  # when the group's oldest attempt entered the phase


class InflightEntry(NamedTuple):
    kind: str
    phase: str
    group: codec.InflightGroup
    since: float
    key: str  # the attempt's: job:<id>:<attempt> or run:<id>:<attempt> (a runner's: worker.busy_runners)


Accept = Callable[[str, codec.InflightGroup], bool]  # (phase, group) -> listed or not
# (kind, phase, start, count) -> that page of the set: its members and their scores, in score order
Pages = Callable[[str, str, int, int], tuple[Sequence[bytes], Sequence[Any]]]
# per (kind, phase): (group as stored, attempts, oldest score), as the summary script answers
Summary = Mapping[tuple[str, str], Sequence[tuple[bytes, int, Any]]]


def group_of(member: bytes) -> bytes:
    return member[: member.index(_SEP)]


class Inflight:
    def __init__(self, summary: Summary, pages: Pages) -> None:
        self._pages = pages
        decoded: dict[bytes, codec.InflightGroup] = {}
        self._counts: dict[tuple[str, str], dict[bytes, GroupCount]] = {}
        for (kind, phase), groups in summary.items():
            counted = {}
            for stored, attempts, oldest in groups:
                group = decoded.get(stored)
                if group is None:
                    group = decoded[stored] = codec.inflight_group(kind, json.loads(stored))
                counted[stored] = GroupCount(group, int(attempts), float(oldest))
            self._counts[kind, phase] = counted

    @classmethod
    def of_sets(cls, phases: Sequence[Phase]) -> Inflight:
        """From sets read whole (the summary made here, as Redis makes it)."""
        summary: dict[tuple[str, str], list[tuple[bytes, int, Any]]] = {}
        by_phase = {(p.kind, p.phase): p for p in phases}
        for phase in phases:
            counts: dict[bytes, list[Any]] = {}
            for member, score in zip(phase.members, phase.scores, strict=True):
                seen = counts.setdefault(group_of(member), [0, score])
                seen[0] += 1
            summary[phase.kind, phase.phase] = [(g, n, oldest) for g, (n, oldest) in counts.items()]

        def pages(kind: str, phase: str, start: int, count: int) -> tuple[Sequence[bytes], Sequence[Any]]:
            found = by_phase.get((kind, phase))
            if found is None:
                return [], []
            return found.members[start : start + count], found.scores[start : start + count]

        return cls(summary, pages)

    def groups(self, kind: str, phase: str) -> list[GroupCount]:
        """The attempts of one set, counted per group."""
        return list(self._counts.get((kind, phase), {}).values())

    def oldest_first(self, kind: str, accept: Accept, limit: int) -> tuple[list[InflightEntry], int]:
        """The first ``limit`` accepted attempts of ``kind``, oldest first, and how many were accepted."""
        streams, total = [], 0
        for (set_kind, phase), counted in self._counts.items():
            if set_kind != kind:
                continue
            wanted = {stored for stored, c in counted.items() if accept(phase, c.group)}
            total += sum(counted[stored].attempts for stored in wanted)
            if wanted:
                streams.append(self._accepted(kind, phase, wanted, limit))
        chosen = [found for found, _ in zip(heapq.merge(*streams), range(limit), strict=False)]
        parts = codec.inflight_parts_all(kind, [member for _since, member, _phase in chosen])
        entries = [
            InflightEntry(kind, phase, group, since, key)
            for (since, _member, phase), (group, key) in zip(chosen, parts, strict=True)
        ]
        return entries, total

    def entries(self) -> list[InflightEntry]:
        """Every attempt, jobs then runs then busy runners, each oldest first."""
        everything = sum(c.attempts for counted in self._counts.values() for c in counted.values())
        kinds = ("job", "run", "runner")
        return [entry for kind in kinds for entry in self.oldest_first(kind, _all, everything)[0]]

    def _accepted(
        self, kind: str, phase: str, wanted: set[bytes], limit: int
    ) -> Iterator[tuple[float, bytes, str]]:
        """(since, member, phase) of the set's first ``limit`` accepted members, in score order,
        read a page at a time (a member a shifting page shows twice is listed once)."""
        start, found, seen = 0, 0, set()
        while found < limit:
            members, scores = self._pages(kind, phase, start, PAGE)
            for member, score in zip(members, scores, strict=True):
                if member not in seen and group_of(member) in wanted:
                    seen.add(member)
                    yield float(score), member, phase
                    found += 1
                    if found == limit:
                        return
            if len(members) < PAGE:
                return
            start += PAGE


def _all(_phase: str, _group: codec.InflightGroup) -> bool:
    return True
