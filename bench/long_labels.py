"""Long labels: 5,000 signed-looking completed jobs, each in a repository with a unique 1 KB name,
applied by the worker's processor (the hostile case of issue 12, which once took Redis from 9.7 to
125.6 MB and one scrape to 282 MB, 9.1 s and 2.6 GB of worker RSS). Prints the Redis memory they
added, the scrape's size and time, and how much the scrape raised this process's peak RSS.

The peak is read from ``ru_maxrss``, so the scrape runs first thing after the jobs are applied, in a
process that did nothing bigger before.
"""

from __future__ import annotations

import resource
import time
from typing import Any

from bench.fresh_worker import apply_through_intake, used_memory, worker_on_fresh_redis
from bench.workload import sample_variants
from receiver.intake import Accepted

JOBS = 5_000
NAME_BYTES = 1_000


def vary(data: dict[str, Any], i: int) -> None:
    """Job ``i``, completed, in a repository of its own with a ``NAME_BYTES`` name."""
    data["repository"]["full_name"] = f"org/{i:06d}-" + "r" * (NAME_BYTES - 11)
    data["workflow_job"]["id"] = 10_000_000 + i


def deliveries() -> list[Accepted]:
    return sample_variants("9-workflow_job-completed.json", JOBS, "long", vary)


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> dict[str, float]:
    items = deliveries()
    with worker_on_fresh_redis() as (connection, built):
        empty = used_memory(connection)
        apply_through_intake(connection, built, items, 100)
        added = used_memory(connection) - empty
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
    print(f"long_labels {result}")  # noqa: T201 - a benchmark prints its figures
    return result


if __name__ == "__main__":
    main()
