"""The real receiver (its app, its intake on a real Redis, under uvicorn) in a thread of the test
process, on a free loopback port: what GitHub's fake delivers to in the reconciler's tests; and
uvicorn in a thread for any app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from prometheus_client import CollectorRegistry
from redis import Redis

from receiver.app import build_app
from receiver.intake import AsyncIntake
from receiver.metrics import ReceiverMetrics
from receiver.webhook import Services
from shared.marks import AsyncDeliveryMarks
from shared.queueing import make_queue
from shared.redis_connect import connect_async
from shared.reloading import SettingsHolder
from shared.settings import Settings
from stack.ports import free_port


@contextmanager
def running_receiver(settings: Settings) -> Iterator[str]:
    """Yields the receiver's ``/webhook`` URL."""
    connection = Redis.from_url(settings.redis.url)
    async_connection = connect_async(settings.redis)
    holder = SettingsHolder(settings)
    marks = AsyncDeliveryMarks(
        async_connection, lambda: settings.webhook.dedupe_ttl_seconds, compress=settings.queue.compress_bodies
    )
    intake = AsyncIntake(async_connection, marks, make_queue(connection, settings.queue), settings.queue)
    registry = CollectorRegistry()
    services = Services(holder, intake, ReceiverMetrics(registry, settings.metrics.prefix), registry)
    port = free_port()
    config = uvicorn.Config(
        build_app(services), host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    try:
        with uvicorn_in_thread(config):
            yield f"http://127.0.0.1:{port}/webhook"
    finally:
        connection.close()


@contextmanager
def uvicorn_in_thread(config: uvicorn.Config) -> Iterator[uvicorn.Server]:
    """uvicorn serving ``config`` in a thread, started (its socket bound) before this yields."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)
