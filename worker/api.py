"""``GET /api/v1/inflight``: the job and run attempts queued, waiting or in progress now, oldest
first, read from Redis (so every worker replica answers the same); ``GET /api/v1/recent``: the last
``worker.recent_failures`` completed jobs that did not succeed, newest first.

Query parameters: ``repository``, ``runs_on`` (jobs only: runs are left out when it is given),
``phase`` (``queued``, ``waiting``, ``in_progress``), ``limit`` (per list, default 500, at most
1,000, ASCII digits). The answer says how many matched in all (``total_jobs``, ``total_runs``), so a
page can say how many more there are; per ``runs_on``, with the runners polled, the runners that
could take its queued jobs. A job or run counted under ``__overflow__`` by the series
guard shows that value for its labels.

The sets are read through one shared snapshot (:mod:`worker.snapshot`); at most
``worker.api_concurrency`` requests are answered at once, 429 past it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from shared.digits import ascii_digits
from worker.codec import InflightGroup, JobGroup, RunGroup
from worker.inflight import Accept, Inflight, InflightEntry
from worker.ledger_reads import LedgerReads
from worker.runner_inventory import Polled
from worker.runner_match import Matcher
from worker.state import INFLIGHT_JOB_PHASES, SHOWN_JOB_FIELDS, SHOWN_RUN_FIELDS
from worker.trace_entries import job_trace_url

DEFAULT_LIMIT = 500
MAX_LIMIT = 1_000
LIMIT_DIGITS = len(str(MAX_LIMIT))
RUN_FIELDS = ("labels", *SHOWN_RUN_FIELDS)


class BadQuery(ValueError):
    """A query parameter the API cannot use: answered 400 with this message."""


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def attempt_of(key: str) -> tuple[int, int]:
    """``job:<id>:<attempt>`` or ``run:<id>:<attempt>``: the id and the attempt."""
    _kind, number, attempt = key.split(":")
    return int(number), int(attempt)


def known_only(query: Mapping[str, str], known: set[str]) -> None:
    unknown = set(query) - known
    if unknown:
        raise BadQuery(f"unknown parameters: {', '.join(sorted(unknown))}")


def parse_query(query: Mapping[str, str]) -> tuple[dict[str, str], int]:
    known_only(query, {"repository", "runs_on", "phase", "limit"})
    phase = query.get("phase")
    if phase is not None and phase not in INFLIGHT_JOB_PHASES:
        raise BadQuery(f"phase must be one of {', '.join(INFLIGHT_JOB_PHASES)}")
    filters = {k: v for k, v in query.items() if k in ("repository", "runs_on", "phase")}
    return filters, parse_limit(query.get("limit"), DEFAULT_LIMIT)


def parse_limit(text: str | None, default: int) -> int:
    if text is None:
        return default
    if not ascii_digits(text, LIMIT_DIGITS) or not 1 <= int(text) <= MAX_LIMIT:
        raise BadQuery(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(text)


def summary(
    inflight: Inflight, accept: Accept, now: float, matcher: Matcher | None = None
) -> list[dict[str, Any]]:
    """Per ``runs_on``: jobs queued, waiting and in progress, and the oldest wait (of all the jobs
    that matched, not only the listed ones); with the runners polled, ``runners``: the online runners
    that could take its queued jobs, how many are idle (the most any of their repositories reaches)
    and the queued jobs none could take (``None``: not judged, :mod:`worker.runner_match`)."""
    by: dict[str, dict[str, Any]] = {}
    for phase in INFLIGHT_JOB_PHASES:
        for found in inflight.groups("job", phase):
            group = found.group
            if not accept(phase, group) or not isinstance(group, JobGroup):
                continue
            row = by.setdefault(group.runs_on, {
                "runs_on": group.runs_on, "queued": 0, "waiting": 0, "in_progress": 0,
                "oldest_wait_seconds": None, "runners": None,
            })  # fmt: skip
            row[phase] += found.attempts
            if phase != "queued":
                continue
            waited = round(max(0.0, now - found.oldest), 3)
            row["oldest_wait_seconds"] = max(row["oldest_wait_seconds"] or 0.0, waited)
            if matcher is not None and matcher.judges(group.repository, group.runs_on):
                match = matcher.match(group.repository, group.runs_on)
                seen = row["runners"] or {"online": 0, "idle": 0, "unmatched_jobs": 0}
                row["runners"] = {
                    "online": max(seen["online"], match.online), "idle": max(seen["idle"], match.idle),
                    "unmatched_jobs": seen["unmatched_jobs"] + (found.attempts if not match.online else 0),
                }  # fmt: skip
    return sorted(by.values(), key=lambda r: (-(r["oldest_wait_seconds"] or 0.0), r["runs_on"]))


def job_filter(filters: Mapping[str, str]) -> Accept:
    """Whether a job's set and group (runs_on, runner_group, repository) match the filters."""

    def accept(phase: str, group: InflightGroup) -> bool:
        return (
            isinstance(group, JobGroup)
            and filters.get("phase", phase) == phase
            and filters.get("runs_on", group.runs_on) == group.runs_on
            and filters.get("repository", group.repository) == group.repository
        )

    return accept


def run_filter(filters: Mapping[str, str]) -> Accept:
    """Whether a run's set and group (its repository) match the filters: none does when ``runs_on``
    is given (runs have no runner)."""

    def accept(phase: str, group: InflightGroup) -> bool:
        return (
            "runs_on" not in filters
            and filters.get("phase", phase) == phase
            and isinstance(group, RunGroup)
            and filters.get("repository", group.repository) == group.repository
        )

    return accept


