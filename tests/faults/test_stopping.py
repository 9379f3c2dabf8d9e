"""SIGTERM whatever Redis is doing: a rollout or a node drain during a Redis outage must not end in
SIGKILL. Each scenario stops the receiver and the worker while Redis is partitioned away, failing
over, or holding a large backlog; each process must exit within its grace (10 s by default:
``receiver.graceful_shutdown_seconds``, ``worker.stop_grace_seconds``), and nothing acknowledged may
be lost (the batch in hand is applied in one transaction or not at all, and an abandoned one goes
back to the queue when its lease lapses). The exit times go to the notes (README, "Reliability").
"""

from __future__ import annotations

import signal
import threading
import time

import pytest

from bench.cluster import Cluster, wait_drained
from bench.load import LoadGenerator
from bench.worker_drain import processed
from tests.faults.harness import Accounting, check, play_in_background, stream, synced_replica

pytestmark = pytest.mark.faults
GRACE = 10.0  # both processes' default
MARGIN = 2.0  # the interpreter's own exit, the test's polling


def stop_both(cluster: Cluster) -> dict[str, tuple[int, float]]:
    """SIGTERM the receiver and the worker at the same moment; each one's exit status and seconds."""
    exits: dict[str, tuple[int, float]] = {}

    def stop(name: str) -> None:
        exits[name] = cluster.stop_process(name, signal.SIGTERM, timeout=60)

    threads = [threading.Thread(target=stop, args=(name,)) for name in ("receiver-0", "worker-0")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return exits


def described(exits: dict[str, tuple[int, float]]) -> str:
    return ", ".join(
        f"{name} exit {code} in {seconds:.1f} s" for name, (code, seconds) in sorted(exits.items())
    )


def assert_in_grace(exits: dict[str, tuple[int, float]]) -> None:
    for name, (code, seconds) in exits.items():
        assert seconds < GRACE + MARGIN, (name, seconds)
        # 0: a warm stop; -SIGTERM: uvicorn ends by re-raising the signal; 1: the deadline fired
        assert code in (0, -signal.SIGTERM, 1), (name, code)


def test_sigterm_during_a_silent_partition(proxied, accounts: list[Accounting]):
    """Expected: both processes exit within their grace although every Redis call hangs; started
    again while the partition lasts, they wait for Redis; after the heal everything acknowledged is
    counted once, nothing lost."""
    cluster, proxy = proxied
    runs = 150  # 1,350 deliveries at 50/s: 27 s
    sends, stats, player = play_in_background(cluster, runs)
    time.sleep(6)
    proxy.partition()
    time.sleep(3)  # requests and a batch are waiting on Redis
    exits = stop_both(cluster)
    cluster.start_process("receiver-0")
    cluster.start_process("worker-0")
    proxy.heal()
    player.join()
    check(cluster, accounts, "15 SIGTERM during a partition", sends, stats, runs, notes=described(exits))
    assert_in_grace(exits)
    assert stats.statuses["503"] + stats.statuses["connection error"] > 0  # the partition was seen


def test_sigterm_during_a_failover(proxied, tmp_path, accounts: list[Accounting]):
    """Expected: the connections to the old primary stay silent for ever; SIGTERM right after the
    failover: both processes exit within their grace; started again, they reach the promoted replica.
    The loss bound is what the old primary acknowledged in its last 0.5 s and never replicated
    (asynchronous replication, as in scenario 13); the rest is counted once."""
    cluster, proxy = proxied
    replica, promoted = synced_replica(tmp_path, cluster.redis.port)
    runs = 150
    sends, stats, player = play_in_background(cluster, runs)
    time.sleep(6)
    failover_at = time.time()
    promoted.execute_command("REPLICAOF", "NO", "ONE")
    proxy.failover(replica.port)
    exits = stop_both(cluster)
    cluster.start_process("receiver-0")
    cluster.start_process("worker-0")
    player.join()
    old_primary, cluster.redis = cluster.redis, replica  # the checks read the promoted replica
    window = sum(1 for t in stats.ack_times.values() if failover_at - 0.5 <= t <= failover_at)
    notes = f"{described(exits)}; acknowledged in the 0.5 s before: {window}"
    try:
        check(
            cluster,
            accounts,
            "16 SIGTERM during a failover",
            sends,
            stats,
            runs,
            lost_bound=window,
            notes=notes,
        )
    finally:
        promoted.close()
        old_primary.stop()
    assert_in_grace(exits)


def test_worker_sigterm_with_a_20000_delivery_backlog(tmp_path, accounts: list[Accounting]):
    """Expected: deliveries queued while no worker runs; a worker starts draining them and is asked
    to stop in the middle: it exits after the batch in hand (warm, exit 0); the next one drains the
    rest; each delivery counted once, nothing lost."""
    cluster = Cluster(tmp_path, receivers=2, workers=1).start()
    try:
        cluster.stop_process("worker-0")
        runs = 2223  # 20,007 deliveries
        sends = stream(runs)
        stats = LoadGenerator(cluster.receiver_ports, threads=16, deadline_seconds=300).play(sends)
        connection = cluster.connection()
        cluster.start_process("worker-0")
        while processed(connection) < 2000:  # draining: a batch is in hand
            time.sleep(0.02)
        code, seconds = cluster.stop_process("worker-0", signal.SIGTERM, timeout=60)
        at_stop = processed(connection)
        cluster.start_process("worker-0")
        wait_drained(connection, len(stats.acknowledged), timeout=300)
        connection.close()
        notes = f"worker exit {code} in {seconds:.1f} s with {at_stop:.0f} of {len(sends)} applied"
        check(cluster, accounts, "17 worker SIGTERM, 20,007 backlog", sends, stats, runs, notes=notes)
    finally:
        cluster.shutdown()
    assert code == 0
    assert seconds < GRACE + MARGIN
    assert at_stop < len(sends)  # stopped in the middle of the backlog
