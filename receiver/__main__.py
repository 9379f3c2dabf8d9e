"""``python -m receiver [--config FILE]``: the webhook receiver under uvicorn."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from types import FrameType

import uvicorn
from loguru import logger
from prometheus_client import CollectorRegistry, disable_created_metrics

from receiver.app import build_app
from receiver.headroom import Headroom
from receiver.intake import AsyncIntake
from receiver.metrics import ReceiverMetrics
from receiver.webhook import Services
from shared.cli import parse_args, start
from shared.dataset import DatasetWatch
from shared.http_protocol import HttpLimits, http_options
from shared.http_server import HttpServer, registry_render
from shared.marks import AsyncDeliveryMarks
from shared.queueing import make_queue
from shared.redis_connect import connect, connect_async
from shared.reloading import count_failures
from shared.settings_loader import require_secrets
from shared.stop_deadline import StopDeadline


class Server(uvicorn.Server):
    """uvicorn's server; its first exit signal also arms the stop deadline, so the process is gone
    by then even when the shutdown waits on a Redis that does not answer."""

    def __init__(self, config: uvicorn.Config, deadline: StopDeadline) -> None:
        super().__init__(config)
        self.deadline = deadline

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.deadline.arm()
        super().handle_exit(sig, frame)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("receiver", "Receive GitHub webhooks and queue them in Redis.", argv)
    holder = start("receiver", args.config, require_secrets)
    if holder is None:
        return 2
    settings = holder.current
    # RQ builds jobs for a queue with a client, which the receiver never sends a command on: its
    # reads and writes go through the asyncio client, so a Redis that does not answer never blocks
    # its event loop (RQ's one question, Redis's version, is asked there too: receiver.intake).
    connection = connect(settings.redis)
    async_connection = connect_async(settings.redis)
    queue = make_queue(connection, settings.queue)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the scrape size
    registry = CollectorRegistry()
    marks = AsyncDeliveryMarks(
        async_connection,
        lambda: holder.current.webhook.dedupe_ttl_seconds,
        replicas=settings.redis.min_replicas_ack,
        compress=settings.queue.compress_bodies,
    )
    headroom = Headroom(async_connection, settings.redis.memory_high_water)
    intake = AsyncIntake(async_connection, marks, queue, settings.queue, headroom)
    metrics = ReceiverMetrics(registry, settings.metrics.prefix)
    count_failures(holder, registry, settings.metrics.prefix)
    dataset = DatasetWatch()
    dataset.expose(registry, settings.metrics.prefix)
    metrics.paused.set_function(lambda: float(headroom.full))
    services = Services(
        holder,
        intake,
        metrics,
        registry,
        settings.receiver.max_batch,
        dataset,
    )
    separate_metrics = settings.receiver.metrics_port != 0
    metrics_server = None
    if separate_metrics:
        host = settings.receiver.metrics_host or settings.receiver.host
        try:
            metrics_server = HttpServer(
                host,
                settings.receiver.metrics_port,
                registry_render(registry),
                lambda: True,
                refused=metrics.refused,
            )
        except OSError as exc:
            logger.error("cannot serve metrics on {}:{}: {}", host, settings.receiver.metrics_port, exc)
            return 1
        metrics_server.start()
    config = uvicorn.Config(
        build_app(services, metrics_route=not separate_metrics),
        host=settings.receiver.host,
        port=settings.receiver.port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # client addresses are not used; skip the per-request middleware
        ssl_certfile=settings.receiver.tls_certfile,
        ssl_keyfile=settings.receiver.tls_keyfile,
        # requests in flight get until 1 s before the stop deadline (the rest of it: closing)
        timeout_graceful_shutdown=max(1, math.floor(settings.receiver.graceful_shutdown_seconds - 1)),
        # slow, idle and greedy clients: heads capped, requests timed, connections capped (the
        # longest waiting shed past it: shared.http_protocol), idle keep-alive closed soon
        timeout_keep_alive=settings.receiver.keep_alive_seconds,
        lifespan="on",
        **http_options(
            HttpLimits(
                settings.receiver.max_header_bytes,
                settings.receiver.body_timeout_seconds,
                settings.receiver.limit_concurrency,
            ),
            metrics.refused,
        ),
    )
    holder.start()
    try:
        Server(config, StopDeadline(settings.receiver.graceful_shutdown_seconds, "receiver")).run()
    finally:
        if metrics_server is not None:
            metrics_server.stop()
        holder.stop()
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
