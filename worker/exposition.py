"""The worker's ``/metrics``: its own registry, then the families read from Redis at scrape time.

The aggregates, the in-flight gauges and the queue depth are read from Redis, so every worker
replica exposes the same values, and a restarted worker the same totals. They are written as text
directly (:mod:`worker.textformat`): at 100,000 series, going through prometheus_client's sample
objects took seconds. If Redis cannot be read within ``worker.scrape_timeout_seconds``, only
``..._redis_up 0`` is exposed for them, with the process's own families (Prometheus then has a gap
instead of a false zero, and the scrape never hangs).

One thread reads Redis for the scrapes: a scrape that arrives while a read is under way waits for
that read (up to the timeout) instead of starting another, so scrapes against a slow or gone Redis
do not pile up threads or connections.

A scrape is streamed, one family at a time (:meth:`Exposition.stream`), and renders at most
``worker.max_scrape_bytes``: past it the remaining series are left out, whole (a histogram's series
is never cut in half), and ``scrape_truncated`` says 1. Before, one scrape of 282 MB held 2.6 GB.

A scrape never fails as a whole: a series whose stored value cannot be rendered (not a number, too
long) is left out, a family that cannot be built at all too, each counted in
``scrape_errors_total{family}`` (seen from the next scrape on), and the body always ends as its
format wants (``# EOF`` in OpenMetrics). Before, one 400-digit number in Redis cut every scrape
short.
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
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError

from shared.rqadapter.storage import QueueJobs
from shared.settings import CostSettings
from worker import codec
from worker.codec import JobGroup
from worker.inflight import Inflight
from worker.ledger_reads import LedgerReads
from worker.metrics import (
    COST_RATE,
    FAMILIES,
    GITHUB_RATE_LIMIT,
    JOB_PHASE_GAUGES,
    OLDEST_BY_PHASE,
    QUEUE_JOBS,
    RECONCILE_LAST_SUCCESS,
    REDIS_UP,
    RUN_PHASE_GAUGES,
    SCRAPE_TRUNCATED,
    Family,
    LabelPolicy,
    ScrapeFamily,
)
from worker.reconcile import Status
from worker.textformat import header, histogram_lines, number, sample, value_lines


class Block(NamedTuple):
    """One metric family's text: its HELP and TYPE are written per format."""

    name: str
    doc: str
    kind: str
    lines: list[str]


EOF = b"# EOF\n"


class View(NamedTuple):
    """What a scrape reads from Redis."""

    fields: dict[str, dict[bytes, bytes]]
    inflight: Inflight
    queue_counts: dict[str, int]
    reconcile: Status


