"""``python -m worker [--config FILE]``: drain the queue into metrics, serve /metrics and /health;
reconcile with GitHub's delivery log when ``github.hooks`` is set, list the runners when
``github.runners`` is. ``python -m worker reconcile``:
one reconciliation pass now (:mod:`worker.reconcile_command`)."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loguru import logger
from prometheus_client import CollectorRegistry, disable_created_metrics
from redis import Redis
from redis.exceptions import RedisError

from shared import keys
from shared.cli import parse_args, start
from shared.dataset import DatasetWatch
from shared.http_protocol import REASONS as CONNECTION_REASONS
from shared.http_protocol import HttpLimits
from shared.http_server import ROUTE_REASONS, HttpServer, refusal_counter
from shared.marks import DeliveryMarks
from shared.outage import Outage
from shared.queueing import make_queue
from shared.redis_connect import connect
from shared.reloading import SettingsHolder, count_failures
from shared.rqadapter.storage import QueueBatches
from shared.settings import Settings
from shared.settings_loader import SettingsError
from shared.stop_deadline import StopDeadline
from worker import reconcile_command
from worker.api import BUSY, Gate, InflightApi, json_route
from worker.batches import bind, unbind
from worker.combine import Combiner
from worker.cost import CostModel
from worker.expiry import Expiry
from worker.exposition import Exposition
from worker.inflight import Inflight
from worker.labels import LabelMaker
from worker.leased import LeasedWork
from worker.ledger import Ledger
from worker.ledger_reads import LedgerReads
from worker.liveness import Liveness
from worker.metrics import LabelPolicy, LocalMetrics, PollMetrics, ReconcileMetrics, label_problems
from worker.outbox import Outbox
from worker.page import page_routes
from worker.processor import Processor
from worker.reconcile import Reconciler, reconcile_loop
from worker.reconcile_store import read_status
from worker.recovery import Recovery
from worker.rqworker import StopFlag, supervise
from worker.runner_inventory import Inventory, Polled
from worker.runner_poll import RunnerPoller, runner_poll_loop
from worker.runners_api import RunnersApi
from worker.snapshot import Snapshot
from worker.state import Transitions
from worker.stored_families import StoredFamilies
from worker.trace_entries import TraceEntries
from worker.upkeep import Upkeep

if TYPE_CHECKING:
    from worker.trace_export import TraceLoop

REFUSAL_REASONS = (*CONNECTION_REASONS, *ROUTE_REASONS, BUSY)


def check_worker_settings(settings: Settings) -> None:
    """What the worker needs beyond valid values: label sets it can keep, a CA file it can read."""
    problems = label_problems(settings.metrics.labels)
    ca_file = settings.traces.tls_ca_file
    if settings.traces.otlp_endpoint and ca_file and not os.access(ca_file, os.R_OK):
        problems.append(f"traces.tls_ca_file: cannot read {ca_file}")
    if problems:
        raise SettingsError(problems)


@dataclass(frozen=True)
class Built:
    processor: Processor
    ledger: Ledger
    policy: LabelPolicy
    exposition: Exposition
    combiner: Combiner
    recovery: Recovery
    queue_batches: QueueBatches
    reconciler: Reconciler
    poller: RunnerPoller
    dataset: DatasetWatch
    reads: LedgerReads  # on the scrape's connection: the scrape, the snapshot, the API
    inflight: Snapshot[Inflight]  # the in-flight sets as the scrape and the API read them
    runners: Snapshot[list[Polled]]  # the runners' inventory, likewise
    expiry: Expiry


def build_processor(
    connection: Redis,
    settings: Settings | SettingsHolder,
    registry: CollectorRegistry,
    scrape_connection: Redis | None = None,
) -> Built:
    """The worker's pieces, wired; the registry gets the process-local metrics (its refused reloads
    and Redis's dataset epoch among them). Given a holder,
    the reloadable options (the delivery marks' TTL) follow its reloads. The scrape reads Redis on
    ``scrape_connection`` (its socket timeout is the scrape's), else on ``connection``."""
    holder = settings if isinstance(settings, SettingsHolder) else SettingsHolder(settings)
    settings = holder.current
    policy = LabelPolicy(settings.metrics)
    cost = CostModel(settings.cost)
    local = LocalMetrics(registry, settings.metrics)
    count_failures(holder, registry, settings.metrics.prefix)
    dataset = DatasetWatch()
    dataset.expose(registry, settings.metrics.prefix)
    marks = DeliveryMarks(connection, lambda: holder.current.webhook.dedupe_ttl_seconds)
    traces = settings.traces
    entries = TraceEntries(traces.steps) if traces.otlp_endpoint else None
    ledger = Ledger(
        connection,
        marks,
        policy,
        job_ttl=settings.state.job_ttl_seconds,
        run_ttl=settings.state.run_ttl_seconds,
        on_conflict=local.conflicts.inc,
        recent=settings.worker.recent_failures,
        outbox=(traces.max_pending, traces.max_pending_bytes) if entries is not None else None,
    )
    transitions = Transitions(policy, LabelMaker(settings.metrics, cost), cost, entries)
    processor = Processor(ledger, marks, policy, transitions, local)
    queue_batches = QueueBatches(make_queue(connection, settings.queue))
    combiner = Combiner(queue_batches, settings.worker.max_batch)
    recovery = Recovery(queue_batches, settings.worker.lease_seconds)
    scrape = scrape_connection or connection
    expiry = Expiry(
        connection, policy, job_ttl=settings.state.job_ttl_seconds, run_ttl=settings.state.run_ttl_seconds
    )
    reads = LedgerReads(scrape, policy)
    inflight = Snapshot(reads.read_inflight, settings.worker.api_cache_seconds)
    stored_runners = Inventory(scrape)
    runners = Snapshot(
        lambda: stored_runners.read(holder.current.github.runners), settings.worker.api_cache_seconds
    )
    stored = StoredFamilies(
        registry,
        reads,
        policy,
        QueueBatches(make_queue(scrape, settings.queue)),
        keys.claimed(settings.queue.name),
        prefix=settings.metrics.prefix,
        cost=settings.cost,
        timeout=settings.worker.scrape_timeout_seconds,
        reconcile_status=lambda: read_status(scrape, holder.current.github),
        read_inflight=inflight,
        read_runners=runners,
    )
    exposition = Exposition(registry, stored, settings.worker.max_scrape_bytes)
    api_metrics = ReconcileMetrics(registry, settings.metrics.prefix)
    reconciler = Reconciler(connection, marks, lambda: holder.current.github, api_metrics)
    poller = RunnerPoller(
        connection, lambda: holder.current.github, PollMetrics(registry, settings.metrics.prefix), api_metrics
    )
    return Built(
        processor, ledger, policy, exposition, combiner, recovery, queue_batches, reconciler, poller, dataset,
        reads, inflight, runners, expiry,
    )  # fmt: skip


def trace_loop(
    connection: Redis,
    settings: Settings,
    registry: CollectorRegistry,
    busy: Callable[[], bool] = lambda: False,
) -> TraceLoop | None:
    """The outbox's sender when traces are on (imported only then); ``busy``: batches wait."""
    if settings.traces.otlp_endpoint is None:
        return None
    from worker.otlp import SpanMaker  # noqa: PLC0415 - the semantic conventions, only when on
    from worker.otlp_client import OtlpClient  # noqa: PLC0415 - with it
    from worker.trace_export import TraceExport, TraceLoop, TraceMetrics  # noqa: PLC0415 - with it

    export = TraceExport(
        Outbox(connection),
        SpanMaker(settings.traces.service_name),
        OtlpClient(settings.traces),
        TraceMetrics(registry, settings.metrics.prefix),
    )
    return TraceLoop(connection, export, busy, settings.traces.max_pending)


def http_server(
    settings: Settings, built: Built, registry: CollectorRegistry, healthy: Callable[[], bool]
) -> HttpServer:
    """The worker's HTTP server: /metrics, /health, the page and its API (``OSError`` when its
    address cannot be had)."""
    inflight = InflightApi(
        built.reads, built.inflight, trace_ui=settings.traces.ui_url, read_runners=built.runners
    )
    runners = RunnersApi(built.reads, built.inflight, built.runners)
    refused = refusal_counter(registry, settings.metrics.prefix, REFUSAL_REASONS)
    gate = Gate(settings.worker.api_concurrency, refused)
    return HttpServer(
        settings.worker.host,
        settings.worker.port,
        built.exposition.stream,
        healthy,
        {
            **page_routes(),
            "/api/v1/inflight": json_route(inflight.inflight, gate),
            "/api/v1/recent": json_route(inflight.recent, gate),
            "/api/v1/runners": json_route(runners.runners, gate),
        },
        limits=HttpLimits(
            request_seconds=settings.worker.body_timeout_seconds,
            max_connections=settings.worker.max_connections,
        ),
        allowed_hosts=settings.worker.allowed_hosts,
        refused=refused,
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["reconcile"]:
        return reconcile_command.main(argv[1:])
    args = parse_args("worker", "Turn queued GitHub webhooks into Prometheus metrics.", argv)
    holder = start("worker", args.config, check_worker_settings)
    if holder is None:
        return 2
    settings = holder.current
    stop = StopFlag(StopDeadline(settings.worker.stop_grace_seconds, "worker"))
    signal.signal(signal.SIGTERM, stop.set)
    signal.signal(signal.SIGINT, stop.set)

    connection = connect(settings.redis)
    scrape_connection = connect(settings.redis, socket_timeout=settings.worker.scrape_timeout_seconds)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the scrape size
    registry = CollectorRegistry()
    built = build_processor(connection, holder, registry, scrape_connection)
    dataset = built.dataset
    token = bind(built.processor, built.combiner)
    liveness = Liveness(settings.worker.stall_seconds)
    try:
        server = http_server(settings, built, registry, lambda: not stop.is_set() and liveness.healthy())
    except OSError as exc:
        logger.error("cannot serve metrics on {}:{}: {}", settings.worker.host, settings.worker.port, exc)
        return 1
    try:
        dataset.check(connection)
    except RedisError as exc:
        logger.warning("could not read Redis at the start (the sweeper will look again): {}", exc)
    outage = Outage()
    sweeper = Upkeep(
        built.expiry,
        settings.state.sweep_interval_seconds,
        recovery=built.recovery,
        liveness=liveness,
        waiting=lambda: int(built.queue_batches.queue.count),
        outage=outage,
        check_dataset=lambda: dataset.check(connection),
    )
    reconciling = reconcile_loop(connection, built.reconciler, lambda: bool(holder.current.github.hooks))
    traces = trace_loop(connection, settings, registry, lambda: int(built.queue_batches.queue.count) > 0)
    polling = runner_poll_loop(connection, built.poller)
    loops: list[Upkeep | LeasedWork[Any] | TraceLoop] = [
        sweeper,
        reconciling,
        polling,
        *([traces] if traces else []),
    ]
    server.start()
    for loop in loops:
        loop.start()
    holder.start()
    logger.info("worker metrics on http://{}:{}/metrics", settings.worker.host, server.port)
    try:
        supervise(
            connection,
            settings.queue,
            stop,
            lease_seconds=settings.worker.lease_seconds,
            on_heartbeat=built.combiner.renew,
            on_progress=liveness.progressed,
            outage=outage,
        )
    finally:
        server.stop()
        for loop in loops:
            loop.stop()
        holder.stop()
        unbind(token)
        built.exposition.close()
        scrape_connection.close()
        connection.close()
    logger.info("worker stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
