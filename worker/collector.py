"""Scrape-time metrics read from Redis: the aggregates, the in-flight gauges, the queue depth.

Because they are read from Redis, every worker replica exposes the same values, and a restarted
worker the same totals. If Redis cannot be read, only ``..._redis_up 0`` is exposed (Prometheus
then has a gap instead of a false zero).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator

from loguru import logger
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Queue

from shared.settings import CostSettings
from worker.ledger import InflightEntry, Ledger
from worker.metrics import FAMILIES, Family

JOB_GAUGES = {"queued": "jobs_queued", "waiting": "jobs_waiting", "in_progress": "jobs_in_progress"}
RUN_GAUGES = {"queued": "workflow_runs_queued", "in_progress": "workflow_runs_in_progress"}
GAUGE_DOCS = {
    "jobs_queued": "Jobs queued for a runner now.",
    "jobs_waiting": "Jobs waiting for an approval (environment protection) now.",
    "jobs_in_progress": "Jobs running now.",
    "workflow_runs_queued": "Workflow runs requested and not started now.",
    "workflow_runs_in_progress": "Workflow runs in progress now.",
}


class RedisCollector(Collector):
    def __init__(
        self,
        ledger: Ledger,
        queue: Queue,
        prefix: str,
        cost: CostSettings,
        inflight_repository: bool,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._queue = queue
        self._prefix = prefix
        self._cost = cost
        self._inflight_repository = inflight_repository
        self._clock = clock

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            f"{self._prefix}redis_up", "1 when this scrape could read the state from Redis."
        )
        try:
            aggregates = self._ledger.read_aggregates()
            inflight = self._ledger.read_inflight()
            queue_counts = {
                "queued": self._queue.count,
                "dequeued": self._queue.connection.llen(self._queue.intermediate_queue_key),
                "started": self._queue.started_job_registry.count,
                "failed": self._queue.failed_job_registry.count,
            }
        except RedisError as exc:
            logger.warning("scrape could not read Redis: {}", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for family in FAMILIES:
            yield self._family(family, aggregates.get(family.name, {}))
        yield from self._inflight(inflight)
        jobs = GaugeMetricFamily(
            f"{self._prefix}queue_jobs",
            "RQ jobs (each one or more deliveries) by state: waiting in the queue, taken by a worker,"
            " started, failed.",
            labels=["state"],
        )
        for state, value in queue_counts.items():
            jobs.add_metric([state], value)
        yield jobs
        rates = GaugeMetricFamily(
            f"{self._prefix}cost_rate_usd_per_minute",
            "The per-minute rate used for each runner class, and the date it applies from.",
            labels=["runner_class", "effective_date"],
        )
        for runner_class, rate in sorted(self._cost.rates.items()):
            rates.add_metric([runner_class, self._cost.effective_date], rate)
        rates.add_metric(["self_hosted", self._cost.effective_date], self._cost.self_hosted_rate)
        yield rates

    def _family(self, family: Family, series: dict[str, dict[str, float]]) -> Metric:
        names = list(self._ledger.policy.names[family.name])
        name = self._prefix + family.name
        if family.kind == "counter":
            counter = CounterMetricFamily(name, family.doc, labels=names)
            for labels, values in sorted(series.items()):
                counter.add_metric(json.loads(labels), values.get("v", 0.0))
            return counter
        if family.kind == "gauge":
            gauge = GaugeMetricFamily(name, family.doc, labels=names)
            for labels, values in sorted(series.items()):
                gauge.add_metric(json.loads(labels), values.get("v", 0.0))
            return gauge
        histogram = HistogramMetricFamily(name, family.doc, labels=names)
        bounds = self._ledger.policy.buckets_of(family.name)
        for labels, values in sorted(series.items()):
            cumulative, buckets = 0.0, []
            for bound in bounds:
                cumulative += values.get(repr(float(bound)), 0.0)
                buckets.append((repr(float(bound)), cumulative))
            buckets.append(("+Inf", values.get("count", 0.0)))
            histogram.add_metric(json.loads(labels), buckets, values.get("sum", 0.0))
        return histogram

    def _inflight(self, entries: list[InflightEntry]) -> Iterator[Metric]:
        now = self._clock()
        job_labels = ["runs_on", "runner_group"] + (["repository"] if self._inflight_repository else [])
        run_labels = ["repository"] if self._inflight_repository else []
        counts: dict[str, dict[tuple[str, ...], int]] = defaultdict(lambda: defaultdict(int))
        oldest: dict[str, dict[str, float]] = {"queued": {}, "in_progress": {}}
        for entry in entries:
            if entry.kind == "job":
                runs_on, group, repository = entry.group
                values = (runs_on, group, repository)[: len(job_labels)]
                counts[JOB_GAUGES[entry.phase]][values] += 1
                if entry.phase in oldest:
                    oldest[entry.phase][runs_on] = min(
                        oldest[entry.phase].get(runs_on, entry.since), entry.since
                    )
            else:
                counts[RUN_GAUGES[entry.phase]][tuple(entry.group[: len(run_labels)])] += 1
        for gauge_name in (*JOB_GAUGES.values(), *RUN_GAUGES.values()):
            labels = job_labels if gauge_name.startswith("jobs_") else run_labels
            gauge = GaugeMetricFamily(self._prefix + gauge_name, GAUGE_DOCS[gauge_name], labels=labels)
            for values, count in sorted(counts[gauge_name].items()):
                gauge.add_metric(list(values), count)
            yield gauge
        for phase, doc in (
            ("queued", "Age in seconds of the oldest job queued now, by runs_on."),
            ("in_progress", "Age in seconds of the oldest job running now, by runs_on."),
        ):
            gauge = GaugeMetricFamily(
                f"{self._prefix}oldest_{phase}_job_age_seconds", doc, labels=["runs_on"]
            )
            for runs_on, since in sorted(oldest[phase].items()):
                gauge.add_metric([runs_on], max(0.0, now - since))
            yield gauge
