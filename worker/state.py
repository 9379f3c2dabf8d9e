"""How one delivery moves the state of its job attempt or run attempt, and which metrics move.

:class:`Transitions` works on the state as stored in Redis (a hash of strings) without any I/O: it
changes the states it is given in place and adds the metric movements to an :class:`Effects`, so
it can be tested and reasoned about apart from Redis (the ledger hands it fresh copies each time it
decides a batch). The rules, whatever order deliveries arrive in:

- phases rank ``queued``/``waiting`` < ``in_progress`` < ``completed``; a delivery of a lower
  rank than the state changes nothing, and ``completed`` is terminal;
- per job attempt, ``job_run_total``, its duration and its cost move once, at the first
  ``completed``; the queue time once, from the first delivery with a real ``started_at``
  (``in_progress``, or ``completed`` of a job that ran on a runner) — never from ``queued``;
- per run attempt, ``workflow_run_total`` and its duration move once, at the first ``completed``;
  its queue time once, when both the run's start reference and a job start are known and the run
  has completed, from the earliest job start seen by then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared import keys
from worker import busy_runners, plausible, trace_entries
from worker.codec import InflightGroup, JobGroup, RunGroup
from worker.cost import NO_RUNNER, CostModel
from worker.labels import LabelMaker, bound_all, bounded
from worker.metrics import STEP_FAMILIES, LabelPolicy, Update
from worker.payloads import JobEvent, RunEvent
from worker.plausible import Limits
from worker.trace_entries import TraceEntries

State = dict[str, str]
JOB_RANK = {"queued": 1, "waiting": 1, "in_progress": 2, "completed": 3}
RUN_RANK = {"queued": 1, "in_progress": 2, "completed": 3}
INFLIGHT_JOB_PHASES = ("queued", "waiting", "in_progress")
INFLIGHT_RUN_PHASES = ("queued", "in_progress")
INFLIGHT_PHASES = {"job": INFLIGHT_JOB_PHASES, "run": INFLIGHT_RUN_PHASES, "runner": (busy_runners.BUSY,)}
YES = "1"
# kept in a job's or run's state while it is in flight, for the in-flight page and API
SHOWN_JOB_FIELDS = ("workflow", "job", "run_id", "html_url")
SHOWN_RUN_FIELDS = ("head_branch", "html_url")


SUCCEEDED = ("success", "skipped", "neutral")


def failed_job(
    values: dict[str, str], event: JobEvent, started: float | None, completed: float | None
) -> str:
    """A completed job that did not succeed, as the recent-failures list keeps it (JSON)."""
    took = seconds_between(started, completed)
    return json.dumps(
        {
            "repository": values["repository"], "workflow": values["workflow"], "job": values["job"],
            "run_id": event.run_id, "run_attempt": event.run_attempt, "job_id": event.job_id,
            "runs_on": values["runs_on"], "runner_group": values["runner_group"],
            "conclusion": values["conclusion"], "completed_at": completed, "duration_seconds": took,
            "html_url": event.html_url,
        },
        separators=(",", ":"),
    )  # fmt: skip


def job_exemplar(event: JobEvent, span: int | None = None) -> str:
    """The exemplar labels of a job's observations (label text: numbers need no escaping), with the
    trace and ``span`` id when traces are on (OpenMetrics allows 128 characters: about 100 here)."""
    run = f'run_id="{event.run_id}",' if event.run_id is not None else ""
    text = f'{run}job_id="{event.job_id}"'
    if span is None:
        return text
    trace = trace_entries.job_trace_id(event.run_id, event.job_id, event.run_attempt)
    return f'{text},trace_id="{trace_entries.trace_hex(trace)}",span_id="{trace_entries.span_hex(span)}"'


def run_exemplar(event: RunEvent, traced: bool = False) -> str:
    text = f'run_id="{event.run_id}"'
    if not traced:
        return text
    trace = trace_entries.trace_hex(trace_entries.trace_id(event.run_id, event.run_attempt))
    span = trace_entries.span_hex(trace_entries.run_span_id(event.run_id, event.run_attempt))
    return f'{text},trace_id="{trace}",span_id="{span}"'


def epoch(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def seconds_between(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, end - start)


def number(state: Mapping[str, str], key: str) -> float | None:
    value = state.get(key)
    return float(value) if value else None


@dataclass
class Effects:
    updates: list[Update] = field(default_factory=list)
    cut: list[str] = field(default_factory=list)  # label names whose values were cut (worker.labels)
    failed: list[str] = field(default_factory=list)  # completed jobs that did not succeed, as JSON
    # the group each attempt that entered an in-flight phase is counted under (the ledger files it)
    groups: dict[str, InflightGroup] = field(default_factory=dict)
    traces: list[bytes] = field(default_factory=list)  # outbox entries of completed jobs and runs


SETTLED_RUN_DROPS = ("labels", "reference", "first_job_started")  # not needed once queue_observed


class Transitions:
    """The rules of both kinds: a job's delivery may move its run's state too (its first start)."""

    def __init__(
        self, policy: LabelPolicy, labels: LabelMaker, cost: CostModel, traces: TraceEntries | None = None
    ) -> None:
        self._runs = RunTransitions(policy, labels, traces)
        self._jobs = JobTransitions(policy, labels, cost, self._runs, traces)
        self._runners = busy_runners.RunnerTransitions(policy, labels.limit)

    def job(
        self,
        state: State,
        run: State | None,
        event: JobEvent,
        received_at: float,
        out: Effects,
        *,
        runner: tuple[str, State] | None = None,
    ) -> None:
        """Apply ``event`` to ``state`` (and the run's ``run`` state, its self-hosted runner's
        ``runner``: key and state) in place, adding metric updates."""
        self._jobs.apply(state, run, event, received_at, out)
        if runner is not None:
            self._runners.apply(*runner, event, out.groups, out.updates)

    def run(self, state: State, event: RunEvent, received_at: float, out: Effects) -> None:
        """Apply ``event`` to the run attempt's ``state`` in place, adding metric updates."""
        self._runs.apply(state, event, received_at, out)


