"""Worker processing: deliveries/s applied to Redis state and aggregates by one process.

Feeds real-shaped deliveries (copies of a real 9-delivery run with two jobs, each copy its own run
and job ids) straight to the worker's batch processor on a fresh local Redis, in batches, and
reports deliveries/s and Redis memory per job/run attempt. RQ's own bookkeeping is not included:
it is measured with the queue by the end-to-end benchmark.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from redis import Redis

from shared.settings import load_settings
from stack.redis_server import RedisServer

SEQUENCE_DIR = Path(__file__).resolve().parent.parent / "stack" / "samples"


def run_copies(count: int) -> list[dict[str, Any]]:
    originals = [
        (path.name.split("-")[1], json.loads(path.read_text()))
        for path in sorted(SEQUENCE_DIR.glob("*.json"), key=lambda p: int(p.name.split("-")[0]))
    ]
    items: list[dict[str, Any]] = []
    for index in range(count):
        for event, original in originals:
            data = json.loads(json.dumps(original))
            obj = data.get("workflow_job") or data["workflow_run"]
            obj["id"] = obj["id"] * 100_000 + index
            if "run_id" in obj:
                obj["run_id"] = obj["run_id"] * 100_000 + index
            items.append({"event": event, "delivery_id": f"{index}-{len(items)}", "hook_id": "bench",
                          "received_at": time.time(), "body": json.dumps(data)})  # fmt: skip
    return items


def main(runs: int = 2000, batch: int = 50) -> dict[str, float]:
    from worker.__main__ import build_processor  # noqa: PLC0415 - the worker's own wiring

    with tempfile.TemporaryDirectory() as data, RedisServer(Path(data)) as server:
        os.environ.update(GHA_EXPORTER_REDIS__URL=server.url, GHA_EXPORTER_WEBHOOK__SECRETS="bench")
        connection = Redis.from_url(server.url)
        processor, _ = build_processor(connection, load_settings(), CollectorRegistry())
        items = run_copies(runs)
        before = int(connection.info("memory")["used_memory"])
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
