"""Timestamps a job or run can really have: a signed payload with ``started_at`` in year 1 and
``completed_at`` in year 9999 added $37.8 million to the cost counter, and counters cannot be
corrected afterwards.

A job runs at most 5 days (GitHub's limit on a self-hosted runner; ``metrics.max_job_seconds``), a
run at most 35 days, waits and approvals included (``metrics.max_run_seconds``), so no job waits
longer than that for a runner. An end may precede its start by ``metrics.clock_skew_seconds`` at
most (such a duration counts as 0). A job created after it started is normal (skipped jobs): its
queue time counts as 0. Only the payload's own timestamps are compared, never the clock: a
redelivery or replay of a real payload from years ago still counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.settings import MetricsSettings
from worker.payloads import JobEvent, PayloadError, RunEvent

DURATION = "implausible_duration"
QUEUE_TIME = "implausible_queue_time"


@dataclass(frozen=True)
class Limits:
    max_job: float
    max_run: float
    skew: float

    @classmethod
    def of(cls, settings: MetricsSettings) -> Limits:
        return cls(settings.max_job_seconds, settings.max_run_seconds, settings.clock_skew_seconds)


def _span(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else (end - start).total_seconds()


def _duration(start: datetime | None, end: datetime | None, longest: float, skew: float, what: str) -> None:
    took = _span(start, end)
    if took is not None and (took < -skew or took > longest):
        raise PayloadError(DURATION, f"{what} lasted {took:.0f} s")


def check(event: JobEvent | RunEvent, limits: Limits) -> None:
    """Raise :class:`PayloadError` when ``event``'s timestamps cannot be real."""
    if isinstance(event, RunEvent):
        start = event.run_started_at or event.created_at
        _duration(start, event.updated_at, limits.max_run, limits.skew, "workflow_run")
        return
    _duration(event.started_at, event.completed_at, limits.max_job, limits.skew, "workflow_job")
    for step in event.steps:
        _duration(step.started_at, step.completed_at, limits.max_job, limits.skew, "a step")
    waited = _span(event.created_at, event.started_at)
    if waited is not None and waited > limits.max_run:
        raise PayloadError(QUEUE_TIME, f"workflow_job waited {waited:.0f} s")


def run_queue_time(waited: float, limits: Limits) -> bool:
    """Whether a run's queue time (from its start reference to its first job's start, known only
    once both deliveries arrived) is one a run can have: no run lives longer than ``max_run``. One
    that cannot is not observed (the run's other figures stand)."""
    return waited <= limits.max_run