class JobTransitions:
    def __init__(
        self,
        policy: LabelPolicy,
        labels: LabelMaker,
        cost: CostModel,
        runs: RunTransitions,
        traces: TraceEntries | None,
    ) -> None:
        self._policy = policy
        self._labels = labels
        self._cost = cost
        self._runs = runs
        self._traces = traces
        self._steps = policy.settings.step_metrics

    def apply(
        self, state: State, run: State | None, event: JobEvent, received_at: float, out: Effects
    ) -> None:
        """Apply ``event`` to ``state`` (and the run's ``run`` state) in place, adding metric updates."""
        phase = event.action  # the job's status field is not trusted (hand-edited payloads disagree)
        if state.get("phase") == "completed" or phase not in JOB_RANK:
            return
        values, cut = self._labels.job(event)
        out.cut += cut
        created, started, completed = (
            epoch(event.created_at),
            epoch(event.started_at),
            epoch(event.completed_at),
        )
        really_started = started is not None and (phase == "in_progress" or event.ran_on_runner)
        if really_started and phase in ("in_progress", "completed") and not state.get("queue_observed"):
            waited = seconds_between(created, started)
            if waited is not None:
                out.updates.append(
                    self._policy.update(
                        "job_queue_duration_seconds",
                        values,
                        "observe",
                        waited,
                        at=started or 0.0,
                        exemplar=job_exemplar(event, self._span(trace_entries.wait_span_id, event)),
                    )
                )
                state["queue_observed"] = YES
        if really_started and run is not None and started is not None:
            self._runs.job_started(run, started, out)

        current = JOB_RANK.get(state.get("phase", ""), 0)
        if JOB_RANK[phase] < current or phase == state.get("phase"):
            return
        state["phase"] = phase
        if phase == "completed":
            self._completed(values, event, started, completed, out)
            for field_name in ("inflight", "member", "score", *SHOWN_JOB_FIELDS):
                state.pop(field_name, None)
            return
        score = started if phase == "in_progress" and started is not None else (created or received_at)
        state["inflight"] = phase
        state["score"] = repr(score)
        attempt = keys.job_attempt(event.job_id, event.run_attempt)
        out.groups[attempt] = JobGroup(values["runs_on"], values["runner_group"], values["repository"])
        state.update(  # for the in-flight page and API (worker.api), while the job is in flight
            workflow=values["workflow"], job=values["job"], run_id=str(event.run_id or ""),
            html_url=event.html_url,
        )  # fmt: skip

    def _span(self, span_id: Callable[[int, int], int], event: JobEvent) -> int | None:
        """A span id of the job for its exemplars, when traces are on."""
        return span_id(event.job_id, event.run_attempt) if self._traces is not None else None

    def _completed(
        self,
        values: dict[str, str],
        event: JobEvent,
        started: float | None,
        completed: float | None,
        out: Effects,
    ) -> None:
        update = self._policy.update
        out.updates.append(update("job_run_total", values, "inc", 1))
        if self._traces is not None:
            out.traces.append(self._traces.job(event))
        if (event.conclusion or "unknown") not in SUCCEEDED:
            out.failed.append(failed_job(values, event, started, completed))
        if not event.ran_on_runner or values["runner_class"] == NO_RUNNER:
            return
        duration = seconds_between(started, completed)
        if duration is None:
            return
        if busy_runners.runner_key(event) is not None:
            out.updates.append(update("runner_busy_seconds_total", values, "inc", duration))
        out.updates.append(
            update(
                "job_run_duration_seconds",
                values,
                "observe",
                duration,
                at=completed or 0.0,
                exemplar=job_exemplar(event, self._span(trace_entries.job_span_id, event)),
            )
        )
        cost = self._cost.job_cost(values["runner_class"], duration, event.public)
        out.updates.append(update("job_cost", values, "set", cost.usd, at=completed or 0.0))
        out.updates.append(update("job_cost_usd_total", values, "inc", cost.usd))
        out.updates.append(update("job_billable_minutes_total", values, "inc", cost.minutes))
        if self._steps:
            for step in event.steps:
                step_values = {**values, "step": step.name, "conclusion": step.conclusion or "unknown"}
                out.cut += bound_all(step_values, self._labels.limit)
                out.updates.append(update(STEP_FAMILIES[0], step_values, "inc", 1))
                took = seconds_between(epoch(step.started_at), epoch(step.completed_at))
                if took is not None:
                    out.updates.append(update(STEP_FAMILIES[1], step_values, "observe", took))


