"""Every metric family the worker exposes, defined here: name, type, help, labels.

Three kinds of figures:

- **Aggregates** (runs, jobs, durations, queue times, cost, steps, expiries, folded series) live in
  Redis, moved in the same atomic step as the job/run state they follow, and read at scrape time by
  :class:`worker.exposition.Exposition`. Every worker replica shows the same numbers and a
  restarted worker shows the same totals: scrape one replica, or aggregate replicas with ``max``,
  never ``sum``.
- **Scrape-time families** (:data:`SCRAPE_FAMILIES`: jobs queued/waiting/in progress, runs queued/in
  progress, oldest ages, batches by state, whether Redis could be read, the cost rates) are computed
  by the exposition when scraped, from the in-flight sets in Redis, RQ's counts and the settings.
- **Process-local** figures (this process's processed deliveries, errors, lag) are ordinary
  prometheus_client metrics in :class:`LocalMetrics`; sum them across replicas.

Sample exposition (default prefix and labels)::

    github_actions_job_run_total{repository="o/r",workflow="CI",job="test",conclusion="success",
                                 runner_group="GitHub Actions",runs_on="ubuntu-latest",
                                 attempt="first"} 1.0
    github_actions_job_queue_duration_seconds_bucket{repository="o/r",workflow="CI",job="test",
                                 runner_group="GitHub Actions",runs_on="ubuntu-latest",le="10.0"} 1.0
    github_actions_job_cost_usd_total{repository="o/r",workflow="CI",runner_class="linux"} 0.012
    github_actions_jobs_in_progress{runs_on="ubuntu-latest",runner_group="GitHub Actions"} 3.0
    github_actions_webhook_events_processed_total{event="workflow_job",action="completed",
                                                  effect="changed"} 3.0
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Histogram

from shared import keys
from shared.settings import MetricsSettings

Kind = Literal["counter", "histogram", "gauge"]
OVERFLOW = "__overflow__"

RUN_FIELDS = ("repository", "owner", "workflow", "event", "branch", "conclusion", "attempt")
JOB_FIELDS = (
    "repository", "owner", "workflow", "job", "branch", "conclusion", "runner_group", "runs_on",
    "runner_class", "attempt",
)  # fmt: skip
QUEUE_FIELDS = tuple(f for f in JOB_FIELDS if f != "conclusion")
RUN_QUEUE_FIELDS = tuple(f for f in RUN_FIELDS if f != "conclusion")
STEP_FIELDS = (
    "repository",
    "owner",
    "workflow",
    "job",
    "branch",
    "runner_group",
    "runs_on",
    "step",
    "conclusion",
)


@dataclass(frozen=True)
class Family:
    name: str  # without the prefix; counters end in _total
    kind: Kind
    doc: str
    available: tuple[str, ...]
    default: tuple[str, ...]
    buckets: Literal["duration", "queue", ""] = ""
    configurable: bool = True


FAMILIES: tuple[Family, ...] = (
    Family("workflow_run_total", "counter", "Workflow runs completed, counted once per run attempt.",
           RUN_FIELDS, ("repository", "workflow", "event", "conclusion", "attempt")),
    Family("workflow_run_duration_seconds", "histogram",
           "Workflow run duration: updated_at - run_started_at (created_at on old payloads),"
           " once per attempt.",
           RUN_FIELDS, ("repository", "workflow", "event", "conclusion"), "duration"),
    Family("workflow_run_queue_duration_seconds", "histogram",
           "From the run's created_at (run_started_at for a re-run) to its first job's start,"
           " once per attempt.",
           RUN_QUEUE_FIELDS, ("repository", "workflow", "event"), "queue"),
    Family("job_run_total", "counter", "Jobs completed, counted once per job attempt.",
           JOB_FIELDS, ("repository", "workflow", "job", "conclusion", "runner_group", "runs_on", "attempt")),
    Family("job_run_duration_seconds", "histogram",
           "Job duration on its runner: completed_at - started_at, for jobs that ran on a runner.",
           JOB_FIELDS, ("repository", "workflow", "job", "conclusion", "runner_group", "runs_on"),
           "duration"),
    Family("job_queue_duration_seconds", "histogram",
           "Time a job waited for a runner: started_at - created_at (never negative),"
           " once per job attempt.",
           QUEUE_FIELDS, ("repository", "workflow", "job", "runner_group", "runs_on"), "queue"),
    Family("job_cost", "gauge",
           "List-price cost (USD) of the most recently completed job of this label set.",
           JOB_FIELDS, ("repository", "workflow", "job", "runner_class")),
    Family("job_cost_usd_total", "counter",
           "List-price cost (USD) of completed jobs: billable minutes times the runner class's rate.",
           JOB_FIELDS, ("repository", "workflow", "runner_class")),
    Family("job_billable_minutes_total", "counter",
           "Billable minutes of completed jobs, each rounded up to the whole minute (0 when free).",
           JOB_FIELDS, ("repository", "workflow", "runner_class")),
    Family("job_step_total", "counter", "Steps of completed jobs by conclusion (metrics.step_metrics).",
           STEP_FIELDS, ("repository", "workflow", "job", "step", "conclusion")),
    Family("job_step_duration_seconds", "histogram",
           "Step durations of completed jobs (metrics.step_metrics).",
           STEP_FIELDS, ("repository", "workflow", "job", "step", "conclusion"), "duration"),
    Family("state_expired_total", "counter",
           "Jobs and runs dropped from the in-flight state after their TTL without completing, by phase.",
           ("kind", "phase"), ("kind", "phase"), configurable=False),
    Family("webhook_deliveries_processed_total", "counter",
           "Deliveries applied, exactly once each, by result: changed, unchanged (a repeat or older than"
           " the state) or invalid (unusable payload). Moved with the state in one transaction.",
           ("event", "result"), ("event", "result"), configurable=False),
    Family("label_values_truncated_total", "counter",
           "Label values cut to metrics.max_label_value_bytes, by label name: counted per delivery"
           " that changed state and carried one.",
           ("label",), ("label",), configurable=False),
    Family("runner_busy_seconds_total", "counter",
           "Seconds self-hosted runners spent on jobs (completed_at - started_at), counted at each job's"
           " completion, from the webhooks.",
           ("runner_group", "owner"), ("runner_group",)),
    Family("runner_anomalies_total", "counter",
           "Self-hosted runners seen doing what a runner cannot, from the webhooks: overlap (two jobs at"
           " once, counted at the second completion), superseded (a job that never completed while its"
           " runner took later ones).",
           ("kind",), ("kind",), configurable=False),
    Family("series_folded_total", "counter",
           "Updates that went to the __overflow__ label set because the family reached its series limit.",
           ("family",), ("family",), configurable=False),
)  # fmt: skip
BY_NAME = {family.name: family for family in FAMILIES}


@dataclass(frozen=True)
class ScrapeFamily:
    """A family computed when scraped; its labels are chosen by the exposition (some by settings)."""

    name: str
    kind: Kind
    doc: str


JOBS_QUEUED = ScrapeFamily("jobs_queued", "gauge", "Jobs queued for a runner now.")
JOBS_WAITING = ScrapeFamily(
    "jobs_waiting", "gauge", "Jobs waiting for an approval (environment protection) now."
)
JOBS_IN_PROGRESS = ScrapeFamily("jobs_in_progress", "gauge", "Jobs running now.")
RUNS_QUEUED = ScrapeFamily("workflow_runs_queued", "gauge", "Workflow runs requested and not started now.")
RUNS_IN_PROGRESS = ScrapeFamily("workflow_runs_in_progress", "gauge", "Workflow runs in progress now.")
OLDEST_QUEUED = ScrapeFamily(
    "oldest_queued_job_age_seconds", "gauge", "Age in seconds of the oldest job queued now, by runs_on."
)
OLDEST_IN_PROGRESS = ScrapeFamily(
    "oldest_in_progress_job_age_seconds", "gauge", "Age in seconds of the oldest job running now, by runs_on."
)
QUEUE_BATCHES = ScrapeFamily(
    "queue_batches",
    "gauge",
    "Batches (each one or more deliveries) by state: waiting in the queue, taken by a worker,"
    " started, failed, claimed by a worker with the job it runs.",
)
REDIS_UP = ScrapeFamily("redis_up", "gauge", "1 when this scrape could read the state from Redis.")
COST_RATE = ScrapeFamily(
    "cost_rate_usd_per_minute",
    "gauge",
    "The per-minute rate used for each runner class, and the date it applies from.",
)
SCRAPE_TRUNCATED = ScrapeFamily(
    "scrape_truncated",
    "gauge",
    "1 when this scrape reached worker.max_scrape_bytes and left the remaining series out.",
)
RECONCILE_LAST_SUCCESS = ScrapeFamily(
    "reconcile_last_success_timestamp_seconds",
    "gauge",
    "When the last reconciliation pass that read the hook's whole window ended (github.hooks).",
)
GITHUB_RATE_LIMIT = ScrapeFamily(
    "github_rate_limit_remaining",
    "gauge",
    "Requests GitHub's REST API still allowed the reconciler, as its last answer said.",
)
RUNNERS_BUSY = ScrapeFamily(
    "runners_busy",
    "gauge",
    "Self-hosted runners busy with a job now, from the webhooks alone: distinct runners, by the busy"
    " job's runner group.",
)
RUNNERS = ScrapeFamily(
    "runners",
    "gauge",
    "Runners of github.runners by state (idle, busy, offline), runner group and OS, as the last poll"
    " found them.",
)
RUNNER_LABEL_SETS = ScrapeFamily(
    "runner_label_sets", "gauge", "Polled runners per label set (sorted, case folded, joined by commas)."
)
JOBS_QUEUED_UNMATCHED = ScrapeFamily(
    "jobs_queued_unmatched",
    "gauge",
    "Queued jobs no online polled runner could take (no runner has every label they ask for), by runs_on.",
)
JOBS_QUEUED_SATURATED = ScrapeFamily(
    "jobs_queued_saturated",
    "gauge",
    "Queued jobs whose matching online runners are all busy, by runs_on.",
)
RUNNERS_POLLED = ScrapeFamily(
    "runners_polled_timestamp_seconds",
    "gauge",
    "When the runners of each scope of github.runners were last read whole.",
)
RUNNER_FAMILIES = (RUNNERS, RUNNER_LABEL_SETS, JOBS_QUEUED_UNMATCHED, JOBS_QUEUED_SATURATED, RUNNERS_POLLED)
# in-flight gauges by phase
JOB_PHASE_GAUGES = {"queued": JOBS_QUEUED, "waiting": JOBS_WAITING, "in_progress": JOBS_IN_PROGRESS}
RUN_PHASE_GAUGES = {"queued": RUNS_QUEUED, "in_progress": RUNS_IN_PROGRESS}
RUNNER_PHASE_GAUGES = {"busy": RUNNERS_BUSY}
PHASE_GAUGES = {"job": JOB_PHASE_GAUGES, "run": RUN_PHASE_GAUGES, "runner": RUNNER_PHASE_GAUGES}
OLDEST_BY_PHASE = {"queued": OLDEST_QUEUED, "in_progress": OLDEST_IN_PROGRESS}
SCRAPE_FAMILIES = (
    REDIS_UP, *JOB_PHASE_GAUGES.values(), *RUN_PHASE_GAUGES.values(), *OLDEST_BY_PHASE.values(),
    RUNNERS_BUSY, *RUNNER_FAMILIES,
    QUEUE_BATCHES, COST_RATE, RECONCILE_LAST_SUCCESS, GITHUB_RATE_LIMIT, SCRAPE_TRUNCATED,
)  # fmt: skip
STEP_FAMILIES = ("job_step_total", "job_step_duration_seconds")


def label_problems(configured: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Configuration errors in ``metrics.labels``, each naming the option."""
    problems = []
    for name, labels in configured.items():
        family = BY_NAME.get(name)
        if family is None or not family.configurable:
            known = ", ".join(f.name for f in FAMILIES if f.configurable)
            problems.append(f"metrics.labels.{name}: unknown family; known: {known}")
            continue
        unknown = [label for label in labels if label not in family.available]
        if unknown:
            problems.append(
                f"metrics.labels.{name}: unknown labels {unknown}; available: {', '.join(family.available)}"
            )
        if len(set(labels)) != len(labels):
            problems.append(f"metrics.labels.{name}: a label is named twice")
    return problems


