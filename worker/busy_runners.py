"""Which self-hosted runner is busy with which job, from the jobs' own deliveries alone.

A job names its runner from ``in_progress`` on (``runner_id``, ``runner_name``,
``runner_group_name``). The runner's state (``state:runner:<owner>:<id>:<name>``, :func:`runner_key`)
moves in the same transaction as its jobs' (:mod:`worker.ledger`), so it moves exactly once per
delivery, and by rules that do not depend on the order deliveries arrive in:

- the runner keeps its :data:`HISTORY` latest-started jobs, each with its start, its completion once
  seen and the runner group it ran in (``jobs``: a JSON list ordered by start, ties by key);
- it is **busy** with its latest-started job unless that job's completion was seen, and then idle;
  while busy it is a member of ``inflight:runner:busy`` (the ``runners_busy`` gauge, by the busy
  job's runner group), left by the sweeper if nothing moves it for ``state.job_ttl_seconds``;
- two jobs whose runs (start to completion) overlap are one ``overlap`` anomaly, counted when the
  second of the two completions is seen;
- a job pushed out of the history by later jobs before its completion was seen is one
  ``superseded`` anomaly (it never completed while its runner took others); ``floor`` keeps the
  newest job pushed out, and a job that started before it is not taken back.

GitHub-hosted runners are left out: each job gets a fresh machine (a runner busy with one job is
that job in progress), and their names (``GitHub Actions 2``) and numbers repeat across machines.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from shared import keys
from worker.codec import InflightGroup, RunnerGroup
from worker.labels import bounded
from worker.metrics import LabelPolicy, Update
from worker.payloads import JobEvent

State = dict[str, str]
HISTORY = 8
BUSY = "busy"
HOSTED_GROUP = "GitHub Actions"
HOSTED_NAME = re.compile(r"GitHub Actions \d+|Hosted Agent")
MAX_NAME = 200  # runner names are short; a longer one is cut in the key
# kept in a busy runner's state, for the API and the page: its busy job
SHOWN_RUNNER_FIELDS = ("job", "job_url")
Entry = list[Any]  # [job attempt key, started, completed or None, runner group]


def runner_key(event: JobEvent) -> str | None:
    """The state key of the self-hosted runner a job ran on, or ``None`` (no runner yet, a hosted one)."""
    name = event.runner_name
    if event.action not in ("in_progress", "completed") or not name or event.started_at is None:
        return None
    if event.runner_group == HOSTED_GROUP or HOSTED_NAME.fullmatch(name):
        return None
    return keys.runner(event.owner, event.runner_id, shown_name(name))


def shown_name(name: str) -> str:
    """A runner's name as kept: at most :data:`MAX_NAME` characters, no member separator."""
    return name[:MAX_NAME].replace("\x1f", " ")


class RunnerTransitions:
    def __init__(self, policy: LabelPolicy, limit: int) -> None:
        self._policy = policy
        self._limit = limit  # of a label value (metrics.max_label_value_bytes)

    def apply(
        self, key: str, state: State, event: JobEvent, groups: dict[str, InflightGroup], updates: list[Update]
    ) -> None:
        """Apply a job's delivery to the ``state`` of its runner (:func:`runner_key`: ``key``) in place:
        the runner's in-flight group goes to ``groups`` while it is busy, the anomalies to ``updates``."""
        if event.started_at is None:  # runner_key gives none for such a job: its callers ask it first
            return
        started = event.started_at.timestamp()
        attempt = keys.job_attempt(event.job_id, event.run_attempt)
        jobs: list[Entry] = orjson.loads(state.get("jobs", "[]"))
        floor = orjson.loads(state["floor"]) if "floor" in state else None
        entry = next((e for e in jobs if e[0] == attempt), None)
        if entry is None:
            if floor is not None and [started, attempt] <= floor:
                return  # older than a job already pushed out of the history
            entry = [attempt, started, None, bounded(event.runner_group, self._limit)]
            jobs.append(entry)
            jobs.sort(key=lambda e: (e[1], e[0]))
        if event.action == "completed" and entry[2] is None:
            completed = event.completed_at.timestamp() if event.completed_at is not None else started
            entry[2] = max(started, completed)
            overlaps = sum(1 for e in jobs if e is not entry and e[2] is not None and _overlap(e, entry))
            for _ in range(overlaps):
                updates.append(self._anomaly("overlap"))
        while len(jobs) > HISTORY:
            oldest = jobs.pop(0)
            if oldest[2] is None:
                updates.append(self._anomaly("superseded"))
            floor = [oldest[1], oldest[0]]
        if floor is not None:
            state["floor"] = orjson.dumps(floor).decode()
        state["jobs"] = orjson.dumps(jobs).decode()
        state.update(
            owner=event.owner, name=shown_name(event.runner_name or ""), id=str(event.runner_id or "")
        )
        latest = jobs[-1]
        if latest[2] is not None:
            for field_name in ("inflight", "member", "score", *SHOWN_RUNNER_FIELDS):
                state.pop(field_name, None)
            return
        state.update(inflight=BUSY, score=repr(latest[1]), job=latest[0])
        if latest is entry:
            state["job_url"] = event.html_url
        groups[key] = RunnerGroup(latest[3])

    def _anomaly(self, kind: str) -> Update:
        return self._policy.update("runner_anomalies_total", {"kind": kind}, "inc", 1)


def _overlap(first: Entry, second: Entry) -> bool:
    """Whether two completed jobs ran at the same time (touching ends do not overlap)."""
    return bool(first[1] < second[2] and second[1] < first[2])
