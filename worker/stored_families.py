"""The families read from Redis at scrape time, as text blocks: the aggregates, the in-flight gauges,
the runners (:mod:`worker.runner_families`), the queue depth, the cost rates and reconciliation's
status.

One thread reads Redis for the scrapes: a scrape that arrives while a read is under way waits for
that read (up to the timeout) instead of starting another, so scrapes against a slow or gone Redis
do not pile up threads or connections. If Redis cannot be read in time, only ``redis_up 0`` is
given. A series whose stored value cannot be rendered, or a family that cannot be built, is left
out and counted in ``scrape_errors_total{family}``.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

from loguru import logger
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError

from shared.rqadapter.storage import QueueBatches
from shared.settings import CostSettings
from worker import codec
from worker.codec import JobGroup
from worker.inflight import Inflight
from worker.ledger_reads import LedgerReads
from worker.metrics import (
    COST_RATE,
    FAMILIES,
    GITHUB_RATE_LIMIT,
    OLDEST_BY_PHASE,
    PHASE_GAUGES,
    QUEUE_BATCHES,
    RECONCILE_LAST_SUCCESS,
    REDIS_UP,
    Family,
    LabelPolicy,
    ScrapeFamily,
)
from worker.reconcile_store import Status
from worker.runner_families import runner_blocks
from worker.runner_inventory import Polled
from worker.textformat import histogram_lines, number, sample, value_lines


class Block(NamedTuple):
    """One metric family's text: its HELP and TYPE are written per format."""

    name: str
    doc: str
    kind: str
    lines: list[str]


class View(NamedTuple):
    """What a scrape reads from Redis."""

    fields: dict[str, dict[bytes, bytes]]
    inflight: Inflight
    queue_counts: dict[str, int]
    reconcile: Status
    runners: list[Polled]


