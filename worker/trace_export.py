"""The loop that drains the trace outbox to the collector.

Every second each worker reads what waits (for ``traces_pending``); the one holding the lease
(redis-py's :class:`~redis.lock.Lock`, renewed while it sends) sends the oldest entries, up to
:data:`BATCH` a request, and deletes them once the collector answered 2xx. A worker that dies
mid-send leaves its entries in the outbox; the lease lapses and another worker sends them. So
every entry is sent until taken; the same spans (same ids) reach the collector twice only when a
worker dies between the collector's answer and the deletion.

A failed request (429, 5xx, no connection, no answer in time) is counted by its status and sent
again after the ``Retry-After`` the collector gave, else after 1, 2, 4 ... 30 s. A request the
collector refuses as such (400, 413) is sent again in halves, down to one entry, which is then
dropped (``traces_dropped_total{reason="rejected"}``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

from loguru import logger
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from redis import Redis

from shared import keys
from worker.leased import LeasedWork
from worker.otlp import SpanMaker
from worker.otlp_client import Answer, OtlpClient
from worker.outbox import Entry, Outbox, Waiting

BATCH = 200  # entries per request: up to a few thousand spans, well under collectors' 4 MiB default
TICK_SECONDS = 1.0
LEASE_SECONDS = 30
MAX_BACKOFF_SECONDS = 30.0
MAX_RETRY_AFTER_SECONDS = 600.0  # a collector asking for longer is asked again after this


class TraceMetrics(Collector):
    """This worker's exports, and the outbox as it last read it (the same on every worker)."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self._prefix = prefix
        self.exported = Counter(
            f"{prefix}traces_exported", "Spans the collector took from this worker.", registry=registry
        )
        self.errors = Counter(
            f"{prefix}traces_export_errors",
            "Export requests of this worker that failed, by HTTP status (or timeout, connection);"
            " partial: taken with some spans rejected.",
            ["status"],
            registry=registry,
        )
        self.waiting: Waiting | None = None
        registry.register(self)

    def collect(self) -> Iterator[Metric]:
        waiting = self.waiting
        pending = GaugeMetricFamily(
            f"{self._prefix}traces_pending", "Completed jobs and runs whose spans wait in the outbox."
        )
        size = GaugeMetricFamily(f"{self._prefix}traces_pending_bytes", "Bytes the outbox's entries take.")
        dropped = CounterMetricFamily(
            f"{self._prefix}traces_dropped",
            "Completed jobs and runs whose spans were dropped, over all workers: outbox_full (past"
            " traces.max_pending or traces.max_pending_bytes), rejected (refused by the collector),"
            " unreadable (an entry this version cannot read).",
            labels=["reason"],
        )
        if waiting is not None:
            pending.add_metric([], waiting.entries)
            size.add_metric([], waiting.bytes)
            for reason in sorted({"outbox_full", "rejected", "unreadable", *waiting.dropped}):
                dropped.add_metric([reason], waiting.dropped.get(reason, 0))
        yield from (pending, size, dropped)