class RunTransitions:
    def __init__(self, policy: LabelPolicy, labels: LabelMaker, traces: TraceEntries | None) -> None:
        self._policy = policy
        self._labels = labels
        self._traces = traces

    def job_started(self, run: State, started: float, out: Effects) -> None:
        """One of the run's jobs started at ``started``: the earliest start is the end of its wait."""
        if run.get("queue_observed"):
            return  # the run's queue time is counted: nothing more to learn
        first = number(run, "first_job_started")
        if first is None or started < first:
            run["first_job_started"] = repr(started)
        if run.get("phase") == "completed":
            self._queue_time(run, out)

    def apply(self, state: State, event: RunEvent, received_at: float, out: Effects) -> None:
        phase = {"requested": "queued"}.get(event.action, event.action)
        if event.action == "requested" and event.status == "completed":
            phase = "completed"  # a run that ended at once, e.g. conclusion action_required
        if state.get("phase") == "completed" or phase not in RUN_RANK:
            return
        values, cut = self._labels.run(event)
        out.cut += cut
        reference = event.run_started_at if event.run_attempt > 1 else event.created_at
        reference = reference or event.created_at or event.run_started_at
        if reference is not None and "reference" not in state:
            state["reference"] = repr(reference.timestamp())
        state["labels"] = json.dumps(values, separators=(",", ":"), sort_keys=True)

        current = RUN_RANK.get(state.get("phase", ""), 0)
        if RUN_RANK[phase] < current or phase == state.get("phase"):
            return
        state["phase"] = phase
        if phase == "completed":
            out.updates.append(self._policy.update("workflow_run_total", values, "inc", 1))
            if self._traces is not None:
                out.traces.append(self._traces.run(event))
            started, updated = epoch(event.run_started_at or event.created_at), epoch(event.updated_at)
            duration = seconds_between(started, updated)
            if duration is not None:
                out.updates.append(
                    self._policy.update(
                        "workflow_run_duration_seconds",
                        values,
                        "observe",
                        duration,
                        at=updated or 0.0,
                        exemplar=run_exemplar(event, self._traces is not None),
                    )
                )
            for field_name in ("inflight", "member", "score", *SHOWN_RUN_FIELDS):
                state.pop(field_name, None)
            self._queue_time(state, out)
            return
        score = epoch(event.run_started_at) if phase == "in_progress" else epoch(event.created_at)
        state["inflight"] = phase
        state["score"] = repr(score if score is not None else received_at)
        out.groups[keys.run_attempt(event.run_id, event.run_attempt)] = RunGroup(values["repository"])
        state.update(head_branch=bounded(event.branch, self._labels.limit), html_url=event.html_url)

    def _queue_time(self, run: State, out: Effects) -> None:
        """Once the run completed and a job started: its queue time, once. A completed run's state
        then keeps only what late deliveries need (its phase, that this is done)."""
        if run.get("queue_observed"):
            return
        waited = seconds_between(number(run, "reference"), number(run, "first_job_started"))
        if waited is None or "labels" not in run:
            return
        if plausible.run_queue_time(waited, Limits.of(self._policy.settings)):
            values = json.loads(run["labels"])
            out.updates.append(
                self._policy.update("workflow_run_queue_duration_seconds", values, "observe", waited)
            )
        run["queue_observed"] = YES
        for field_name in SETTLED_RUN_DROPS:
            run.pop(field_name, None)
