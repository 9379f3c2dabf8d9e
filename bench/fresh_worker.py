"""The worker's own wiring (``worker.__main__.build_processor``) on a Redis server of its own, for the
benchmarks that feed the processor directly and read Redis, the scrape or the API."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from redis import Redis

from bench.workload import intake_entries
from receiver.intake import Accepted
from shared.settings_loader import load_settings
from stack.redis_server import RedisServer

if TYPE_CHECKING:
    from worker.__main__ import Built


@contextlib.contextmanager
def worker_on_fresh_redis(**environ: str) -> Iterator[tuple[Redis, Built]]:
    """A connection and the built worker, with settings ``environ`` over the defaults."""
    from worker.__main__ import build_processor  # noqa: PLC0415 - the worker's own wiring

    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        base = {"GHA_EXPORTER_REDIS__URL": redis.url, "GHA_EXPORTER_WEBHOOK__SECRETS": "bench"}
        settings = load_settings(environ={**base, **environ})
        connection = Redis.from_url(redis.url)
        try:
            yield connection, build_processor(connection, settings, CollectorRegistry())
        finally:
            connection.close()


def apply_through_intake(connection: Redis, built: Built, items: list[Accepted], batch: int) -> None:
    """Queue ``items`` through the receiver's intake and apply them with ``built``'s processor, ``batch``
    at a time (the default queue settings: those of :func:`worker_on_fresh_redis`)."""
    queue = load_settings(environ={"GHA_EXPORTER_WEBHOOK__SECRETS": "bench"}).queue
    for start in range(0, len(items), batch):
        built.processor.process_batch(intake_entries(connection, queue, items[start : start + batch]))


def used_memory(connection: Redis) -> int:
    return int(connection.info("memory")["used_memory"])
