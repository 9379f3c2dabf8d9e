"""Backlog: the Redis bytes a queued delivery takes while it waits for a worker (its mark holding the
body, its share of the batch), queued through the receivers' intake in jobs of 32 (the group
commit's batch at 64 connections), bodies as signed and compressed (``queue.compress_bodies``); and
each codec's size and CPU time per delivery on the same real-shaped bodies (about 12 KB)."""

from __future__ import annotations

import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from redis import Redis

from bench.workload import accepted, queue_through_intake
from shared.bodies import pack
from shared.settings_loader import load_settings
from stack.redis_server import RedisServer

RUNS = 1200  # x 9 deliveries
JOB_SIZE = 32


def queued_bytes(compress: bool) -> float:
    """Redis bytes per queued delivery, bodies compressed or not."""
    items = accepted(RUNS, prefix="backlog")
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        environ = {
            "GHA_EXPORTER_REDIS__URL": redis.url,
            "GHA_EXPORTER_WEBHOOK__SECRETS": "b",
            "GHA_EXPORTER_QUEUE__COMPRESS_BODIES": str(compress).lower(),
        }
        connection = Redis.from_url(redis.url)
        empty = int(connection.info("memory")["used_memory"])
        queue_through_intake(connection, load_settings(environ=environ).queue, items, JOB_SIZE)
        used = int(connection.info("memory")["used_memory"]) - empty
        connection.close()
    return used / len(items)


def codecs() -> dict[str, Callable[[bytes], bytes]]:
    return {
        "zlib-1": lambda body: zlib.compress(body, 1),
        "zlib-6": lambda body: zlib.compress(body, 6),
        "lz4 (queue.compress_bodies)": pack,
    }


def compression() -> dict[str, dict[str, float]]:
    bodies = [item.body for item in accepted(200, prefix="codec")]
    size = sum(map(len, bodies))
    figures = {}
    for name, compress in codecs().items():
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            packed = [compress(body) for body in bodies]
            best = min(best, time.perf_counter() - started)
        figures[name] = {
            "ratio": round(sum(map(len, packed)) / size, 3),
            "us_per_delivery": round(best / len(bodies) * 1e6, 1),
        }
    return figures


def main() -> dict[str, object]:
    plain, packed = queued_bytes(compress=False), queued_bytes(compress=True)
    bodies = [item.body for item in accepted(RUNS, prefix="backlog")]
    result: dict[str, object] = {
        "deliveries": len(bodies),
        "mean_body_bytes": round(sum(map(len, bodies)) / len(bodies)),
        "redis_bytes_per_queued_delivery": round(plain),
        "redis_bytes_per_queued_delivery_compressed": round(packed),
        "redis_mb_per_100k": round(plain * 100_000 / 1e6),
        "redis_mb_per_100k_compressed": round(packed * 100_000 / 1e6),
        "compression": compression(),
    }
    print(f"backlog {result}")  # noqa: T201 - a benchmark prints its figures
    return result


if __name__ == "__main__":
    main()
