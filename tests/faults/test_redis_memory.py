"""Redis at its memory limit (``maxmemory``, ``noeviction``) while no worker drains it."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from bench.cluster import Cluster
from bench.worker_drain import processed
from tests.faults.harness import Accounting, check, play_in_background

pytestmark = pytest.mark.faults

ROOM = 6 * 2**20  # maxmemory above what Redis uses at the start


def test_redis_full_while_no_worker_runs(cluster: Cluster, accounts: list[Accounting]):
    """Expected: with the worker stopped, the receivers fill Redis up to their high-water mark
    (``redis.memory_high_water`` of ``maxmemory``), then answer 503 and report not ready; a worker
    started then drains the backlog in the memory left to it, with no operator action, within 60 s;
    the receivers accept again, and the deliveries answered 503, redelivered, are counted too."""
    cluster.stop_process("worker-0")
    connection = cluster.connection()
    used = int(connection.info("memory")["used_memory"])
    connection.config_set("maxmemory", str(used + ROOM))
    runs = 200  # 1,800 deliveries at 50 a second: Redis is full after about 1,100 of them
    sends, stats, player = play_in_background(cluster, runs)
    deadline = time.monotonic() + 120
    while stats.statuses["503"] < 200:  # full for a while: every thread is being refused
        assert time.monotonic() < deadline, f"Redis never filled: {dict(stats.statuses)}"
        time.sleep(0.1)
    backlog = len(stats.acknowledged)
    memory = connection.info("memory")
    fill = int(memory["used_memory"]) / int(memory["maxmemory"])
    not_ready = [ready_status(cluster, name) for name in ("receiver-0", "receiver-1")]
    started = time.monotonic()
    cluster.start_process("worker-0")
    while processed(connection) < backlog:
        assert time.monotonic() - started < 60, (
            f"{processed(connection)} of {backlog} applied in 60 s: {cluster.logs('worker-0', tail=2000)}"
        )
        time.sleep(0.1)
    drained = time.monotonic() - started
    player.join()
    check(
        cluster,
        accounts,
        "18 Redis full, no worker running",
        sends,
        stats,
        runs,
        notes=(
            f"backlog of {backlog} at {fill:.0%} of maxmemory applied {drained:.1f} s after the worker"
            f" started; 503 answers while full: {stats.statuses['503']}; batches applied in halves:"
            f" {cluster.logs('worker-0').count('applying it in halves')}"
        ),
    )
    assert not_ready == [503, 503]
    connection.close()


def ready_status(cluster: Cluster, name: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{cluster.port_of(name)}/ready", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
