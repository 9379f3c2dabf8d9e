"""Long labels: 5,000 signed-looking completed jobs, each in a repository with a unique 1 KB name,
applied by the worker's processor (the hostile case of issue 12, which once took Redis from 9.7 to
125.6 MB and one scrape to 282 MB, 9.1 s and 2.6 GB of worker RSS). Prints the Redis memory they
added, the scrape's size and time, and how much the scrape raised this process's peak RSS.

The peak is read from ``ru_maxrss``, so the scrape runs first thing after the jobs are applied, in a
process that did nothing bigger before.
"""

from __future__ import annotations

import json
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from redis import Redis

from shared.envelope import Envelope
from shared.settings import load_settings
from stack.redis_server import RedisServer

JOBS = 5_000
NAME_BYTES = 1_000
SAMPLE = Path(__file__).resolve().parent.parent / "stack" / "samples" / "9-workflow_job-completed.json"


def deliveries() -> list[dict[str, Any]]:
    data = json.loads(SAMPLE.read_text())
    data = data.get("payload", data)
    items = []
    for i in range(JOBS):
        data["repository"]["full_name"] = f"org/{i:06d}-" + "r" * (NAME_BYTES - 11)
        data["workflow_job"]["id"] = 10_000_000 + i
        body = json.dumps(data).encode()
        items.append(Envelope.from_bytes("workflow_job", f"long-{i}", "1", time.time(), body).to_dict())
    return items


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> dict[str, float]:
    from worker.__main__ import build_processor  # noqa: PLC0415 - the worker's own wiring

    items = deliveries()
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        settings = load_settings(
            environ={"GHA_EXPORTER_REDIS__URL": redis.url, "GHA_EXPORTER_WEBHOOK__SECRETS": "bench"}
        )
        connection = Redis.from_url(redis.url)
        built = build_processor(connection, settings, CollectorRegistry())
        empty = int(connection.info("memory")["used_memory"])
        for start in range(0, JOBS, 100):
            built.processor.process_batch(items[start : start + 100])
        added = int(connection.info("memory")["used_memory"]) - empty
        del items
        before = peak_mb()
        started = time.perf_counter()
        size = sum(len(chunk) for chunk in built.exposition.stream("")[0])
        took = time.perf_counter() - started
        result = {
            "jobs": JOBS,
            "name_bytes": NAME_BYTES,
            "redis_added_mb": round(added / 1e6, 1),
            "scrape_mb": round(size / 1e6, 1),
            "scrape_ms": round(took * 1000),
            "scrape_peak_rss_added_mb": round(peak_mb() - before, 1),
        }
        connection.close()
    print(f"long_labels {result}")  # noqa: T201 - a benchmark prints its figures
    return result


if __name__ == "__main__":
    main()
