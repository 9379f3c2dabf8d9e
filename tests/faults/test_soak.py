"""The 30-minute soak at a steady rate (opt in: ``pytest -m soak tests/faults``)."""

from __future__ import annotations

import threading
import time

import pytest

from bench.cluster import wait_drained
from bench.load import LoadGenerator, Stats
from tests.faults.harness import Accounting, stream

MINUTES = 30
pytestmark = [pytest.mark.soak, pytest.mark.timeout(MINUTES * 60 + 900)]
RATE = 20  # deliveries per second


def test_soak_at_a_steady_rate(cluster, accounts):
    """Expected: every delivery counted once; RSS and Redis memory level off (printed)."""
    runs = MINUTES * 60 * RATE // 9
    sends = stream(runs)
    connection = cluster.connection()
    start = (
        cluster.rss_mb("worker-0"),
        cluster.rss_mb("receiver-0"),
        connection.info("memory")["used_memory"],
    )
    generator, stats = (
        LoadGenerator(cluster.receiver_ports, threads=1, deadline_seconds=MINUTES * 60 + 300),
        Stats(),
    )
    began = time.monotonic()
    for index in range(0, len(sends), RATE):
        player = threading.Thread(target=generator.play, args=(sends[index : index + RATE], stats))
        player.start()
        player.join()
        time.sleep(max(0.0, began + (index // RATE + 1) - time.monotonic()))
    figures = wait_drained(connection, len(stats.acknowledged))
    end = (cluster.rss_mb("worker-0"), cluster.rss_mb("receiver-0"), connection.info("memory")["used_memory"])
    accounts.append(
        Accounting(
            f"10 soak {MINUTES} min at {RATE}/s",
            len(sends),
            stats.attempts,
            len(stats.acknowledged),
            figures["processed"],
            stats.statuses["200"],
            figures["invalid"],
            0,
            dict(stats.statuses),
            f"RSS worker {start[0]:.0f}->{end[0]:.0f} MB, receiver {start[1]:.0f}->{end[1]:.0f} MB, "
            f"Redis {start[2] / 1e6:.1f}->{end[2] / 1e6:.1f} MB",
        )
    )
    assert figures["processed"] == len(stats.acknowledged) == len(sends)
    connection.close()