class StoredFamilies:
    def __init__(
        self,
        registry: CollectorRegistry,
        reads: LedgerReads,
        policy: LabelPolicy,
        queue_batches: QueueBatches,
        claimed_key: str,
        *,
        prefix: str,
        cost: CostSettings,
        timeout: float = 2.0,
        reconcile_status: Callable[[], Status] = lambda: Status({}, None),
        read_inflight: Callable[[], Inflight] | None = None,
        read_runners: Callable[[], list[Polled]] = list,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._reads = reads
        self._policy = policy
        self._queue_batches = queue_batches
        self._claimed_key = claimed_key
        self._timeout = timeout
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scrape-redis")
        self._lock = threading.Lock()
        self._reading: Future[View] | None = None
        self._prefix = prefix
        self._cost = cost
        self._reconcile_status = reconcile_status
        self._read_inflight = read_inflight or reads.read_inflight
        self._read_runners = read_runners
        self._clock = clock
        self._errors = Counter(
            f"{prefix}scrape_errors",
            "Series a scrape left out because what Redis holds for them cannot be rendered, by family"
            " (a whole family when it could not be built).",
            ["family"],
            registry=registry,
        )
        self._reported: set[str] = set()  # families whose errors were logged (once each)

    def block(self, family: ScrapeFamily) -> Block:
        return Block(self._prefix + family.name, family.doc, family.kind, [])

    def close(self) -> None:
        self._reader.shutdown(wait=False, cancel_futures=True)

    def _read(self) -> View:
        return View(
            self._reads.read_fields(),
            self._read_inflight(),
            self._queue_batches.counts(claimed=self._claimed_key),
            self._reconcile_status(),
            self._read_runners(),
        )

    def _view(self) -> View:
        """What Redis holds, read by the one reader thread (a read under way is shared); raises
        ``TimeoutError`` past the timeout, or what the read raised."""
        with self._lock:
            if self._reading is None or self._reading.done():
                self._reading = self._reader.submit(self._read)
            reading = self._reading
        return reading.result(timeout=self._timeout)

    def blocks(self, openmetrics: bool = False) -> Iterator[Block]:
        """The families read from Redis, each built when asked for (histograms with their exemplars
        in OpenMetrics)."""
        up = self.block(REDIS_UP)
        try:
            view = self._view()
        except (RedisError, TimeoutError) as exc:
            logger.warning("scrape could not read Redis: {}", type(exc).__name__ if not str(exc) else exc)
            up.lines.append(sample(up.name, "", "0.0"))
            yield up
            return
        up.lines.append(sample(up.name, "", "1.0"))
        yield up
        for family in FAMILIES:
            try:
                yield self._family(family, view.fields.get(family.name, {}), openmetrics)
            except Exception as exc:  # a family that cannot be built is left out, the others not
                self.skipped(family.name, 1, exc)
        try:
            inflight = self._inflight(view.inflight)
        except Exception as exc:
            self.skipped("inflight", 1, exc)
            inflight = []
        yield from inflight
        try:
            limit = self._policy.settings.max_series_per_family
            runners = runner_blocks(view.runners, view.inflight, limit, self.block)
        except Exception as exc:
            self.skipped("runners", 1, exc)
            runners = []
        yield from runners
        jobs = self.block(QUEUE_BATCHES)
        for state, count in view.queue_counts.items():
            jobs.lines.append(sample(jobs.name, codec.label_text(("state",), (state,)), number(count)))
        rates = self.block(COST_RATE)
        for runner_class, rate in sorted(
            {**self._cost.rates, "self_hosted": self._cost.self_hosted_rate}.items()
        ):
            labels = codec.label_text(
                ("runner_class", "effective_date"), (runner_class, self._cost.effective_date)
            )
            rates.lines.append(sample(rates.name, labels, number(rate)))
        yield jobs
        yield rates
        yield from self._reconcile(view.reconcile)

    def _reconcile(self, status: Status) -> Iterator[Block]:
        last = self.block(RECONCILE_LAST_SUCCESS)
        for hook, at in sorted(status.last_success.items()):
            last.lines.append(sample(last.name, codec.label_text(("hook",), (hook,)), number(at)))
        rate = self.block(GITHUB_RATE_LIMIT)
        if status.rate_remaining is not None:
            rate.lines.append(sample(rate.name, "", number(status.rate_remaining)))
        yield last
        yield rate

    def _family(self, family: Family, fields: dict[bytes, bytes], openmetrics: bool) -> Block:
        name = self._prefix + family.name
        if family.kind == "histogram":
            lines, skipped = histogram_lines(name, fields, self._policy.buckets_of(family.name), openmetrics)
        else:
            lines, skipped = value_lines(name, fields)
        if skipped:
            self.skipped(family.name, skipped, None)
        return Block(name, family.doc, family.kind, lines)

    def skipped(self, family: str, series: int, exc: Exception | None) -> None:
        self._errors.labels(family).inc(series)
        if family not in self._reported:
            self._reported.add(family)
            logger.warning(
                "scrape left out {} of {} that Redis holds in a form that cannot be rendered ({}); counted"
                " in scrape_errors_total, logged once",
                f"{series} series" if exc is None else "the family",
                family,
                "values that are no numbers" if exc is None else type(exc).__name__,
            )

    def _inflight(self, inflight: Inflight) -> list[Block]:
        return inflight_blocks(inflight, self._policy, self.block, self._clock())


def inflight_blocks(
    inflight: Inflight, policy: LabelPolicy, block_of: Callable[[ScrapeFamily], Block], now: float
) -> list[Block]:
    """The in-flight gauges and the oldest attempts' ages, from the sets as counted per group."""
    blocks = []
    oldest: dict[str, dict[str, float]] = {"queued": {}, "in_progress": {}}
    for kind, gauges in PHASE_GAUGES.items():
        names = policy.inflight_labels(kind)
        for phase, family in gauges.items():
            counts: dict[tuple[str, ...], int] = defaultdict(int)
            for found in inflight.groups(kind, phase):
                counts[codec.group_labels(found.group, names)] += found.attempts
                if phase in oldest and isinstance(found.group, JobGroup):
                    runs_on = found.group.runs_on
                    oldest[phase][runs_on] = min(oldest[phase].get(runs_on, found.oldest), found.oldest)
            block = block_of(family)
            for values, count in sorted(counts.items()):
                block.lines.append(sample(block.name, codec.label_text(names, values), number(count)))
            blocks.append(block)
    for phase, family in OLDEST_BY_PHASE.items():
        block = block_of(family)
        for runs_on, since in sorted(oldest[phase].items()):
            age = number(max(0.0, now - since))
            block.lines.append(sample(block.name, codec.label_text(("runs_on",), (runs_on,)), age))
        blocks.append(block)
    return blocks
