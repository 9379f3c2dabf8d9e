"""Worker: a queue pre-filled with real-shaped deliveries (mixed workflow_run/workflow_job, ten
repositories), queued through the receivers' intake in batches of 100, then of 10 (group commit
batches are small when Redis answers fast); deliveries/s drained into metrics by one
``python -m worker`` process, then by two. Three workloads (:data:`bench.workload.WORKLOADS`):
``distinct`` (copies of a real run in GitHub's order), ``lifecycles`` (the same, shuffled) and
``repetition`` (seven in nine deliveries of one job, then distinct completed jobs); ``BENCH_WORKLOADS``
picks some (comma-separated)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from redis import Redis

from bench.workload import accepted, queue_through_intake
from shared import keys
from shared.settings_loader import load_settings
from stack.ports import free_port
from stack.redis_server import RedisServer

RUNS = int(os.environ.get("BENCH_RUNS", "3000"))  # x 9 deliveries
BATCH = 100
TARGET = 3000  # deliveries/s per process, on every workload
PROCESSED_KEY = keys.aggregate("webhook_deliveries_processed_total", ("event", "result"))


def processed(connection: Redis) -> float:
    """Deliveries applied so far, from the exact Redis-side count."""
    return sum(float(v) for v in connection.hgetall(PROCESSED_KEY).values())


def drain(
    workers: int,
    job_size: int = BATCH,
    workload: str = "distinct",
    settings_env: dict[str, str] | None = None,
    after: Callable[[Redis], dict[str, float | str]] | None = None,
) -> dict[str, float | str]:
    """Deliveries/s drained; ``settings_env``: more settings of the workers; ``after``: figures
    read from Redis once drained (before it stops)."""
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        config = {"GHA_EXPORTER_REDIS__URL": redis.url, "GHA_EXPORTER_WEBHOOK__SECRETS": "bench"}
        config.update(settings_env or {})
        settings = load_settings(environ=config)
        connection = Redis.from_url(redis.url)
        items = accepted(RUNS, workload=workload)
        queue_through_intake(connection, settings.queue, items, job_size)
        env = {**os.environ, **config, "GHA_EXPORTER_LOG__LEVEL": "warning"}
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "worker"], env={**env, "GHA_EXPORTER_WORKER__PORT": str(free_port())}
            )
            for _ in range(workers)
        ]
        try:
            while processed(connection) == 0:  # timed from the first delivery applied: no start-up cost
                time.sleep(0.005)
            started = time.monotonic()
            first = processed(connection)
            while processed(connection) < len(items):
                time.sleep(0.02)
            elapsed = time.monotonic() - started
            extra = after(connection) if after is not None else {}
        finally:
            for process in processes:
                process.terminate()
                process.wait(30)
        connection.close()
    result: dict[str, float | str] = {
        "workload": workload,
        "workers": workers,
        "deliveries": len(items),
        "deliveries_per_job": job_size,
        "seconds": round(elapsed, 2),
        "deliveries_per_second": round((len(items) - first) / elapsed),
        **extra,
    }
    print(f"worker_drain {result}")  # noqa: T201 - a benchmark prints its figures
    return result


def main() -> list[dict[str, float | str]]:
    chosen = os.environ.get("BENCH_WORKLOADS", "distinct,lifecycles,repetition").split(",")
    results = []
    for workload in chosen:
        one = drain(1, workload=workload)
        results.append(one)
        verdict = "met" if float(one["deliveries_per_second"]) >= TARGET else "not met"
        print(f"worker_drain workload={workload} one worker: target >= {TARGET}/s {verdict}")  # noqa: T201
        if workload == "distinct":
            # two workers; and jobs of 10, as a burst's group commit makes them
            results += [drain(2), drain(1, job_size=10)]
    return results


if __name__ == "__main__":
    main()
