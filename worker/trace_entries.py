"""What a completed job or run leaves in the trace outbox, and the ids its spans get.

An entry is a small JSON object holding what the spans need (names, ids, times, result, runner,
repository), made by the rules (:mod:`worker.state`) in the transaction that counts the completion,
so it is written exactly once; :mod:`worker.otlp` turns entries into spans when the outbox is
drained. Times are whole seconds since the epoch, as GitHub gives them.

The ids follow from GitHub's own ids alone, so every worker, a redelivery and a reconciler's replay
give the same spans, and a job's span finds its run's span as parent before the run completes:
the trace id from (run id, run attempt), the run's span id from the same, a job's from (job id,
attempt), its wait's and each step's from the job's id and the step's number. A job without a run
id (only hand-edited payloads) is a trace of its own, by its job id.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from worker.payloads import JobEvent, RunEvent

MAX_TEXT = 1024  # longest name or address kept in an entry (characters)


def _id(bits: int, *parts: object) -> int:
    """A non-zero id of ``bits`` bits from ``parts`` (the same on every machine and in every order)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=bits // 8).digest()
    return int.from_bytes(digest, "big") or 1


def trace_id(run_id: int, attempt: int) -> int:
    return _id(128, "trace", run_id, attempt)


def job_trace_id(run_id: int | None, job_id: int, attempt: int) -> int:
    """The trace a job's spans belong to: its run attempt's, or its own without a run id."""
    return trace_id(run_id, attempt) if run_id is not None else _id(128, "job-trace", job_id, attempt)


def run_span_id(run_id: int, attempt: int) -> int:
    return _id(64, "run", run_id, attempt)


def job_span_id(job_id: int, attempt: int) -> int:
    return _id(64, "job", job_id, attempt)


def wait_span_id(job_id: int, attempt: int) -> int:
    return _id(64, "wait", job_id, attempt)


def step_span_id(job_id: int, attempt: int, number: int) -> int:
    return _id(64, "step", job_id, attempt, number)


def trace_hex(value: int) -> str:
    return f"{value:032x}"


def span_hex(value: int) -> str:
    return f"{value:016x}"


def job_trace_url(template: str, run_id: int | None, attempt: int, job_id: int) -> str:
    """A job's span in the tracing UI (``traces.ui_url`` with its ``{trace_id}`` and ``{span_id}``)."""
    trace = trace_hex(job_trace_id(run_id, job_id, attempt))
    return template.replace("{trace_id}", trace).replace("{span_id}", span_hex(job_span_id(job_id, attempt)))


def _seconds(moment: Any) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def _cut(text: str) -> str:
    return text[:MAX_TEXT]


class TraceEntries:
    """Outbox entries of completed jobs and runs; ``steps``: a job's entry carries its steps."""

    def __init__(self, steps: bool) -> None:
        self._steps = steps

    def job(self, event: JobEvent) -> bytes:
        entry: dict[str, Any] = {
            "kind": "job", "run": event.run_id, "attempt": event.run_attempt, "id": event.job_id,
            "name": _cut(event.job), "workflow": _cut(event.workflow), "url": event.html_url,
            "conclusion": event.conclusion, "created": _seconds(event.created_at),
            "started": _seconds(event.started_at) if event.ran_on_runner else None,
            "completed": _seconds(event.completed_at), "runner": _cut(event.runner_name or ""),
            "runner_id": event.runner_id, "group": _cut(event.runner_group),
            "labels": [_cut(label) for label in event.labels[:100]], "repository": _cut(event.repository),
            "repository_url": event.repository_url, "branch": _cut(event.branch), "sha": event.head_sha,
        }  # fmt: skip
        if self._steps and event.ran_on_runner:
            entry["steps"] = [
                [step.number or place, _cut(step.name), step.conclusion, _seconds(step.started_at),
                 _seconds(step.completed_at)]
                for place, step in enumerate(event.steps, start=1)
            ]  # fmt: skip
        return orjson.dumps(entry)

    def run(self, event: RunEvent) -> bytes:
        return orjson.dumps(
            {
                "kind": "run", "run": event.run_id, "attempt": event.run_attempt,
                "workflow": _cut(event.workflow), "url": event.html_url, "conclusion": event.conclusion,
                "started": _seconds(event.run_started_at or event.created_at),
                "completed": _seconds(event.updated_at), "repository": _cut(event.repository),
                "repository_url": event.repository_url, "branch": _cut(event.branch), "sha": event.head_sha,
                "event": _cut(event.event),
            }
        )  # fmt: skip