@dataclass(frozen=True)
class Update:
    """One movement of an aggregate: ``inc`` a counter, ``observe`` a histogram, ``set`` a gauge.

    A gauge set carries ``at``, the time of the fact it reports: the newest fact wins whatever the
    order of processing, so replicas and replays agree. So does an observation's ``exemplar`` (the
    label text of the job or run observed), the exemplar of its bucket.
    """

    family: str
    labels: tuple[str, ...]  # values, in the order of the family's configured label names
    op: Literal["inc", "observe", "set"]
    value: float
    at: float = 0.0
    exemplar: str = ""


class LabelPolicy:
    """Which labels each family carries (``metrics.labels`` over the defaults) and its buckets."""

    def __init__(self, settings: MetricsSettings) -> None:
        self.settings = settings
        self.names = {f.name: settings.labels.get(f.name, f.default) for f in FAMILIES}
        self.buckets = {
            "duration": settings.duration_buckets,
            "queue": settings.queue_buckets,
            "": (),
        }

    def update(
        self,
        family: str,
        values: Mapping[str, str],
        op: Literal["inc", "observe", "set"],
        value: float,
        *,
        at: float = 0.0,
        exemplar: str = "",
    ) -> Update:
        labels = tuple([values.get(name, "") for name in self.names[family]])  # a list: faster here
        return Update(family, labels, op, value, at, exemplar if self.settings.exemplars else "")

    def buckets_of(self, family: str) -> tuple[float, ...]:
        return self.buckets[BY_NAME[family].buckets]

    def aggregate_key(self, family: str) -> str:
        """The hash holding the family's series (its label names are part of the key)."""
        return keys.aggregate(family, self.names[family])

    def labelsets_key(self, family: str) -> str:
        """The set of the family's label sets, for the cardinality guard."""
        return keys.labelsets(family, self.names[family])

    def inflight_labels(self, kind: str) -> tuple[str, ...]:
        """The labels of the in-flight gauges of ``kind`` (``job``, ``run``, ``runner``): fields of
        its group."""
        if kind == "runner":
            return ("runner_group",)
        repository = ("repository",) if self.settings.inflight_repository_label else ()
        return ("runs_on", "runner_group", *repository) if kind == "job" else repository