def matcher_of(polled: Sequence[Polled]) -> Matcher | None:
    """The runners' matcher when the runners are polled."""
    return Matcher([(p.scope, p.runners) for p in polled]) if polled else None


class InflightApi:
    def __init__(
        self,
        reads: LedgerReads,
        read_inflight: Callable[[], Inflight] | None = None,
        clock: Callable[[], float] = time.time,
        trace_ui: str | None = None,
        read_runners: Callable[[], Sequence[Polled]] = tuple,
    ) -> None:
        self._reads = reads
        self._read_inflight = read_inflight or reads.read_inflight
        self._read_runners = read_runners
        self._clock = clock
        self._trace_ui = trace_ui  # traces.ui_url: each job gets its trace_url

    def inflight(self, query: Mapping[str, str]) -> dict[str, Any]:
        filters, limit = parse_query(query)
        now = self._clock()
        inflight, accept_job = self._read_inflight(), job_filter(filters)
        jobs, total_jobs = inflight.oldest_first("job", accept_job, limit)
        runs, total_runs = inflight.oldest_first("run", run_filter(filters), limit)
        return {
            "jobs": self._jobs(jobs, now),
            "runs": self._runs(runs, now),
            "total_jobs": total_jobs,
            "total_runs": total_runs,
            "by_runs_on": summary(inflight, accept_job, now, matcher_of(self._read_runners())),
        }

    def recent(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /api/v1/recent``: the completed jobs that did not succeed, newest first."""
        known_only(query, {"limit"})
        jobs = []
        for entry in self._reads.read_recent_failures()[: parse_limit(query.get("limit"), MAX_LIMIT)]:
            completed = entry.get("completed_at")
            job = {**entry, "completed_at": iso(completed) if completed else None}
            jobs.append(self._traced(job))
        return {"jobs": jobs}

    def _traced(self, job: dict[str, Any]) -> dict[str, Any]:
        """``job`` with its ``trace_url`` when ``traces.ui_url`` is set."""
        if self._trace_ui and isinstance(job.get("job_id"), int):
            job["trace_url"] = job_trace_url(self._trace_ui, job.get("run_id"), job.get("run_attempt") or 1,
                                             job["job_id"])  # fmt: skip
        return job

    def _jobs(self, entries: list[InflightEntry], now: float) -> list[dict[str, Any]]:
        states = self._reads.read_states([e.key for e in entries], SHOWN_JOB_FIELDS)
        found = []
        for entry, (workflow, job, run_id, html_url) in zip(entries, states, strict=True):
            job_id, attempt = attempt_of(entry.key)
            if not isinstance(entry.group, JobGroup):
                continue  # a job's set holds job groups only
            runs_on, runner_group, repository = entry.group
            found.append(self._traced({
                "repository": repository, "workflow": workflow or "", "job": job or "",
                "run_id": int(run_id) if run_id else None, "run_attempt": attempt, "job_id": job_id,
                "runs_on": runs_on, "runner_group": runner_group, "phase": entry.phase,
                "since": iso(entry.since), "age_seconds": round(max(0.0, now - entry.since), 3),
                "html_url": html_url or "",
            }))  # fmt: skip
        return found

    def _runs(self, entries: list[InflightEntry], now: float) -> list[dict[str, Any]]:
        states = self._reads.read_states([e.key for e in entries], RUN_FIELDS)
        found = []
        for entry, (labels, head_branch, html_url) in zip(entries, states, strict=True):
            run_id, attempt = attempt_of(entry.key)
            values = json.loads(labels) if labels else {}
            repository = entry.group.repository if isinstance(entry.group, RunGroup) else ""
            found.append({
                "repository": repository or values.get("repository", ""),
                "workflow": values.get("workflow", ""), "run_id": run_id, "run_attempt": attempt,
                "event": values.get("event", ""), "branch": head_branch or "", "phase": entry.phase,
                "since": iso(entry.since), "age_seconds": round(max(0.0, now - entry.since), 3),
                "html_url": html_url or "",
            })  # fmt: skip
        return found


BUSY = "busy"  # the refusal's reason


class Gate:
    """At most ``size`` API requests answered at once; past it they are refused (429)."""

    def __init__(self, size: int, refused: Callable[[str], None] = lambda _reason: None) -> None:
        self._slots = threading.BoundedSemaphore(size)
        self._refused = refused

    def enter(self) -> bool:
        if self._slots.acquire(blocking=False):
            return True
        self._refused(BUSY)
        return False

    def leave(self) -> None:
        self._slots.release()


def json_route(
    answer: Callable[[Mapping[str, str]], Any], gate: Gate | None = None
) -> Callable[[Mapping[str, str]], tuple[int, bytes, dict[str, str]]]:
    """An API answer as an HTTP route: 200 with JSON, 400 for a bad query, 429 past the gate, 503
    when Redis fails."""
    gate = gate or Gate(1_000_000)

    def route(query: Mapping[str, str]) -> tuple[int, bytes, dict[str, str]]:
        headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
        if not gate.enter():
            body: Any = {"error": "too many API requests at once; try again shortly"}
            return 429, json.dumps(body).encode(), {**headers, "Retry-After": "1"}
        try:  # the answer is encoded within the gate too: what the gate bounds is its memory
            try:
                body = answer(query)
                status = 200
            except BadQuery as exc:
                body, status = {"error": str(exc)}, 400
            except RedisError as exc:
                body, status = {"error": f"redis unavailable: {type(exc).__name__}"}, 503
            return status, json.dumps(body, separators=(",", ":")).encode(), headers
        finally:
            gate.leave()

    return route