class TraceExport:
    """One worker's part: read what waits; send while it holds the lease and the collector takes."""

    def __init__(
        self,
        outbox: Outbox,
        maker: SpanMaker,
        client: OtlpClient,
        metrics: TraceMetrics,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._outbox = outbox
        self._maker = maker
        self._client = client
        self._metrics = metrics
        self._clock = clock
        self._resume_at = 0.0
        self._failures = 0
        self._batch = BATCH

    def due(self) -> bool:
        """Not waiting out a failure (the collector's Retry-After, or the backoff)."""
        self._metrics.waiting = self._outbox.waiting()
        return self._clock() >= self._resume_at and self._metrics.waiting.entries > 0

    def waiting_entries(self) -> int:
        """Entries in the outbox as last read (each tick, and after each request)."""
        return self._metrics.waiting.entries if self._metrics.waiting is not None else 0

    def send_all(self, holding: Callable[[], bool]) -> int:
        """Send until the outbox is empty, a request fails, or ``holding`` says to stop (the lease
        is gone, the worker stops or has deliveries to count); the entries the collector took."""
        taken = 0
        while holding():
            entries = self._outbox.take(self._batch, hold_ms=LEASE_SECONDS * 1000)
            if not entries:
                break
            sent = self._send(entries)
            self._metrics.waiting = self._outbox.waiting()  # for traces_pending and the urgency test
            if sent < 0:
                break
            taken += sent
        return taken

    def _send(self, entries: list[Entry]) -> int:
        """Send ``entries``: how many the collector took (0 when a smaller request comes next), or
        -1 when the export failed and waits."""
        spans, readable, unreadable = [], [], []
        for entry in entries:
            try:
                spans.extend(self._maker.spans(entry.body))
                readable.append(entry)
            except (ValueError, KeyError, TypeError):
                unreadable.append(entry)
        if unreadable:  # no entry the rules make; never sent, so never in the way of the others
            self._outbox.delete(unreadable, dropped="unreadable")
            logger.warning("dropped {} trace entries that are not ones this version makes", len(unreadable))
        entries = readable
        if not entries:
            return 0
        answer = self._client.send(self._maker.request(spans))
        if answer.ok:
            self._outbox.delete(entries)
            self._metrics.exported.inc(len(spans) - answer.rejected)
            if answer.rejected:
                self._metrics.errors.labels("partial").inc()
                logger.warning("the collector rejected {} of {} spans", answer.rejected, len(spans))
            self._failures, self._batch = 0, min(BATCH, self._batch * 2)
            return len(entries)
        self._metrics.errors.labels(answer.status).inc()
        if answer.refused:
            if len(entries) > 1:
                self._batch = max(1, len(entries) // 2)
                return 0
            self._outbox.delete(entries, dropped="rejected")
            logger.warning("the collector refused a job's or run's spans ({}): dropped", answer.status)
            return 0
        self._wait(answer)
        return -1

    def _wait(self, answer: Answer) -> None:
        self._failures += 1
        backoff = min(MAX_BACKOFF_SECONDS, 2.0 ** (self._failures - 1))
        if answer.retry_after is not None:
            backoff = min(MAX_RETRY_AFTER_SECONDS, answer.retry_after)
        self._resume_at = self._clock() + backoff
        logger.warning("trace export failed ({}): sent again in {:.0f} s", answer.status, backoff)


class TraceLoop:
    """Runs :class:`TraceExport` every second, one worker at a time (:mod:`worker.leased`). Counting
    comes first: the sender shares the worker's process (and Python's lock), so while batches wait in
    the queue (``busy``) it sends only once the outbox holds a quarter of ``most``
    (traces.max_pending): a backlog is counted at full speed and its spans follow."""

    def __init__(
        self,
        connection: Redis,
        export: TraceExport,
        busy: Callable[[], bool] = lambda: False,
        most: int = 0,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._export = export
        self._busy = busy
        self._urgent = most // 4
        self._stopping = threading.Event()
        self._work = LeasedWork(
            connection, keys.OUTBOX_LOCK, "trace export", self._due, self._send, TICK_SECONDS, lease_seconds
        )

    def start(self) -> None:
        self._work.start()
        logger.info("traces on: the outbox is sent every {:.0f} s", TICK_SECONDS)

    def stop(self) -> None:
        self._stopping.set()
        self._work.stop()

    def _may_send(self) -> bool:
        """No batch waits to be counted, or the outbox fills up."""
        return not self._busy() or self._export.waiting_entries() >= self._urgent

    def _due(self) -> bool:
        return self._export.due() and self._may_send()

    def _send(self) -> int:
        return self._export.send_all(
            lambda: not self._stopping.is_set() and self._may_send() and self._work.owned()
        )

    def tick(self) -> int:
        """One look: send what waits if it is due and the lease is free; the entries taken."""
        return self._work.tick() or 0
