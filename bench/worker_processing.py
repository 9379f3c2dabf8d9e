"""Worker processing: deliveries/s applied to Redis state and aggregates by one process.

Feeds real-shaped deliveries (copies of a real 9-delivery run with two jobs, each copy its own run
and job ids) straight to the worker's batch processor on a fresh local Redis, in batches, and
reports deliveries/s and Redis memory per job/run attempt. RQ's own bookkeeping is not included:
it is measured with the queue by the end-to-end benchmark.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry
from redis import Redis

from bench.workload import accepted, intake_entries
from shared.settings_loader import load_settings
from stack.redis_server import RedisServer


def main(runs: int = 2000, batch: int = 50) -> dict[str, float]:
    from worker.__main__ import build_processor  # noqa: PLC0415 - the worker's own wiring

    with tempfile.TemporaryDirectory() as data, RedisServer(Path(data)) as server:
        settings = load_settings(
            environ={"GHA_EXPORTER_REDIS__URL": server.url, "GHA_EXPORTER_WEBHOOK__SECRETS": "bench"}
        )
        connection = Redis.from_url(server.url)
        processor = build_processor(connection, settings, CollectorRegistry()).processor
        before = int(connection.info("memory")["used_memory"])
        items = intake_entries(connection, settings.queue, accepted(runs))  # marks as the receiver writes
        started = time.perf_counter()
        for start in range(0, len(items), batch):
            processor.process_batch(items[start : start + batch])
        elapsed = time.perf_counter() - started
        after = int(connection.info("memory")["used_memory"])
        connection.close()
    figures = {
        "deliveries": len(items),
        "batch_size": batch,
        "seconds": round(elapsed, 3),
        "deliveries_per_second": round(len(items) / elapsed),
        "redis_bytes_per_attempt": round((after - before) / (runs * 3)),
    }
    for name, value in figures.items():
        print(f"worker_processing {name} {value}")  # noqa: T201 - a benchmark prints its figures
    return figures


if __name__ == "__main__":
    main()
