"""Redis going away the way it does in production, between the exporter and Redis: a TCP fault
proxy of our own (:mod:`tests.faults.proxy`) drops everything silently, adds latency, or sends new
connections to a promoted replica while the old ones stay dead. One receiver, one worker, a steady
50 deliveries/s; the same closing checks as every scenario, and the timings in the notes (README,
"Reliability").
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from redis import Redis

from bench.cluster import Cluster
from tests.faults.harness import Accounting, check, play_in_background, seconds_until_applying, synced_replica
from tests.redis_topology import SentinelSet, wait_for

pytestmark = pytest.mark.faults


class ScrapeWatch:
    """Scrapes the worker's /metrics every half second: the slowest answer, and any that failed."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/metrics"
        self.slowest = 0.0
        self.failed = 0
        self.redis_down = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            started = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=30) as response:  # noqa: S310 - our own http URL
                    text = response.read().decode()
                self.redis_down += "github_actions_redis_up 0.0" in text
            except OSError:
                self.failed += 1
            self.slowest = max(self.slowest, time.monotonic() - started)

    def __enter__(self) -> ScrapeWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def test_a_silent_partition_of_20_s_then_heal(proxied, accounts: list[Accounting]):
    """Expected: during the partition every delivery is answered 503 within the receiver's deadline
    (the generator redelivers), every scrape answers at once with redis_up 0, and the worker applies
    deliveries again within seconds of the heal; nothing lost, nothing counted twice."""
    cluster, proxy = proxied
    runs = 200  # 1,800 deliveries at 50/s: 36 s
    sends, stats, player = play_in_background(cluster, runs)
    direct = cluster.connection()
    with ScrapeWatch(cluster.worker_ports[0]) as scrapes:
        time.sleep(6)
        proxy.partition()
        time.sleep(20)
        proxy.heal()
        recovered = seconds_until_applying(direct, time.monotonic())
        player.join()
    direct.close()
    notes = (
        f"slowest answer {stats.slowest_answer:.1f} s, slowest scrape {scrapes.slowest:.1f} s"
        f" ({scrapes.redis_down} with redis_up 0), applying again {recovered:.1f} s after the heal"
    )
    check(cluster, accounts, "11 silent partition 20 s", sends, stats, runs, notes=notes)
    assert stats.statuses["503"] > 0  # the partition was seen
    assert stats.slowest_answer < 10  # the deadline (8 s): GitHub never sees a late 202
    assert scrapes.failed == 0
    assert scrapes.slowest < 5
    assert scrapes.redis_down > 0


def test_200_ms_of_added_latency_for_30_s(proxied, accounts: list[Accounting]):
    """Expected: slower answers, every one within the deadline; scrapes bounded; nothing lost."""
    cluster, proxy = proxied
    runs = 250  # 2,250 deliveries at 50/s: 45 s
    sends, stats, player = play_in_background(cluster, runs)
    with ScrapeWatch(cluster.worker_ports[0]) as scrapes:
        time.sleep(5)
        proxy.latency = 0.2
        time.sleep(30)
        proxy.latency = 0.0
        player.join()
    notes = f"slowest answer {stats.slowest_answer:.1f} s, slowest scrape {scrapes.slowest:.1f} s"
    check(cluster, accounts, "12 Redis latency +200 ms, 30 s", sends, stats, runs, notes=notes)
    assert stats.slowest_answer < 10
    assert scrapes.failed == 0
    assert scrapes.slowest < 5


def test_failover_to_a_promoted_replica_behind_the_proxy(proxied, tmp_path, accounts: list[Accounting]):
    """Expected: the connections to the old primary stay silent for ever; both processes give them
    up within their timeouts and reconnect to the promoted replica through the same address. What
    the primary acknowledged in its last moment may not have reached the replica (asynchronous
    replication; ``redis.min_replicas_ack`` closes that): the loss bound is what was acknowledged in
    the 0.5 s before the failover; the rest is counted once."""
    cluster, proxy = proxied
    replica, promoted = synced_replica(tmp_path, cluster.redis.port)
    runs = 200
    sends, stats, player = play_in_background(cluster, runs)
    with ScrapeWatch(cluster.worker_ports[0]) as scrapes:
        time.sleep(8)
        failover_at = time.time()
        promoted.execute_command("REPLICAOF", "NO", "ONE")
        proxy.failover(replica.port)
        recovered = seconds_until_applying(promoted, time.monotonic())
        player.join()
    old_primary, cluster.redis = cluster.redis, replica  # the checks read the promoted replica
    window = sum(1 for t in stats.ack_times.values() if failover_at - 0.5 <= t <= failover_at)
    notes = (
        f"slowest answer {stats.slowest_answer:.1f} s, slowest scrape {scrapes.slowest:.1f} s,"
        f" applying again {recovered:.1f} s after the failover; acknowledged in the 0.5 s before: {window}"
    )
    try:
        check(
            cluster, accounts, "13 failover to a replica", sends, stats, runs, lost_bound=window, notes=notes
        )
    finally:
        promoted.close()
        old_primary.stop()
    assert stats.slowest_answer < 10
    assert scrapes.slowest < 5


def test_sentinel_failover_with_replicated_acknowledgement(tmp_path, accounts: list[Accounting]):
    """Expected: the primary's process is killed; the Sentinels promote the replica; both processes
    ask the Sentinels again and move over by themselves. With ``redis.min_replicas_ack`` 1 every
    acknowledged delivery was on the replica before its 202: nothing lost. The old primary is started
    again and rejoins as a replica (while there is none, deliveries are answered 503 and redelivered)."""
    topology = SentinelSet(tmp_path / "redis-set").start()
    cluster = Cluster(tmp_path, receivers=1, workers=1)
    cluster.redis = topology.primary
    cluster.extra_env = {
        "GHA_EXPORTER_REDIS__SENTINELS": json.dumps(topology.addresses),
        "GHA_EXPORTER_REDIS__MIN_REPLICAS_ACK": "1",
    }
    try:
        cluster.start()
        runs = 200
        sends, stats, player = play_in_background(cluster, runs)
        promoted = Redis(port=topology.replica.port, socket_timeout=5)
        with ScrapeWatch(cluster.worker_ports[0]) as scrapes:
            time.sleep(8)
            killed = time.monotonic()
            topology.kill_primary()
            wait_for(lambda: topology.primary_port() == topology.replica.port, 60, "no promotion")
            promotion = time.monotonic() - killed
            recovered = seconds_until_applying(promoted, killed)
            topology.primary.start()  # back, as a replica of the new primary
            player.join()
        # the checks read the primary the Sentinels name now: the promoted replica, or (when the
        # Sentinels, down-after 1 s on a loaded machine, failed over again) the old primary back
        now_primary = topology.primary_port()
        cluster.redis = topology.replica if now_primary == topology.replica.port else topology.primary
        notes = (
            f"promoted {promotion:.1f} s after the kill, applying again {recovered:.1f} s after it;"
            f" slowest answer {stats.slowest_answer:.1f} s, slowest scrape {scrapes.slowest:.1f} s"
        )
        check(cluster, accounts, "14 Sentinel failover, min_replicas_ack 1", sends, stats, runs, notes=notes)
        promoted.close()
        assert stats.slowest_answer < 10
        assert scrapes.slowest < 5
    finally:
        cluster.shutdown()
        topology.stop()
