"""Burst end to end: 100,000 deliveries through two receivers, Redis and one worker: acceptance
rate, time from the last acknowledgement to complete metrics, the exact-accounting check, Redis's
peak memory (queued bodies wait in their marks), and each process's RSS at rest and after. Uses
the cluster and load generator the fault suite uses (:mod:`bench.cluster`, :mod:`bench.load`:
Python threads, keep-alive connections, redelivery of anything not acknowledged)."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from bench.cluster import Cluster, redis_figures
from bench.load import LoadGenerator, sends
from bench.workload import deliveries

DELIVERIES = int(os.environ.get("BENCH_DELIVERIES", "100000"))


def main() -> dict[str, object]:
    runs = -(-DELIVERIES // 9)
    burst = sends(deliveries(runs), prefix="burst")
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), receivers=2, workers=1).start()
        try:
            rest = {name: cluster.rss_mb(name) for name in cluster.processes}
            started = time.monotonic()
            stats = LoadGenerator(cluster.receiver_ports, threads=32, deadline_seconds=900).play(burst)
            sent_seconds = time.monotonic() - started
            last_ack = time.monotonic()
            connection = cluster.connection()
            while redis_figures(connection)["processed"] < len(stats.acknowledged):
                time.sleep(0.05)
            complete = time.monotonic() - last_ack
            figures = redis_figures(connection)
            memory = connection.info("memory")
            after = {name: cluster.rss_mb(name) for name in cluster.processes}
            connection.close()
        finally:
            cluster.shutdown()
    result = {
        "deliveries": len(burst),
        "acknowledged": len(stats.acknowledged),
        "accepted_per_second": round(len(stats.acknowledged) / sent_seconds),
        "metrics_complete_after_last_ack_s": round(complete, 2),
        "counted": int(figures["processed"]),
        "lost": len(stats.acknowledged) - int(figures["processed"]),
        "redis_used_mb_peak": round(int(memory["used_memory_peak"]) / 2**20),
        "redis_used_mb_after": round(int(memory["used_memory"]) / 2**20),
        "rss_mb_at_rest": {k: round(v) for k, v in rest.items()},
        "rss_mb_after": {k: round(v) for k, v in after.items()},
    }
    print(f"burst {result}")  # noqa: T201 - a benchmark prints its figures
    return result


if __name__ == "__main__":
    main()
