"""Outbox entries as OpenTelemetry spans by the CI/CD semantic conventions, encoded for OTLP/HTTP.

A run attempt is a ``cicd.pipeline.run`` span (SERVER, named ``RUN {workflow}``) from its start to
its completion, linked to the previous attempt's; each job a ``cicd.pipeline.task`` span (INTERNAL,
named after the job) under it, from its creation to its completion; under the job, the wait for a
runner (``pending``, from its creation to its start: the conventions' ``cicd.pipeline.run.state``
``pending``) and each step (a task named after the step). GitHub's conclusions map to the
conventions' results by :data:`RESULTS`; a failed one also sets ``error.type`` (the conclusion) and
the span's status to ERROR. Attribute names come from ``opentelemetry-semantic-conventions``; the
conventions have none for three GitHub facts, named here under ``github.actions.``.

Imported only when traces are on (it brings the OpenTelemetry SDK).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.semconv._incubating.attributes import cicd_attributes as cicd
from opentelemetry.semconv._incubating.attributes import vcs_attributes as vcs
from opentelemetry.semconv.attributes import error_attributes, service_attributes
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from worker import trace_entries as ids

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

SCOPE = InstrumentationScope("gha-exporter")
NANOS = 1_000_000_000


def result_of(conclusion: str | None) -> str:
    return RESULTS.get(conclusion or "", UNKNOWN_RESULT)


def _context(trace: int, span: int) -> SpanContext:
    return SpanContext(trace, span, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def _status(result: str) -> Status:
    return Status(StatusCode.ERROR) if result in FAILED else Status(StatusCode.UNSET)


def _nanos(seconds: int | None, fallback: int | None) -> int:
    chosen = seconds if seconds is not None else fallback
    return (chosen or 0) * NANOS


def _failure(result: str, conclusion: str | None) -> dict[str, Any]:
    return {error_attributes.ERROR_TYPE: conclusion or "unknown"} if result in FAILED else {}


def _repository(entry: dict[str, Any]) -> dict[str, Any]:
    owner, _, name = str(entry.get("repository") or "").partition("/")
    found = {
        vcs.VCS_PROVIDER_NAME: vcs.VcsProviderNameValues.GITHUB.value,
        vcs.VCS_OWNER_NAME: owner, vcs.VCS_REPOSITORY_NAME: name,
        vcs.VCS_REPOSITORY_URL_FULL: entry.get("repository_url"),
        vcs.VCS_REF_HEAD_NAME: entry.get("branch"), vcs.VCS_REF_HEAD_REVISION: entry.get("sha"),
    }  # fmt: skip
    return {key: value for key, value in found.items() if value}


class SpanMaker:
    def __init__(self, service_name: str) -> None:
        self._resource = Resource.create({service_attributes.SERVICE_NAME: service_name})

    def spans(self, raw: bytes) -> list[ReadableSpan]:
        """The spans of one outbox entry (``ValueError``, ``KeyError`` or ``TypeError`` if it is not
        one that :mod:`worker.trace_entries` makes)."""
        entry = orjson.loads(raw)
        return self._run(entry) if entry["kind"] == "run" else self._job(entry)

    def request(self, spans: Sequence[ReadableSpan]) -> bytes:
        """An OTLP/HTTP ExportTraceServiceRequest (protobuf) carrying ``spans``."""
        return encode_spans(spans).SerializeToString()  # type: ignore[no-any-return]

    def _span(self, name: str, context: SpanContext, **rest: Any) -> ReadableSpan:
        attributes = {key: value for key, value in rest.pop("attributes").items() if value is not None}
        return ReadableSpan(
            name, context, resource=self._resource, attributes=attributes, instrumentation_scope=SCOPE, **rest
        )

    def _run(self, entry: dict[str, Any]) -> list[ReadableSpan]:
        run, attempt = entry["run"], entry["attempt"]
        result = result_of(entry.get("conclusion"))
        links = []
        if attempt > 1:
            previous = _context(ids.trace_id(run, attempt - 1), ids.run_span_id(run, attempt - 1))
            links.append(Link(previous))
        action = cicd.CicdPipelineActionNameValues.RUN.value
        attributes = {
            cicd.CICD_PIPELINE_ACTION_NAME: action, cicd.CICD_PIPELINE_NAME: entry.get("workflow") or None,
            cicd.CICD_PIPELINE_RUN_ID: str(run), cicd.CICD_PIPELINE_RUN_URL_FULL: entry.get("url") or None,
            cicd.CICD_PIPELINE_RESULT: result, RUN_ATTEMPT: attempt,
            **_failure(result, entry.get("conclusion")), **_repository(entry),
        }  # fmt: skip
        name = f"{action} {entry['workflow']}" if entry.get("workflow") else action
        started = _nanos(entry.get("started"), entry.get("completed"))
        return [
            self._span(
                name, _context(ids.trace_id(run, attempt), ids.run_span_id(run, attempt)),
                kind=SpanKind.SERVER, attributes=attributes, links=links, status=_status(result),
                start_time=started, end_time=max(started, _nanos(entry.get("completed"), None)),
            )
        ]  # fmt: skip

    def _job(self, entry: dict[str, Any]) -> list[ReadableSpan]:
        run, attempt, job = entry.get("run"), entry["attempt"], entry["id"]
        trace = ids.job_trace_id(run, job, attempt)
        parent = _context(trace, ids.run_span_id(run, attempt)) if run is not None else None
        context = _context(trace, ids.job_span_id(job, attempt))
        result = result_of(entry.get("conclusion"))
        created, started, completed = entry.get("created"), entry.get("started"), entry.get("completed")
        begin = _nanos(created, started if started is not None else completed)
        end = max(begin, _nanos(completed, None))
        task = {
            cicd.CICD_PIPELINE_NAME: entry.get("workflow") or None,
            cicd.CICD_PIPELINE_RUN_ID: str(run) if run is not None else None,
            cicd.CICD_PIPELINE_TASK_NAME: entry.get("name"),
        }
        attributes = {
            **task, cicd.CICD_PIPELINE_TASK_RUN_ID: str(job),
            cicd.CICD_PIPELINE_TASK_RUN_URL_FULL: entry.get("url") or None,
            cicd.CICD_PIPELINE_TASK_RUN_RESULT: result, **_failure(result, entry.get("conclusion")),
            cicd.CICD_WORKER_NAME: entry.get("runner") or None,
            cicd.CICD_WORKER_ID: str(entry["runner_id"]) if entry.get("runner_id") is not None else None,
            RUNNER_GROUP: entry.get("group") or None, JOB_LABELS: entry.get("labels") or None,
            RUN_ATTEMPT: attempt, **_repository(entry),
        }  # fmt: skip
        spans = [
            self._span(
                entry.get("name") or "job", context, parent=parent, kind=SpanKind.INTERNAL,
                attributes=attributes, status=_status(result), start_time=begin, end_time=end,
            )
        ]  # fmt: skip
        if started is not None and created is not None:
            pending = {
                **task, cicd.CICD_PIPELINE_RUN_STATE: cicd.CicdPipelineRunStateValues.PENDING.value,
                JOB_LABELS: entry.get("labels") or None, RUNNER_GROUP: entry.get("group") or None,
            }  # fmt: skip
            spans.append(
                self._span(
                    cicd.CicdPipelineRunStateValues.PENDING.value,
                    _context(trace, ids.wait_span_id(job, attempt)), parent=context,
                    kind=SpanKind.INTERNAL, attributes=pending, start_time=begin,
                    end_time=max(begin, _nanos(started, None)),
                )
            )  # fmt: skip
        spans.extend(self._steps(entry, trace, context))
        return spans

    def _steps(self, entry: dict[str, Any], trace: int, job: SpanContext) -> list[ReadableSpan]:
        spans = []
        url = entry.get("url") or ""
        for number, name, conclusion, started, completed in entry.get("steps", ()):
            if started is None:
                continue  # a step that never ran (skipped before it began) has no time to show
            result = result_of(conclusion)
            attributes = {
                cicd.CICD_PIPELINE_TASK_NAME: name, cicd.CICD_PIPELINE_TASK_RUN_ID: f"{entry['id']}.{number}",
                cicd.CICD_PIPELINE_TASK_RUN_URL_FULL: f"{url}#step:{number}:1" if url else None,
                cicd.CICD_PIPELINE_TASK_RUN_RESULT: result, **_failure(result, conclusion),
            }  # fmt: skip
            begin = _nanos(started, None)
            spans.append(
                self._span(
                    name or "step", _context(trace, ids.step_span_id(entry["id"], entry["attempt"], number)),
                    parent=job, kind=SpanKind.INTERNAL, attributes=attributes, status=_status(result),
                    start_time=begin, end_time=max(begin, _nanos(completed, None)),
                )
            )  # fmt: skip
        return spans
