"""``python -m receiver [--config FILE]``: the webhook receiver under uvicorn."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import uvicorn
from loguru import logger
from prometheus_client import CollectorRegistry, disable_created_metrics
from redis.exceptions import RedisError

from receiver.app import build_app
from receiver.http_protocol import http_options
from receiver.intake import AsyncIntake
from receiver.metrics import ReceiverMetrics
from receiver.webhook import Services
from shared.cli import parse_args, start
from shared.marks import AsyncDeliveryMarks
from shared.metrics_http import MetricsServer, registry_render
from shared.queueing import make_queue
from shared.redis_connect import connect, connect_async
from shared.settings import require_secrets


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("receiver", "Receive GitHub webhooks and queue them in Redis.", argv)
    holder = start("receiver", args.config, require_secrets)
    if holder is None:
        return 2
    settings = holder.current
    # RQ builds jobs with a blocking client (it asks the server's version once); the receiver's own
    # reads and writes go through the asyncio client.
    connection = connect(settings.redis)
    async_connection = connect_async(settings.redis)
    queue = make_queue(connection, settings.queue)
    try:
        queue.get_redis_server_version()
    except RedisError as exc:
        logger.warning("Redis not reachable yet ({}); the receiver answers 503 until it is", exc)
    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series double the scrape size
    registry = CollectorRegistry()
    marks = AsyncDeliveryMarks(
        async_connection,
        lambda: holder.current.webhook.dedupe_ttl_seconds,
        replicas=settings.redis.min_replicas_ack,
        compress=settings.queue.compress_bodies,
    )
    intake = AsyncIntake(async_connection, marks, queue, settings.queue)
    metrics = ReceiverMetrics(registry, settings.metrics.prefix)
    services = Services(
        holder,
        intake,
        metrics,
        registry,
        settings.receiver.max_batch,
    )
    separate_metrics = settings.receiver.metrics_port != 0
    metrics_server = None
    if separate_metrics:
        host = settings.receiver.metrics_host or settings.receiver.host
        try:
            metrics_server = MetricsServer(
                host, settings.receiver.metrics_port, registry_render(registry), lambda: True
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
        timeout_graceful_shutdown=int(settings.receiver.graceful_shutdown_seconds),
        # slow or idle clients: at most this many at once (503 past it), idle keep-alive closed soon;
        # a request head is capped by receiver.http_protocol. A reverse proxy in front should absorb
        # slow clients.
        limit_concurrency=settings.receiver.limit_concurrency,
        timeout_keep_alive=settings.receiver.keep_alive_seconds,
        lifespan="on",
        **http_options(settings.receiver.max_header_bytes, metrics.refused),
    )
    holder.start()
    try:
        uvicorn.Server(config).run()
    finally:
        if metrics_server is not None:
            metrics_server.stop()
        holder.stop()
        connection.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
