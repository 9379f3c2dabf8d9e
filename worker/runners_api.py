"""``GET /api/v1/runners``: the runners by group and state, and each runner: its name, labels, state
and, when the webhooks say so, the job it is busy with and since when. From Redis, so every worker
replica answers the same.

Two sources: the polled inventory (``github.runners``: every runner, its state as GitHub said at
the last poll) and the busy runners of the webhooks (always; fresher, but only runners that took a
job). A polled runner and a webhook's one are the same runner when their number and name agree
and the scope reaches the job's owner; a busy runner no polled scope lists is shown alone (``scope``
null, its labels unknown).

Query parameters: ``runner_group``, ``state`` (``idle``, ``busy``, ``offline``), ``label`` (runners
with that label, any case), ``limit`` (default 500, at most 1,000). The answer says how many matched
in all (``total``); ``by_group`` counts every runner, filtered or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from worker.api import DEFAULT_LIMIT, BadQuery, attempt_of, iso, known_only, parse_limit
from worker.busy_runners import BUSY
from worker.codec import RunnerGroup
from worker.inflight import Inflight
from worker.ledger_reads import LedgerReads
from worker.runner_inventory import Polled

STATES = ("busy", "idle", "offline")
BUSY_FIELDS = ("job", "job_url", "owner", "id", "name")
MAX_BUSY = 100_000  # webhook busy runners read at most (one set member each)


class RunnersApi:
    def __init__(
        self,
        reads: LedgerReads,
        read_inflight: Callable[[], Inflight],
        read_runners: Callable[[], Sequence[Polled]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reads = reads
        self._read_inflight = read_inflight
        self._read_runners = read_runners
        self._clock = clock

    def runners(self, query: Mapping[str, str]) -> dict[str, Any]:
        known_only(query, {"runner_group", "state", "label", "limit"})
        state = query.get("state")
        if state is not None and state not in STATES:
            raise BadQuery(f"state must be one of {', '.join(STATES)}")
        limit = parse_limit(query.get("limit"), DEFAULT_LIMIT)
        now = self._clock()
        polled = self._read_runners()
        busy = self._busy(now)
        by_runner: dict[tuple[int | None, str], list[str]] = {}  # (number, name) -> owners
        for busy_owner, number, name in busy:
            by_runner.setdefault((number, name), []).append(busy_owner)
        rows: list[dict[str, Any]] = []
        for reading in polled:
            scope_owner = (
                "" if reading.scope.startswith("enterprises/") else reading.scope.split("/")[1].casefold()
            )
            for runner in reading.runners:
                owners = by_runner.get((runner.id, runner.name), [])
                # an enterprise's runner takes jobs of any owner
                owner = next((o for o in owners if o == scope_owner or not scope_owner), None)
                found = busy.pop((owner, runner.id, runner.name), None) if owner is not None else None
                if owner is not None:
                    owners.remove(owner)
                rows.append({
                    "scope": reading.scope, "id": runner.id, "name": runner.name,
                    "runner_group": runner.group, "state": runner.state, "os": runner.os, "kind": runner.kind,
                    "labels": list(runner.labels), "busy_job": found[1] if found else None,
                })  # fmt: skip
        for (_owner, number, name), (group, job) in busy.items():  # per the webhooks, in no polled scope
            rows.append({
                "scope": None, "id": number, "name": name, "runner_group": group, "state": "busy", "os": "",
                "labels": [], "kind": "self-hosted", "busy_job": job,
            })  # fmt: skip
        return {
            "runners": (chosen := [row for row in _ordered(rows) if _wanted(row, query)])[:limit],
            "total": len(chosen),
            "by_group": _by_group(rows),
            "polled": [{"scope": p.scope, "at": iso(p.at), "runners": len(p.runners)} for p in polled],
        }

    def _busy(self, now: float) -> dict[tuple[str, int | None, str], tuple[str, dict[str, Any]]]:
        """The runners busy per the webhooks: (owner folded, number, name) -> (group, its job)."""
        entries, _total = self._read_inflight().oldest_first("runner", lambda _p, _g: True, MAX_BUSY)
        states = self._reads.read_states([entry.key for entry in entries], BUSY_FIELDS)
        found = {}
        for entry, (job, job_url, owner, number, name) in zip(entries, states, strict=True):
            if not job or entry.phase != BUSY or not isinstance(entry.group, RunnerGroup):
                continue  # moved on between the two reads
            job_id, attempt = attempt_of(job)
            runner_id = int(number) if number and number.isdigit() else None
            found[(owner or "").casefold(), runner_id, name or ""] = (entry.group.runner_group, {
                "job_id": job_id, "run_attempt": attempt, "html_url": job_url or "", "owner": owner or "",
                "since": iso(entry.since), "busy_seconds": round(max(0.0, now - entry.since), 3),
            })  # fmt: skip
        return found


def _wanted(row: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    label = query.get("label")
    return (
        query.get("runner_group", row["runner_group"]) == row["runner_group"]
        and query.get("state", row["state"]) == row["state"]
        and (label is None or label.casefold() in {name.casefold() for name in row["labels"]})
    )


def _ordered(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["runner_group"], STATES.index(r["state"]), r["name"], r["id"] or 0))


def _by_group(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        group = row["runner_group"]
        empty = {"runner_group": group, **dict.fromkeys(STATES, 0), "busy_from_webhooks": 0}
        counted = groups.setdefault(group, empty)
        counted[row["state"]] += 1
        counted["busy_from_webhooks"] += row["busy_job"] is not None
    return [groups[name] for name in sorted(groups)]