class Exposition:
    def __init__(
        self,
        registry: CollectorRegistry,
        reads: LedgerReads,
        policy: LabelPolicy,
        queue_jobs: QueueJobs,
        claimed_key: str,
        *,
        prefix: str,
        cost: CostSettings,
        timeout: float = 2.0,
        max_bytes: int = 64 * 1024 * 1024,
        reconcile_status: Callable[[], Status] = lambda: Status({}, None),
        read_inflight: Callable[[], Inflight] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._registry = registry
        self._reads = reads
        self._policy = policy
        self._queue_jobs = queue_jobs
        self._claimed_key = claimed_key
        self._timeout = timeout
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scrape-redis")
        self._lock = threading.Lock()
        self._reading: Future[View] | None = None
        self._prefix = prefix
        self._cost = cost
        self._max_bytes = max_bytes
        self._reconcile_status = reconcile_status
        self._read_inflight = read_inflight or reads.read_inflight
        self._clock = clock
        self._errors = Counter(
            f"{prefix}scrape_errors",
            "Series a scrape left out because what Redis holds for them cannot be rendered, by family"
            " (a whole family when it could not be built).",
            ["family"],
            registry=registry,
        )
        self._reported: set[str] = set()  # families whose errors were logged (once each)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The whole body and its content type (:meth:`stream`, joined)."""
        chunks, content_type = self.stream(accept)
        return b"".join(chunks), content_type

    def stream(self, accept: str = "") -> tuple[Iterator[bytes], str]:
        """The body, one family at a time, and its content type for a scraper's ``Accept`` header
        (OpenMetrics if it asks). Redis is read when the first chunk is asked for."""
        encoder, content_type = choose_encoder(accept)
        openmetrics = content_type.startswith("application/openmetrics-text")
        return self._chunks(encoder, openmetrics), content_type

    def _chunks(self, encoder: Callable[[CollectorRegistry], bytes], openmetrics: bool) -> Iterator[bytes]:
        local: bytes = encoder(self._registry)
        if openmetrics:
            local = local.removesuffix(EOF)
        yield local
        left = self._max_bytes - len(local)
        truncated = False
        blocks = self.redis_blocks(openmetrics)
        while not truncated:
            try:
                block = next(blocks)
            except StopIteration:
                break
            except Exception as exc:  # a bug or a value no guard foresaw: the rest of the body still
                self._skipped("redis", 1, exc)
                break
            head = header(block.name, block.doc, block.kind, openmetrics).encode()
            data = head + "".join(block.lines).encode()
            if len(data) > left:  # keep the whole series that fit, then stop
                data, truncated = self._cut(head, block.lines, left), True
            left -= len(data)
            yield data
        flag = self._block(SCRAPE_TRUNCATED)
        if truncated:
            logger.warning("scrape stopped at worker.max_scrape_bytes ({} bytes)", self._max_bytes)
        yield (
            header(flag.name, flag.doc, flag.kind, openmetrics) + sample(flag.name, "", number(truncated))
        ).encode()
        if openmetrics:
            yield EOF

    @staticmethod
    def _cut(head: bytes, lines: list[str], room: int) -> bytes:
        """The family's header and the series that fit in ``room`` bytes (none: nothing at all)."""
        parts, size = [head], len(head)
        for line in lines:
            encoded = line.encode()
            if size + len(encoded) > room:
                break
            parts.append(encoded)
            size += len(encoded)
        return b"".join(parts) if size <= room else b""

    def _block(self, family: ScrapeFamily) -> Block:
        return Block(self._prefix + family.name, family.doc, family.kind, [])

    def close(self) -> None:
        self._reader.shutdown(wait=False, cancel_futures=True)

    def _read(self) -> View:
        return View(
            self._reads.read_fields(),
            self._read_inflight(),
            self._queue_jobs.counts(claimed=self._claimed_key),
            self._reconcile_status(),
        )

    def _view(self) -> View:
        """What Redis holds, read by the one reader thread (a read under way is shared); raises
        ``TimeoutError`` past the timeout, or what the read raised."""
        with self._lock:
            if self._reading is None or self._reading.done():
                self._reading = self._reader.submit(self._read)
            reading = self._reading
        return reading.result(timeout=self._timeout)

    def redis_blocks(self, openmetrics: bool = False) -> Iterator[Block]:
        """The families read from Redis, each built when asked for (histograms with their exemplars
        in OpenMetrics)."""
        up = self._block(REDIS_UP)
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
                self._skipped(family.name, 1, exc)
        try:
            inflight = self._inflight(view.inflight)
        except Exception as exc:
            self._skipped("inflight", 1, exc)
            inflight = []
        yield from inflight
        jobs = self._block(QUEUE_JOBS)
        for state, count in view.queue_counts.items():
            jobs.lines.append(sample(jobs.name, codec.label_text(("state",), (state,)), number(count)))
        rates = self._block(COST_RATE)
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
        last = self._block(RECONCILE_LAST_SUCCESS)
        for hook, at in sorted(status.last_success.items()):
            last.lines.append(sample(last.name, codec.label_text(("hook",), (hook,)), number(at)))
        rate = self._block(GITHUB_RATE_LIMIT)
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
            self._skipped(family.name, skipped, None)
        return Block(name, family.doc, family.kind, lines)

    def _skipped(self, family: str, series: int, exc: Exception | None) -> None:
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
        now = self._clock()
        blocks = []
        oldest: dict[str, dict[str, float]] = {"queued": {}, "in_progress": {}}
        for kind, gauges in (("job", JOB_PHASE_GAUGES), ("run", RUN_PHASE_GAUGES)):
            names = self._policy.inflight_labels(kind)
            for phase, family in gauges.items():
                counts: dict[tuple[str, ...], int] = defaultdict(int)
                for found in inflight.groups(kind, phase):
                    counts[codec.group_labels(found.group, names)] += found.attempts
                    if phase in oldest and isinstance(found.group, JobGroup):
                        runs_on = found.group.runs_on
                        oldest[phase][runs_on] = min(oldest[phase].get(runs_on, found.oldest), found.oldest)
                block = self._block(family)
                for values, count in sorted(counts.items()):
                    block.lines.append(sample(block.name, codec.label_text(names, values), number(count)))
                blocks.append(block)
        for phase, family in OLDEST_BY_PHASE.items():
            block = self._block(family)
            for runs_on, since in sorted(oldest[phase].items()):
                age = number(max(0.0, now - since))
                block.lines.append(sample(block.name, codec.label_text(("runs_on",), (runs_on,)), age))
            blocks.append(block)
        return blocks