class LocalMetrics:
    """This process's own figures, on the worker's registry."""

    def __init__(self, registry: CollectorRegistry, settings: MetricsSettings) -> None:
        prefix = settings.prefix
        self.events = Counter(
            f"{prefix}webhook_events_processed",
            "Deliveries this worker processed, by event, action and effect (changed: moved state or"
            " metrics; unchanged: a repeat or an out-of-date delivery).",
            ["event", "action", "effect"],
            registry=registry,
        )
        self.errors = Counter(
            f"{prefix}webhook_processing_errors",
            "Deliveries this worker could not use, by event and reason.",
            ["event", "reason"],
            registry=registry,
        )
        self.lag = Histogram(
            f"{prefix}webhook_processing_lag_seconds",
            "Time from the receiver accepting a delivery to this worker processing it.",
            buckets=settings.lag_buckets,
            registry=registry,
        )
        self.conflicts = Counter(
            f"{prefix}worker_batch_conflicts",
            "Batches retried because another worker changed the same job or run at the same time.",
            registry=registry,
        )


class ReconcileMetrics:
    """The reconciler's figures in this process (it runs on one worker replica at a time: sum them
    across replicas)."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.passes = Counter(
            f"{prefix}reconcile_passes",
            "Reconciliation passes by result: ok (every hook read back to its start), partial (some"
            " hook could not be), failed (none could).",
            ["result"],
            registry=registry,
        )
        self.redeliveries = Counter(
            f"{prefix}reconcile_redeliveries",
            "Redeliveries requested from GitHub, by hook and reason: failed (GitHub's every attempt"
            " failed) or missing (acknowledged, yet not in Redis).",
            ["hook", "reason"],
            registry=registry,
        )
        self.unrecoverable = Counter(
            f"{prefix}reconcile_unrecoverable",
            "Deliveries never taken in that are not redelivered: too_old (past GitHub's redelivery"
            " window) or exhausted (github.max_redeliveries reached).",
            ["hook", "reason"],
            registry=registry,
        )
        self.api_errors = Counter(
            f"{prefix}github_api_errors",
            "GitHub API calls of the reconciler and the runners' poll that failed, by HTTP status (or"
            " timeout, connection, budget, invalid_runner).",
            ["status"],
            registry=registry,
        )
        for result in ("ok", "partial", "failed"):
            self.passes.labels(result)


class PollMetrics:
    """The runners' poll's figures in this process (one replica at a time polls: sum them)."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.polls = Counter(
            f"{prefix}runner_polls",
            "Polls of the runners' inventory this worker made (github.runners), by result: ok (every"
            " scope read whole), partial, failed.",
            ["result"],
            registry=registry,
        )
        for result in ("ok", "partial", "failed"):
            self.polls.labels(result)


EVENT_ACTIONS = {
    "workflow_job": ("queued", "waiting", "in_progress", "completed"),
    "workflow_run": ("requested", "in_progress", "completed"),
}


def action_label(event: str, action: str) -> str:
    return action if action in EVENT_ACTIONS.get(event, ()) else "other"
