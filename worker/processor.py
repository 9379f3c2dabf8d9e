"""Turn one queued envelope into metric movements.

Rules (see the README's metrics reference):
- a job is counted once per (job id, run attempt) when a ``completed`` delivery arrives; its
  duration ``completed_at - started_at`` only when it ran on a runner (``runner_name`` set);
- queue time ``started_at - created_at`` (clamped at 0) once per job attempt, from the first
  ``in_progress`` or ``completed`` delivery of a job that ran; never from ``queued``, whose
  ``started_at`` is a placeholder;
- a run is counted once per (run id, run attempt) at ``completed``, with duration
  ``updated_at - run_started_at`` (``created_at`` on old payloads).
A payload that cannot be used is logged with its delivery id and counted as an error; it never
raises. Redis errors do raise, so RQ retries the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from loguru import logger

from shared.envelope import Envelope, EnvelopeError
from worker.marks import ProgressMarks
from worker.metrics import Recorder
from worker.payloads import JobEvent, PayloadError, RunEvent, parse

ERROR_EVENT_UNKNOWN = "unknown"


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def job_labels(event: JobEvent) -> dict[str, str]:
    return {
        "repository": event.repository,
        "owner": event.owner,
        "workflow": event.workflow,
        "job": event.job,
        "conclusion": event.conclusion or "unknown",
        "runner_group": event.runner_group,
        "runs_on": ",".join(sorted(event.labels)),
        "branch": event.branch,
    }


def run_labels(event: RunEvent) -> dict[str, str]:
    return {
        "repository": event.repository,
        "owner": event.owner,
        "workflow": event.workflow,
        "event": event.event,
        "conclusion": event.conclusion or "unknown",
        "branch": event.branch,
    }


class Processor:
    def __init__(
        self, recorder: Recorder, marks: ProgressMarks, clock: Callable[[], float] = time.time
    ) -> None:
        self._recorder = recorder
        self._marks = marks
        self._clock = clock

    def process(self, item: Any) -> None:
        try:
            envelope = Envelope.from_dict(item)
        except EnvelopeError as exc:
            logger.warning("dropped a queued item that is not an envelope: {}", exc)
            self._recorder.processing_error(ERROR_EVENT_UNKNOWN, "bad_envelope")
            return
        try:
            event = parse(envelope.event, envelope.body)
        except PayloadError as exc:
            logger.warning("delivery {} ({}) unusable: {}", envelope.delivery_id, envelope.event, exc)
            self._recorder.processing_error(
                envelope.event if envelope.event in ("workflow_job", "workflow_run") else "other", exc.reason
            )
            return
        if isinstance(event, JobEvent):
            self._job(event)
        else:
            self._run(event)
        self._recorder.event_processed(envelope.event, event.action)
        self._recorder.processing_lag(self._clock() - envelope.received_at)

    def reject_job(self, detail: str) -> None:
        """A queued job whose arguments are not a list of envelopes."""
        logger.warning("dropped a malformed queue job: {}", detail)
        self._recorder.processing_error(ERROR_EVENT_UNKNOWN, "bad_job")

    def _job(self, event: JobEvent) -> None:
        labels = job_labels(event)
        if event.action in ("in_progress", "completed") and (
            event.action == "in_progress" or event.ran_on_runner
        ):
            waited = seconds_between(event.created_at, event.started_at)
            if waited is not None and self._marks.first("job", event.job_id, event.run_attempt, "started"):
                self._recorder.job_queued(labels, waited)
        if event.action == "completed" and self._marks.first(
            "job", event.job_id, event.run_attempt, "completed"
        ):
            duration = seconds_between(event.started_at, event.completed_at) if event.ran_on_runner else None
            self._recorder.job_completed(labels, duration)

    def _run(self, event: RunEvent) -> None:
        if event.action == "completed" and self._marks.first(
            "run", event.run_id, event.run_attempt, "completed"
        ):
            started = event.run_started_at or event.created_at
            self._recorder.run_completed(run_labels(event), seconds_between(started, event.updated_at))
