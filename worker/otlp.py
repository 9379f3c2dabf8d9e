"""Outbox entries as OpenTelemetry spans by the CI/CD semantic conventions, encoded for OTLP/HTTP.

A run attempt is a ``cicd.pipeline.run`` span (SERVER, named ``RUN {workflow}``) from its start to
its completion, linked to the previous attempt's; each job a ``cicd.pipeline.task`` span (INTERNAL,
named after the job) under it, from its creation to its completion; under the job, the wait for a
runner (``pending``, from its creation to its start: the conventions' ``cicd.pipeline.run.state``
``pending``) and each step (a task named after the step). GitHub's conclusions map to the
conventions' results by :data:`RESULTS`; a failed one also sets ``error.type`` (the conclusion) and
the span's status to ERROR. Attribute names come from ``opentelemetry-semantic-conventions``; the
conventions have none for three GitHub facts, named here under ``github.actions.``.

The spans are written in OTLP's wire format by :mod:`worker.otlp_wire` (the SDK's span objects and
encoder cost a quarter of the worker's drain rate).

Imported only when traces are on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.semconv._incubating.attributes import cicd_attributes as cicd
from opentelemetry.semconv._incubating.attributes import vcs_attributes as vcs
from opentelemetry.semconv.attributes import error_attributes, service_attributes

from worker import otlp_wire
from worker import trace_entries as ids
from worker.otlp_wire import INTERNAL, SERVER, SpanData

R = cicd.CicdPipelineResultValues
RESULTS: dict[str, str] = {  # GitHub's conclusion -> the conventions' result
    "success": R.SUCCESS.value,
    "neutral": R.SUCCESS.value,
    "failure": R.FAILURE.value,
    "startup_failure": R.ERROR.value,
    "timed_out": R.TIMEOUT.value,
    "cancelled": R.CANCELLATION.value,
    "stale": R.CANCELLATION.value,
    "skipped": R.SKIP.value,
    "action_required": R.SKIP.value,
}
UNKNOWN_RESULT = R.ERROR.value  # a conclusion GitHub may add later, or none
FAILED = (R.FAILURE.value, R.ERROR.value, R.TIMEOUT.value)

RUN_ATTEMPT = "github.actions.run.attempt"
RUNNER_GROUP = "github.actions.runner.group.name"
JOB_LABELS = "github.actions.job.labels"
GITHUB_ATTRIBUTES = (RUN_ATTEMPT, RUNNER_GROUP, JOB_LABELS)  # the names not from the conventions

SCOPE = "gha-exporter"
NANOS = 1_000_000_000


def result_of(conclusion: str | None) -> str:
    return RESULTS.get(conclusion or "", UNKNOWN_RESULT)


def _trace(value: int) -> bytes:
    return value.to_bytes(16, "big")


def _span_id(value: int) -> bytes:
    return value.to_bytes(8, "big")


def _nanos(seconds: int | None, fallback: int | None) -> int:
    chosen = seconds if seconds is not None else fallback
    return (chosen or 0) * NANOS


def _failure(result: str, conclusion: str | None) -> dict[str, Any]:
    return {error_attributes.ERROR_TYPE: conclusion or "unknown"} if result in FAILED else {}


def _repository(entry: dict[str, Any]) -> dict[str, Any]:
    owner, _, name = str(entry.get("repository") or "").partition("/")
    found = {
        vcs.VCS_PROVIDER_NAME: vcs.VcsProviderNameValues.GITHUB.value,
        vcs.VCS_OWNER_NAME: owner,
        vcs.VCS_REPOSITORY_NAME: name,
        vcs.VCS_REPOSITORY_URL_FULL: entry.get("repository_url"),
        vcs.VCS_REF_HEAD_NAME: entry.get("branch"),
        vcs.VCS_REF_HEAD_REVISION: entry.get("sha"),
    }
    return {key: value for key, value in found.items() if value}


class SpanMaker:
    def __init__(self, service_name: str) -> None:
        self._resource = {service_attributes.SERVICE_NAME: service_name}

    def spans(self, raw: bytes) -> list[bytes]:
        """The spans of one outbox entry (``ValueError``, ``KeyError`` or ``TypeError`` if it is not
        one that :mod:`worker.trace_entries` makes)."""
        entry = orjson.loads(raw)
        made = self._run(entry) if entry["kind"] == "run" else self._job(entry)
        return [otlp_wire.span(data) for data in made]

    def request(self, spans: Sequence[bytes]) -> bytes:
        """An OTLP/HTTP ExportTraceServiceRequest (protobuf) carrying ``spans``."""
        return otlp_wire.request(self._resource, SCOPE, spans)

    def _run(self, entry: dict[str, Any]) -> list[SpanData]:
        run, attempt = entry["run"], entry["attempt"]
        result = result_of(entry.get("conclusion"))
        links: list[tuple[bytes, bytes]] = []
        if attempt > 1:
            links.append(
                (_trace(ids.trace_id(run, attempt - 1)), _span_id(ids.run_span_id(run, attempt - 1)))
            )
        action = cicd.CicdPipelineActionNameValues.RUN.value
        attributes = {
            cicd.CICD_PIPELINE_ACTION_NAME: action,
            cicd.CICD_PIPELINE_NAME: entry.get("workflow"),
            cicd.CICD_PIPELINE_RUN_ID: str(run),
            cicd.CICD_PIPELINE_RUN_URL_FULL: entry.get("url"),
            cicd.CICD_PIPELINE_RESULT: result,
            RUN_ATTEMPT: attempt,
            **_failure(result, entry.get("conclusion")),
            **_repository(entry),
        }
        started = _nanos(entry.get("started"), entry.get("completed"))
        return [
            SpanData(
                trace_id=_trace(ids.trace_id(run, attempt)),
                span_id=_span_id(ids.run_span_id(run, attempt)),
                parent_span_id=b"",
                name=f"{action} {entry['workflow']}" if entry.get("workflow") else action,
                kind=SERVER,
                start=started,
                end=max(started, _nanos(entry.get("completed"), None)),
                attributes=attributes,
                links=links,
                error=result in FAILED,
            )
        ]

    def _job(self, entry: dict[str, Any]) -> list[SpanData]:
        run, attempt, job = entry.get("run"), entry["attempt"], entry["id"]
        trace = _trace(ids.job_trace_id(run, job, attempt))
        parent = _span_id(ids.run_span_id(run, attempt)) if run is not None else b""
        job_span = _span_id(ids.job_span_id(job, attempt))
        result = result_of(entry.get("conclusion"))
        created, started, completed = entry.get("created"), entry.get("started"), entry.get("completed")
        begin = _nanos(created, started if started is not None else completed)
        task = {
            cicd.CICD_PIPELINE_NAME: entry.get("workflow"),
            cicd.CICD_PIPELINE_RUN_ID: str(run) if run is not None else None,
            cicd.CICD_PIPELINE_TASK_NAME: entry.get("name"),
        }
        attributes = {
            **task,
            cicd.CICD_PIPELINE_TASK_RUN_ID: str(job),
            cicd.CICD_PIPELINE_TASK_RUN_URL_FULL: entry.get("url"),
            cicd.CICD_PIPELINE_TASK_RUN_RESULT: result,
            **_failure(result, entry.get("conclusion")),
            cicd.CICD_WORKER_NAME: entry.get("runner"),
            cicd.CICD_WORKER_ID: str(entry["runner_id"]) if entry.get("runner_id") is not None else None,
            RUNNER_GROUP: entry.get("group"),
            JOB_LABELS: entry.get("labels"),
            RUN_ATTEMPT: attempt,
            **_repository(entry),
        }
        spans = [
            SpanData(
                trace_id=trace,
                span_id=job_span,
                parent_span_id=parent,
                name=entry.get("name") or "job",
                kind=INTERNAL,
                start=begin,
                end=max(begin, _nanos(completed, None)),
                attributes=attributes,
                error=result in FAILED,
            )
        ]
        if started is not None and created is not None:
            pending = {
                **task,
                cicd.CICD_PIPELINE_RUN_STATE: cicd.CicdPipelineRunStateValues.PENDING.value,
                JOB_LABELS: entry.get("labels"),
                RUNNER_GROUP: entry.get("group"),
            }
            spans.append(
                SpanData(
                    trace_id=trace,
                    span_id=_span_id(ids.wait_span_id(job, attempt)),
                    parent_span_id=job_span,
                    name=cicd.CicdPipelineRunStateValues.PENDING.value,
                    kind=INTERNAL,
                    start=begin,
                    end=max(begin, _nanos(started, None)),
                    attributes=pending,
                )
            )
        spans.extend(self._steps(entry, trace, job_span))
        return spans

    def _steps(self, entry: dict[str, Any], trace: bytes, job_span: bytes) -> list[SpanData]:
        spans = []
        url = entry.get("url") or ""
        for number, name, conclusion, started, completed in entry.get("steps", ()):
            if started is None:
                continue  # a step that never ran (skipped before it began) has no time to show
            result = result_of(conclusion)
            attributes = {
                cicd.CICD_PIPELINE_TASK_NAME: name,
                cicd.CICD_PIPELINE_TASK_RUN_ID: f"{entry['id']}.{number}",
                cicd.CICD_PIPELINE_TASK_RUN_URL_FULL: f"{url}#step:{number}:1" if url else None,
                cicd.CICD_PIPELINE_TASK_RUN_RESULT: result,
                **_failure(result, conclusion),
            }
            begin = _nanos(started, None)
            spans.append(
                SpanData(
                    trace_id=trace,
                    span_id=_span_id(ids.step_span_id(entry["id"], entry["attempt"], number)),
                    parent_span_id=job_span,
                    name=name or "step",
                    kind=INTERNAL,
                    start=begin,
                    end=max(begin, _nanos(completed, None)),
                    attributes=attributes,
                    error=result in FAILED,
                )
            )
        return spans
