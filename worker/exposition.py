"""The worker's ``/metrics``: its own registry, then the families read from Redis at scrape time.

The aggregates, the in-flight gauges and the queue depth are read from Redis, so every worker
replica exposes the same values, and a restarted worker the same totals. They are written as text
directly (:mod:`worker.textformat`): at 100,000 series, going through prometheus_client's sample
objects took seconds. If Redis cannot be read, only ``..._redis_up 0`` is exposed for them
(Prometheus then has a gap instead of a false zero).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import NamedTuple

from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError
from rq import Queue

from shared.settings import CostSettings
from worker.combine import claimed_key
from worker.ledger import SEPARATOR, InflightEntry, Ledger
from worker.metrics import FAMILIES, Family
from worker.textformat import header, label_text, number, sample

JOB_GAUGES = {"queued": "jobs_queued", "waiting": "jobs_waiting", "in_progress": "jobs_in_progress"}
RUN_GAUGES = {"queued": "workflow_runs_queued", "in_progress": "workflow_runs_in_progress"}
GAUGE_DOCS = {
    "jobs_queued": "Jobs queued for a runner now.",
    "jobs_waiting": "Jobs waiting for an approval (environment protection) now.",
    "jobs_in_progress": "Jobs running now.",
    "workflow_runs_queued": "Workflow runs requested and not started now.",
    "workflow_runs_in_progress": "Workflow runs in progress now.",
}
OLDEST_DOCS = {
    "queued": "Age in seconds of the oldest job queued now, by runs_on.",
    "in_progress": "Age in seconds of the oldest job running now, by runs_on.",
}
SEP = SEPARATOR.encode()


class Block(NamedTuple):
    """One metric family's text: its HELP and TYPE are written per format."""

    name: str
    doc: str
    kind: str
    lines: list[str]


EOF = b"# EOF\n"


class Exposition:
    def __init__(
        self,
        registry: CollectorRegistry,
        ledger: Ledger,
        queue: Queue,
        *,
        prefix: str,
        cost: CostSettings,
        inflight_repository: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._ledger = ledger
        self._queue = queue
        self._prefix = prefix
        self._cost = cost
        self._inflight_repository = inflight_repository
        self._clock = clock

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The body and its content type for a scraper's ``Accept`` header (OpenMetrics if it asks)."""
        encoder, content_type = choose_encoder(accept)
        openmetrics = content_type.startswith("application/openmetrics-text")
        local: bytes = encoder(self._registry)
        if openmetrics:
            local = local.removesuffix(EOF)
        text = "".join(
            header(block.name, block.doc, block.kind, openmetrics) + "".join(block.lines)
            for block in self.redis_blocks()
        )
        body = local + text.encode()
        return (body + EOF if openmetrics else body), content_type

    def redis_blocks(self) -> list[Block]:
        up = Block(
            f"{self._prefix}redis_up", "1 when this scrape could read the state from Redis.", "gauge", []
        )
        try:
            fields = self._ledger.read_fields()
            inflight = self._ledger.read_inflight()
            queue_counts = {
                "queued": self._queue.count,
                "dequeued": self._queue.connection.llen(self._queue.intermediate_queue_key),
                "started": self._queue.started_job_registry.count,
                "failed": self._queue.failed_job_registry.count,
                "claimed": self._queue.connection.zcard(claimed_key(self._queue.name)),
            }
        except RedisError as exc:
            logger.warning("scrape could not read Redis: {}", exc)
            up.lines.append(sample(up.name, "", "0.0"))
            return [up]
        up.lines.append(sample(up.name, "", "1.0"))
        blocks = [up]
        blocks += [self._family(family, fields.get(family.name, {})) for family in FAMILIES]
        blocks += self._inflight(inflight)
        jobs = Block(
            f"{self._prefix}queue_jobs",
            "RQ jobs (each one or more deliveries) by state: waiting in the queue, taken by a worker,"
            " started, failed, claimed by a worker with the job it runs.",
            "gauge",
            [],
        )
        for state, count in queue_counts.items():
            jobs.lines.append(sample(jobs.name, label_text(("state",), (state,)), number(count)))
        rates = Block(
            f"{self._prefix}cost_rate_usd_per_minute",
            "The per-minute rate used for each runner class, and the date it applies from.",
            "gauge",
            [],
        )
        for runner_class, rate in sorted(
            {**self._cost.rates, "self_hosted": self._cost.self_hosted_rate}.items()
        ):
            labels = label_text(("runner_class", "effective_date"), (runner_class, self._cost.effective_date))
            rates.lines.append(sample(rates.name, labels, number(rate)))
        return [*blocks, jobs, rates]

    def _family(self, family: Family, fields: dict[bytes, bytes]) -> Block:
        name = self._prefix + family.name
        block = Block(name, family.doc, family.kind, [])
        if family.kind != "histogram":
            # one field per series: "<labels>\x1fv" (a latest-value gauge also keeps "<labels>\x1fat")
            for field, value in fields.items():
                stored, _, suffix = field.rpartition(SEP)
                if suffix == b"v":
                    block.lines.append(sample(name, stored.decode(), value.decode()))
            block.lines.sort()
            return block
        series: dict[bytes, dict[bytes, bytes]] = defaultdict(dict)
        for field, value in fields.items():
            stored, _, suffix = field.rpartition(SEP)
            series[stored][suffix] = value
        les = [repr(float(bound)) for bound in self._ledger.policy.buckets_of(family.name)]
        bounds = [(le, le.encode()) for le in les]  # the label text, and the stored field
        for stored, values in sorted(series.items()):
            labels = stored.decode()
            comma = "," if labels else ""
            cumulative = 0.0
            for text, field in bounds:
                cumulative += float(values.get(field, 0))
                block.lines.append(f'{name}_bucket{{{labels}{comma}le="{text}"}} {number(cumulative)}\n')
            count = values.get(b"count", b"0").decode()
            block.lines.append(f'{name}_bucket{{{labels}{comma}le="+Inf"}} {count}\n')
            block.lines.append(sample(f"{name}_count", labels, count))
            block.lines.append(sample(f"{name}_sum", labels, values.get(b"sum", b"0").decode()))
        return block

    def _inflight(self, entries: list[InflightEntry]) -> list[Block]:
        now = self._clock()
        job_labels = ("runs_on", "runner_group") + (("repository",) if self._inflight_repository else ())
        run_labels = ("repository",) if self._inflight_repository else ()
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
        blocks = []
        for gauge_name in (*JOB_GAUGES.values(), *RUN_GAUGES.values()):
            names = job_labels if gauge_name.startswith("jobs_") else run_labels
            block = Block(self._prefix + gauge_name, GAUGE_DOCS[gauge_name], "gauge", [])
            for values, count in sorted(counts[gauge_name].items()):
                block.lines.append(sample(block.name, label_text(names, values), number(count)))
            blocks.append(block)
        for phase, doc in OLDEST_DOCS.items():
            block = Block(f"{self._prefix}oldest_{phase}_job_age_seconds", doc, "gauge", [])
            for runs_on, since in sorted(oldest[phase].items()):
                age = number(max(0.0, now - since))
                block.lines.append(sample(block.name, label_text(("runs_on",), (runs_on,)), age))
            blocks.append(block)
        return blocks
