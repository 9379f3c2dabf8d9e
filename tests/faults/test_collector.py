"""Traces through a collector's outages: down for 60 s, answering 503 with ``Retry-After``, hanging.
The worker's counting goes on meanwhile; afterwards every completed job's and run's spans arrive at
the OTLP endpoint (``bench.otlp_sink``, decoding with ``opentelemetry-proto``) exactly once."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.cluster import Cluster
from bench.otlp_sink import Collector
from bench.worker_drain import processed
from tests.faults.harness import Accounting, check, play_in_background, process_metric

pytestmark = pytest.mark.faults
RUNS = 150  # 1,350 deliveries at 50 a second: 27 s
SPANS_PER_RUN = 5  # the run, and each of its two jobs with its wait for a runner
ARRIVE_WITHIN = 120.0


@pytest.fixture(name="traced")
def _traced(tmp_path: Path) -> Iterator[tuple[Cluster, Collector]]:
    collector = Collector().__enter__()
    cluster = Cluster(tmp_path)
    cluster.extra_env.update(
        GHA_EXPORTER_TRACES__OTLP_ENDPOINT=collector.url, GHA_EXPORTER_TRACES__TIMEOUT_SECONDS="3"
    )
    cluster.start()
    holder = [collector]
    yield cluster, collector
    cluster.shutdown()
    holder[0].__exit__()


def all_spans_once(collector: Collector, since: float) -> float:
    """Seconds from ``since`` until every span has arrived; each span id must arrive once."""
    deadline = time.monotonic() + ARRIVE_WITHIN
    while time.monotonic() < deadline:
        ids = collector.span_ids()
        assert set(ids.values()) <= {1}, "a span arrived twice"
        if len(ids) == RUNS * SPANS_PER_RUN:
            return time.monotonic() - since
        time.sleep(0.2)
    raise AssertionError(f"{len(collector.span_ids())} of {RUNS * SPANS_PER_RUN} spans arrived")


def scenario(
    cluster: Cluster,
    collector: Collector,
    accounts: list[Accounting],
    name: str,
    fault: Callable[[], Collector],
) -> tuple[str, Collector]:
    """Play the runs; ``fault`` holds the collector back while they are counted (returning the
    collector that answers afterwards); then the ledger, and every span once."""
    connection = cluster.connection()
    sends, stats, player = play_in_background(cluster, RUNS)
    time.sleep(3)
    applied_before = processed(connection)
    collector = fault()
    applied_during = processed(connection) - applied_before
    back = time.monotonic()
    arrived = all_spans_once(collector, back)
    player.join()
    errors = process_metric(cluster, "worker-0", "traces_export_errors_total")
    exported = process_metric(cluster, "worker-0", "traces_exported_total")
    dropped = process_metric(cluster, "worker-0", "traces_dropped_total")
    notes = (
        f"{applied_during:.0f} deliveries applied during the fault; {len(collector.span_ids())} spans, each"
        f" once, all there {arrived:.1f} s after it ended; {errors:.0f} failed exports, dropped {dropped:.0f}"
    )
    check(cluster, accounts, name, sends, stats, RUNS, notes=notes)
    assert applied_during > 0  # counting went on
    assert exported == RUNS * SPANS_PER_RUN
    assert dropped == 0
    connection.close()
    return notes, collector


def test_a_collector_down_for_60_s(traced, accounts):
    """Expected: the collector's port refuses connections for 60 s under load; the worker counts on,
    keeps the spans in the outbox, and sends each one once when the collector is back."""
    cluster, collector = traced

    def down() -> Collector:
        port = collector.port
        collector.__exit__()
        time.sleep(60)
        back = Collector(port=port).__enter__()
        back.received = collector.received  # what arrived before it went down
        return back

    _notes, back = scenario(cluster, collector, accounts, "23 collector down 60 s", down)
    back.__exit__()


def test_a_collector_answering_503_with_retry_after(traced, accounts):
    """Expected: 503 with Retry-After: 10 for 40 s; the worker waits as told between attempts (at
    most one request per 10 s), then sends each span once."""
    cluster, collector = traced

    def refusing() -> Collector:
        collector.refusing = (503, {"Retry-After": "10"})
        started = time.monotonic()
        time.sleep(40)
        collector.refusing = None
        refused = [at for at in collector.requests if at >= started]
        assert 1 <= len(refused) <= 5, refused  # one per Retry-After, not one per second
        return collector

    scenario(cluster, collector, accounts, "24 collector 503, Retry-After 10", refusing)


def test_a_collector_that_hangs(traced, accounts):
    """Expected: the collector takes requests and never answers for 30 s; each request is given up
    after traces.timeout_seconds (3 s here) and sent again later; each span arrives once."""
    cluster, collector = traced

    def hanging() -> Collector:
        collector.hang.set()
        time.sleep(30)
        collector.hang.clear()
        return collector

    scenario(cluster, collector, accounts, "25 collector hangs 30 s", hanging)
