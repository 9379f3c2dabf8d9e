"""Scrape: the worker's /metrics render time and size with 10,000 and 100,000 series in Redis, and
the same over HTTP, plain and gzipped."""

from __future__ import annotations

import functools
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from prometheus_client import CollectorRegistry
from redis import Redis

from shared.metrics_http import MetricsServer
from shared.settings import load_settings
from stack.redis_server import RedisServer
from worker.ledger import Ledger
from worker.metrics import LabelPolicy

T = TypeVar("T")
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
        ledger.add(updates)


def best_of(call: Callable[[], T], times: int = 5) -> tuple[float, T]:
    timings = []
    for _ in range(times):
        started = time.perf_counter()
        result = call()
        timings.append(time.perf_counter() - started)
    return min(timings), result


def fetch(url: str, headers: dict[str, str]) -> bytes:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:  # noqa: S310
        return bytes(response.read())


def main() -> list[dict[str, int]]:
    from worker.__main__ import build_processor  # noqa: PLC0415 - the worker's own wiring

    results = []
    for series in SIZES:
        with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
            settings = load_settings(
                environ={
                    "GHA_EXPORTER_REDIS__URL": redis.url,
                    "GHA_EXPORTER_WEBHOOK__SECRETS": "bench",
                    "GHA_EXPORTER_METRICS__MAX_SERIES_PER_FAMILY": str(series * 2),
                }
            )
            connection = Redis.from_url(redis.url)
            registry = CollectorRegistry()
            built = build_processor(connection, settings, registry)
            fill(built.ledger, built.policy, series)
            render_s, (body, _) = best_of(built.exposition.render)
            server = MetricsServer("127.0.0.1", 0, built.exposition.stream, lambda: True)
            server.start()
            url = f"http://127.0.0.1:{server.port}/metrics"
            http_s, _ = best_of(functools.partial(fetch, url, {}))
            gzip_s, gzipped = best_of(functools.partial(fetch, url, {"Accept-Encoding": "gzip"}))
            server.stop()
            connection.close()
        result = {
            "series": series,
            "render_ms": round(render_s * 1000),
            "bytes": len(body),
            "http_ms": round(http_s * 1000),
            "http_gzip_ms": round(gzip_s * 1000),
            "gzip_bytes": len(gzipped),
        }
        print(f"scrape {result}")  # noqa: T201 - a benchmark prints its figures
        results.append(result)
    return results


if __name__ == "__main__":
    main()
