"""Every metric the worker exposes, defined in one place, behind the :class:`Recorder` interface.

The processor only calls ``Recorder`` methods with the full set of label values it knows; each
family keeps the labels configured for it (``metrics.labels``) from the catalogue below.
Sample exposition (default prefix and labels)::

    github_actions_workflow_run_total{repository="o/r",workflow="CI",event="push",
                                      conclusion="success"} 1.0
    github_actions_workflow_run_duration_seconds_bucket{...,le="60.0"} 1.0
    github_actions_job_run_total{repository="o/r",workflow="CI",job="test",conclusion="success",
                                 runner_group="GitHub Actions",runs_on="ubuntu-latest"} 1.0
    github_actions_job_run_duration_seconds_sum{...} 42.0
    github_actions_job_queue_duration_seconds_count{repository="o/r",workflow="CI",job="test",
                                                    runner_group="GitHub Actions",runs_on="ubuntu-latest"} 1.0
    github_actions_webhook_events_processed_total{event="workflow_job",action="completed"} 3.0
    github_actions_webhook_processing_errors_total{event="workflow_job",reason="invalid_json"} 1.0
    github_actions_webhook_processing_lag_seconds_bucket{le="0.1"} 4.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram

from shared.settings import MetricsSettings

RUN_LABELS = ("repository", "owner", "workflow", "event", "conclusion", "branch")
JOB_LABELS = ("repository", "owner", "workflow", "job", "conclusion", "runner_group", "runs_on", "branch")
QUEUE_LABELS = ("repository", "owner", "workflow", "job", "runner_group", "runs_on", "branch")


@dataclass(frozen=True)
class Family:
    available: tuple[str, ...]
    default: tuple[str, ...]


# Keys are the family names without prefix, as written under ``metrics.labels``.
CATALOGUE: dict[str, Family] = {
    "workflow_run_total": Family(RUN_LABELS, ("repository", "workflow", "event", "conclusion")),
    "workflow_run_duration_seconds": Family(RUN_LABELS, ("repository", "workflow", "event", "conclusion")),
    "job_run_total": Family(
        JOB_LABELS, ("repository", "workflow", "job", "conclusion", "runner_group", "runs_on")
    ),
    "job_run_duration_seconds": Family(
        JOB_LABELS, ("repository", "workflow", "job", "conclusion", "runner_group", "runs_on")
    ),
    "job_queue_duration_seconds": Family(
        QUEUE_LABELS, ("repository", "workflow", "job", "runner_group", "runs_on")
    ),
}
EVENT_ACTIONS = {
    "workflow_job": ("queued", "waiting", "in_progress", "completed"),
    "workflow_run": ("requested", "in_progress", "completed"),
}


def label_problems(configured: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Configuration errors in ``metrics.labels``, each naming the option."""
    problems = []
    for family, labels in configured.items():
        if family not in CATALOGUE:
            problems.append(f"metrics.labels.{family}: unknown family; known: {', '.join(CATALOGUE)}")
            continue
        unknown = [label for label in labels if label not in CATALOGUE[family].available]
        if unknown:
            problems.append(
                f"metrics.labels.{family}: unknown labels {unknown}; "
                f"available: {', '.join(CATALOGUE[family].available)}"
            )
        if len(set(labels)) != len(labels):
            problems.append(f"metrics.labels.{family}: a label is named twice")
    return problems


class Recorder(Protocol):
    """What the processor moves. The aggregate methods are the ones that move to Redis later."""

    def run_completed(self, labels: Mapping[str, str], duration: float | None) -> None: ...
    def job_completed(self, labels: Mapping[str, str], duration: float | None) -> None: ...
    def job_queued(self, labels: Mapping[str, str], seconds: float) -> None: ...
    def event_processed(self, event: str, action: str) -> None: ...
    def processing_error(self, event: str, reason: str) -> None: ...
    def processing_lag(self, seconds: float) -> None: ...


M = TypeVar("M", Counter, Histogram)


class _Selected(Generic[M]):
    """A metric family with its configured label subset."""

    def __init__(self, labels: tuple[str, ...], metric: M) -> None:
        self.labels = labels
        self.metric: M = metric

    def child(self, values: Mapping[str, str]) -> M:
        if not self.labels:
            return self.metric
        return self.metric.labels(*(values.get(name, "") for name in self.labels))


class WorkerMetrics:
    """The prometheus_client implementation of :class:`Recorder`, on the worker's registry."""

    def __init__(self, registry: CollectorRegistry, settings: MetricsSettings) -> None:
        prefix = settings.prefix

        def labels_of(family: str) -> tuple[str, ...]:
            return settings.labels.get(family, CATALOGUE[family].default)

        def counter(family: str, doc: str) -> _Selected[Counter]:
            labels = labels_of(family)
            name = prefix + family.removesuffix("_total")
            return _Selected(labels, Counter(name, doc, labels, registry=registry))

        def histogram(family: str, doc: str, buckets: tuple[float, ...]) -> _Selected[Histogram]:
            labels = labels_of(family)
            return _Selected(
                labels, Histogram(prefix + family, doc, labels, buckets=buckets, registry=registry)
            )

        self.run_total = counter(
            "workflow_run_total", "Workflow runs completed, counted once per run attempt."
        )
        self.run_duration = histogram(
            "workflow_run_duration_seconds",
            "Workflow run duration: updated_at - run_started_at (created_at on old payloads) at completion.",
            settings.duration_buckets,
        )
        self.job_total = counter("job_run_total", "Jobs completed, counted once per job attempt.")
        self.job_duration = histogram(
            "job_run_duration_seconds",
            "Job duration on its runner: completed_at - started_at, for jobs that ran on a runner.",
            settings.duration_buckets,
        )
        self.queue_duration = histogram(
            "job_queue_duration_seconds",
            "Time a job waited for a runner: started_at - created_at (never negative), once per job attempt.",
            settings.queue_buckets,
        )
        self.events = Counter(
            f"{prefix}webhook_events_processed",
            "Deliveries the worker processed, by event and action.",
            ["event", "action"],
            registry=registry,
        )
        self.errors = Counter(
            f"{prefix}webhook_processing_errors",
            "Deliveries the worker could not use, by event and reason.",
            ["event", "reason"],
            registry=registry,
        )
        self.lag = Histogram(
            f"{prefix}webhook_processing_lag_seconds",
            "Time from the receiver accepting a delivery to the worker processing it.",
            buckets=settings.lag_buckets,
            registry=registry,
        )

    def run_completed(self, labels: Mapping[str, str], duration: float | None) -> None:
        self.run_total.child(labels).inc()
        if duration is not None:
            self.run_duration.child(labels).observe(duration)

    def job_completed(self, labels: Mapping[str, str], duration: float | None) -> None:
        self.job_total.child(labels).inc()
        if duration is not None:
            self.job_duration.child(labels).observe(duration)

    def job_queued(self, labels: Mapping[str, str], seconds: float) -> None:
        self.queue_duration.child(labels).observe(seconds)

    def event_processed(self, event: str, action: str) -> None:
        known = EVENT_ACTIONS.get(event, ())
        self.events.labels(event, action if action in known else "other").inc()

    def processing_error(self, event: str, reason: str) -> None:
        self.errors.labels(event, reason).inc()

    def processing_lag(self, seconds: float) -> None:
        self.lag.observe(max(0.0, seconds))
