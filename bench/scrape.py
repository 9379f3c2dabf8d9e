"""Scrape: the worker's /metrics render time and size with 10,000 and 100,000 series in Redis."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from redis import Redis

from shared.settings import load_settings
from stack.redis_server import RedisServer
from worker.ledger import Ledger
from worker.metrics import LabelPolicy

SIZES = (10_000, 100_000)


def fill(ledger: Ledger, policy: LabelPolicy, series: int) -> None:
    """``series`` label sets over the job counters and histograms, written as the worker writes them."""
    batch = 500
    for start in range(0, series, batch):
        updates = []
        for i in range(start, min(series, start + batch)):
            values = {
                "repository": f"org/repo-{i % 500}",
                "workflow": "CI",
                "job": f"job-{i}",
                "conclusion": "success",
                "runner_group": "GitHub Actions",
                "runs_on": "ubuntu-latest",
                "attempt": "first",
            }
            updates.append(policy.update("job_run_total", values, "inc", 1))
        with ledger.connection.pipeline() as pipe:
            pipe.multi()
            ledger.write(pipe, {}, {}, updates)
            pipe.execute()


def main() -> list[dict[str, int]]:
    from worker.__main__ import build_processor  # noqa: PLC0415 - the worker's own wiring

    results = []
    for series in SIZES:
        with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
            os.environ.update(
                GHA_EXPORTER_REDIS__URL=redis.url,
                GHA_EXPORTER_WEBHOOK__SECRETS="bench",
                GHA_EXPORTER_METRICS__MAX_SERIES_PER_FAMILY=str(series * 2),
            )
            connection = Redis.from_url(redis.url)
            registry = CollectorRegistry()
            _, ledger = build_processor(connection, load_settings(), registry)
            fill(ledger, ledger.policy, series)
            timings = []
            for _ in range(5):
                started = time.perf_counter()
                body = generate_latest(registry)
                timings.append(time.perf_counter() - started)
            connection.close()
        result = {"series": series, "render_ms": round(min(timings) * 1000), "bytes": len(body)}
        print(f"scrape {result}")  # noqa: T201 - a benchmark prints its figures
        results.append(result)
    return results


if __name__ == "__main__":
    main()
