"""Scrape: the worker's /metrics render time and size with 10,000 and 100,000 series in Redis, and
the same over HTTP, plain and gzipped; then 10,000 job duration histogram series with an exemplar
in every bucket, rendered as text and as OpenMetrics (with the exemplars), and the Redis bytes per
histogram series with and without exemplars."""

from __future__ import annotations

import functools
import time
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from bench.fresh_worker import used_memory, worker_on_fresh_redis
from shared.http_server import HttpServer
from worker.ledger import Ledger
from worker.metrics import LabelPolicy

T = TypeVar("T")
SIZES = (10_000, 100_000)
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
HISTOGRAMS = 10_000


def job_values(i: int) -> dict[str, str]:
    """The labels of the ``i``-th job of the benchmark: a series of its own."""
    return {
        "repository": f"org/repo-{i % 500}",
        "workflow": "CI",
        "job": f"job-{i}",
        "conclusion": "success",
        "runner_group": "GitHub Actions",
        "runs_on": "ubuntu-latest",
        "attempt": "first",
    }


def fill(ledger: Ledger, policy: LabelPolicy, series: int) -> None:
    """``series`` label sets over the job counters and histograms, written as the worker writes them."""
    batch = 500
    for start in range(0, series, batch):
        updates = []
        for i in range(start, min(series, start + batch)):
            updates.append(policy.update("job_run_total", job_values(i), "inc", 1))
        ledger.add(updates)


def fill_histograms(ledger: Ledger, policy: LabelPolicy, series: int) -> None:
    """``series`` job duration histograms, one observation in each of their buckets, each with its
    job as exemplar (as the worker writes them: the newest job of a bucket)."""
    bounds = policy.buckets_of("job_run_duration_seconds")
    for start in range(0, series, 100):
        updates = []
        for i in range(start, min(series, start + 100)):
            values = job_values(i)
            for b, bound in enumerate((*bounds, bounds[-1] * 2)):
                job = 17_000_000_000 + i * 100 + b
                updates.append(policy.update(
                    "job_run_duration_seconds", values, "observe", bound * 0.9, at=1_790_000_000.0 + b,
                    exemplar=f'run_id="{9_000_000_000 + i}",job_id="{job}"',
                ))  # fmt: skip
        ledger.add(updates)


def room_for(series: int) -> dict[str, str]:
    """Settings that let each family hold ``series`` series (and more)."""
    return {"GHA_EXPORTER_METRICS__MAX_SERIES_PER_FAMILY": str(series * 2)}


def histograms() -> dict[str, int]:
    """Histogram series with exemplars: render times per format, Redis bytes with and without."""
    result: dict[str, int] = {"histogram_series": HISTOGRAMS}
    for exemplars in ("true", "false"):
        fresh = worker_on_fresh_redis(**room_for(HISTOGRAMS), GHA_EXPORTER_METRICS__EXEMPLARS=exemplars)
        with fresh as (connection, built):
            empty = used_memory(connection)
            fill_histograms(built.ledger, built.policy, HISTOGRAMS)
            per_series = (used_memory(connection) - empty) // HISTOGRAMS
            if exemplars == "true":
                result["redis_bytes_per_series"] = per_series
                text_s, (text, _) = best_of(built.exposition.render)
                om_s, (om, _) = best_of(functools.partial(built.exposition.render, OPENMETRICS))
                result |= {
                    "text_ms": round(text_s * 1000), "text_bytes": len(text),
                    "openmetrics_ms": round(om_s * 1000), "openmetrics_bytes": len(om),
                    "exemplars": om.count(b" # {"),
                }  # fmt: skip
            else:
                result["redis_bytes_per_series_without_exemplars"] = per_series
    print(f"scrape {result}")  # noqa: T201 - a benchmark prints its figures
    return result


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
    results = []
    for series in SIZES:
        with worker_on_fresh_redis(**room_for(series)) as (_connection, built):
            fill(built.ledger, built.policy, series)
            render_s, (body, _) = best_of(built.exposition.render)
            server = HttpServer("127.0.0.1", 0, built.exposition.stream, lambda: True)
            server.start()
            url = f"http://127.0.0.1:{server.port}/metrics"
            http_s, _ = best_of(functools.partial(fetch, url, {}))
            gzip_s, gzipped = best_of(functools.partial(fetch, url, {"Accept-Encoding": "gzip"}))
            server.stop()
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
    results.append(histograms())
    return results


if __name__ == "__main__":
    main()
