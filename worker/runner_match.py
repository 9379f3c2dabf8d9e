"""Which runners could take a queued job: GitHub's matching of a job's ``runs-on`` labels.

GitHub sends a job to a self-hosted runner whose labels include **every** label the job asks for,
compared without regard to case; ``self-hosted`` is every self-hosted runner's (a runner made with
``--no-default-labels`` lacks the label, yet takes jobs that ask for it here too). A GitHub-hosted
larger runner is asked for by its name. Jobs for GitHub's standard hosted runners
(``ubuntu-latest``, ``windows-*``, ``macos-*`` without ``self-hosted``, unless a polled larger
runner has that name) and jobs with no label
(``runs-on: {group: ...}`` alone) are not judged: no inventory of ours holds their runners.

A job's label set travels as the ``runs_on`` label (its labels sorted, joined by ``,``), and a label
may hold a comma itself (RunsOn's composite labels), so both sides are compared as the parts
between commas.

Which runners a job can reach: an organization's runners its repositories' jobs, a repository's its
own, an enterprise's every job polled here. Runner groups restricted to some repositories or
workflows are not read: a job may count a runner its group does not let it use.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from worker.cost import HOSTED_PATTERNS
from worker.github_runners import HOSTED, Runner

SELF_HOSTED_LABEL = "self-hosted"


@functools.lru_cache(maxsize=4096)  # runners share a few label sets: 5,000 made in 1 ms, not 20
def parts(labels: tuple[str, ...]) -> frozenset[str]:
    """Labels as compared: each part between commas, case folded, ``self-hosted`` left out."""
    found = {part.strip().casefold() for label in labels for part in label.split(",")}
    return frozenset(found - {SELF_HOSTED_LABEL, ""})


def judged(runs_on: str) -> bool:
    """Whether a job asking for ``runs_on`` waits for a runner an inventory can hold."""
    labels = [label.strip().casefold() for label in runs_on.split(",") if label.strip()]
    if not labels:
        return False
    if SELF_HOSTED_LABEL in labels:
        return True
    return not any(pattern.match(label) for label in labels for pattern, _sku in HOSTED_PATTERNS)


def covers(scope: str, repository: str) -> bool:
    """Whether runners of ``scope`` are reachable from a job of ``repository`` (``owner/name``)."""
    kind, _, name = scope.partition("/")
    if kind == "enterprises":
        return True
    if kind == "orgs":
        return repository.partition("/")[0].casefold() == name.casefold()
    return repository.casefold() == name.casefold()


@dataclass(frozen=True)
class Match:
    """The online runners that could take a job, and how many of them are idle."""

    online: int
    idle: int


class Matcher:
    """Matches label sets against the online runners of the polled scopes, counted per distinct
    label set first (5,000 runners have a few dozen)."""

    def __init__(self, scopes: Sequence[tuple[str, Sequence[Runner]]]) -> None:
        self._scopes: list[tuple[str, dict[tuple[frozenset[str], bool], list[int]]]] = []
        self._hosted: set[tuple[str, str]] = set()  # (scope, a larger runner's name, folded), any state
        for scope, runners in scopes:
            counted: dict[tuple[frozenset[str], bool], list[int]] = {}
            for runner in runners:
                if runner.kind == HOSTED:
                    self._hosted.add((scope, runner.name.casefold()))
                if runner.state != "offline":
                    seen = counted.setdefault((parts(runner.labels), runner.kind == HOSTED), [0, 0])
                    seen[0] += 1
                    seen[1] += runner.state == "idle"
            self._scopes.append((scope, counted))

    def judges(self, repository: str, runs_on: str) -> bool:
        """Whether a queued job of ``repository`` asking for ``runs_on`` can be judged here: a
        reachable scope is polled, and the job is not for GitHub's standard runners (a larger
        runner's name may look like theirs: ``ubuntu-22.04-16core``)."""
        reachable = [scope for scope, _ in self._scopes if covers(scope, repository)]
        if not reachable:
            return False
        return judged(runs_on) or any((scope, runs_on.casefold()) in self._hosted for scope in reachable)

    def match(self, repository: str, runs_on: str) -> Match:
        asked = tuple(runs_on.split(","))
        wanted = parts(asked)
        hosted_ok = SELF_HOSTED_LABEL not in {label.strip().casefold() for label in asked}
        online = idle = 0
        for scope, counted in self._scopes:
            if not covers(scope, repository):
                continue
            for (labels, is_hosted), (runners, idle_runners) in counted.items():
                if (hosted_ok or not is_hosted) and wanted <= labels:
                    online += runners
                    idle += idle_runners
        return Match(online, idle)
