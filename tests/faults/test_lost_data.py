"""A Redis that comes back without its data (no persistence, a flush, a wrong volume)."""

from __future__ import annotations

import shutil
import time

import pytest

from bench.cluster import Cluster, wait_drained
from bench.load import LoadGenerator, Stats
from tests.faults.harness import Accounting, check, process_metric, stream

pytestmark = pytest.mark.faults

PROCESSES = ("receiver-0", "receiver-1", "worker-0")


def resets(cluster: Cluster) -> list[float]:
    return [process_metric(cluster, process, "redis_dataset_resets_total") for process in PROCESSES]


def test_redis_back_without_its_data(cluster: Cluster, accounts: list[Accounting]):
    """Expected: after Redis restarts empty, every process notices within seconds (an ERROR line,
    redis_dataset_resets_total 1, the dataset's age back near 0); what was counted before is gone
    (the point of the alarm), and the deliveries that follow are counted once."""
    before = stream(50, prefix="before")
    LoadGenerator(cluster.receiver_ports).play(before)
    connection = cluster.connection()
    wait_drained(connection, len(before))
    time.sleep(2.5)  # every process has seen the first epoch
    assert resets(cluster) == [0, 0, 0]
    cluster.redis.stop()
    shutil.rmtree(cluster.redis.data_dir)  # its AOF gone: it comes back empty
    cluster.redis.start()
    back = time.monotonic()
    while resets(cluster) != [1, 1, 1]:
        assert time.monotonic() - back < 30, resets(cluster)
        time.sleep(0.1)
    noticed = time.monotonic() - back
    after = stream(50, prefix="after")
    stats = LoadGenerator(cluster.receiver_ports).play(after, Stats())
    check(
        cluster,
        accounts,
        "22 Redis back without its data",
        after,
        stats,
        50,
        notes=f"{len(before)} deliveries counted before: lost; every process noticed in {noticed:.1f} s",
    )
    assert all("Redis lost its data" in cluster.logs(name) for name in PROCESSES)
    age = process_metric(cluster, "worker-0", "redis_dataset_age_seconds")
    assert age < 60
    connection.close()
