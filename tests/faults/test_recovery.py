"""Back to work within seconds of Redis returning: after a long outage, and for a worker started
before Redis exists."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bench.cluster import Cluster
from bench.load import Send, Stats
from tests.faults.harness import Accounting, check, play_in_background, seconds_until_applying

pytestmark = pytest.mark.faults

BACK_WITHIN = 5.0  # seconds from Redis answering to the first delivery applied


def outage_lines(cluster: Cluster) -> tuple[int, int]:
    logs = cluster.logs("worker-0")
    return logs.count("Redis unreachable"), logs.count("Redis reachable again")


def back_to_work(  # noqa: PLR0917 - a scenario's parts
    cluster: Cluster,
    accounts: list[Accounting],
    scenario: str,
    played: tuple[list[Send], Stats, threading.Thread],
    runs: int,
    since: str,
) -> None:
    """Redis is there again: the time to the first delivery applied, the accounting, the log lines."""
    sends, stats, player = played
    back = time.monotonic()
    connection = cluster.connection()
    applying = seconds_until_applying(connection, back)
    player.join()
    lines = outage_lines(cluster)
    notes = f"applied {applying:.1f} s after Redis {since}; {sum(lines)} outage log lines"
    check(cluster, accounts, scenario, sends, stats, runs, notes=notes)
    assert applying <= BACK_WITHIN
    assert lines == (1, 1)
    connection.close()


def test_an_outage_of_150_s(cluster: Cluster, accounts: list[Accounting]):
    """Expected: Redis stopped for 150 s under load (receivers answer 503, GitHub redelivers); the
    worker applies again within 5 s of Redis's return, logs the outage once as it begins and once
    as it ends, and every acknowledged delivery is counted once."""
    played = play_in_background(cluster, 200)
    time.sleep(10)
    cluster.redis.stop()  # graceful: AOF flushed, nothing acknowledged is lost
    time.sleep(150)
    cluster.redis.start()
    back_to_work(cluster, accounts, "20 Redis down 150 s under load", played, 200, "was back")


def test_a_worker_started_60_s_before_redis(tmp_path: Path, accounts: list[Accounting]):
    """Expected: receivers and worker started while Redis does not exist yet keep trying; once it is
    started they take and apply deliveries within 5 s, and every acknowledged delivery is counted."""
    cluster = Cluster(tmp_path)
    try:
        for name in ("receiver-0", "receiver-1", "worker-0"):
            cluster.start_process(name)
        time.sleep(60)
        played = play_in_background(cluster, 50)  # 503 until Redis is there
        cluster.redis.start()
        back_to_work(cluster, accounts, "21 worker started 60 s before Redis", played, 50, "started")
    finally:
        cluster.shutdown()
