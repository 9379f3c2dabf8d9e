"""The fault suite: every delivery a receiver acknowledged is counted exactly once, whatever crashes.

Each scenario states its expected outcome in its docstring, runs on a fresh cluster, and ends with
the same checks: the accounting (sent, acknowledged, counted, duplicates, errors, lost), the queue and
RQ's registries drained to empty, no job left failed, in-flight gauges at zero when every job
completed, no process dead that the scenario did not stop, and the worker's memory before/after.
The accounts are printed at the end of the run (``tests/faults/conftest.py``).
"""

from __future__ import annotations

import random
import signal
import threading
import time

import pytest
from rq import Queue

from bench.cluster import Cluster, redis_figures, wait_drained
from bench.load import LoadGenerator, Send, Stats
from shared import keys
from tests.corpus import run_copies
from tests.faults.harness import Accounting, as_sends, check, stream

pytestmark = pytest.mark.faults


def test_burst_of_5000_deliveries(cluster, accounts):
    """Expected: every delivery acknowledged on the first try and counted once; nothing left."""
    runs = 556  # 5,004 deliveries
    sends = stream(runs)
    rss = cluster.rss_mb("worker-0")
    stats = LoadGenerator(cluster.receiver_ports, threads=16).play(sends)
    check(cluster, accounts, "1 burst of 5,000", sends, stats, runs, rss_before=rss)
    assert stats.statuses["202"] == len(sends)


def kill_during(sends: list[Send], action, times: int, generator: LoadGenerator) -> Stats:
    """Play ``sends`` while ``action(i)`` runs ``times`` times, spread over the burst."""
    stats = Stats()
    player = threading.Thread(target=generator.play, args=(sends, stats))
    player.start()
    for i in range(times):
        target = (i + 1) * len(sends) // (times + 1)
        while len(stats.acknowledged) < target and player.is_alive():
            time.sleep(0.01)
        action(i)
    player.join()
    return stats


def test_worker_killed_three_times_during_a_burst(cluster, accounts):
    """Expected: each SIGKILL abandons at most its batch (the batch in hand and the batches claimed
    with it); their lease lapses ``worker.lease_seconds`` after the death and any worker's sweeper
    puts them back; replays are skipped; totals exact, nothing lost. Measured: from the last
    acknowledgement until every acknowledged delivery is counted."""
    runs = 300
    sends = stream(runs)

    def kill_and_restart(_: int) -> None:
        cluster.stop_process("worker-0", signal.SIGKILL)
        cluster.start_process("worker-0")

    stats = kill_during(sends, kill_and_restart, 3, LoadGenerator(cluster.receiver_ports))
    last_ack = max(stats.ack_times.values())
    connection = cluster.connection()
    wait_drained(connection, len(stats.acknowledged))
    complete = time.time() - last_ack
    connection.close()
    notes = f"all counted {complete:.1f} s after the last acknowledgement"
    check(cluster, accounts, "2 worker kill -9 x3", sends, stats, runs, notes=notes)


def test_worker_sigterm_50_times_under_load(cluster, accounts):
    """Expected: every SIGTERM ends the worker warm (exit 0) within the bound while deliveries keep
    arriving; it is started again at once; totals exact, nothing lost."""
    runs = 200
    sends = stream(runs)
    exits: list[tuple[int, float]] = []

    def restart(_: int) -> None:
        exits.append(cluster.stop_process("worker-0", signal.SIGTERM, timeout=20))
        cluster.start_process("worker-0")

    generator = LoadGenerator(cluster.receiver_ports, threads=2, deadline_seconds=300)
    stats = Stats()
    player = threading.Thread(target=generator.play, args=(sends, stats))
    player.start()
    for i in range(50):
        restart(i)
    player.join()
    slowest = max(seconds for _, seconds in exits)
    check(
        cluster, accounts, "3 worker SIGTERM x50", sends, stats, runs, notes=f"slowest exit {slowest:.1f} s"
    )
    assert [code for code, _ in exits] == [0] * 50
    assert slowest < 20  # the bound: the job in hand (timeout 2 s) and a 1 s dequeue slice, with margin


def test_redis_restarted_then_killed_during_a_burst(cluster, accounts):
    """Expected: while Redis is down the receivers answer 503 and the generator redelivers; both
    processes recover by themselves. A graceful restart loses nothing; kill -9 loses at most what
    AOF had not yet written (everysec: about the last second's acknowledged deliveries)."""
    runs = 300
    sends = stream(runs)
    kill_times: list[float] = []

    def restart_redis(i: int) -> None:
        if i == 0:
            cluster.redis.stop()  # graceful: SIGTERM, AOF flushed
        else:
            kill_times.append(time.time())
            cluster.redis.kill()
        time.sleep(1.0)
        cluster.redis.start()

    stats = kill_during(sends, restart_redis, 2, LoadGenerator(cluster.receiver_ports, deadline_seconds=180))
    window = sum(1 for t in stats.ack_times.values() if kill_times[0] - 1.5 <= t <= kill_times[0])
    figures = check(
        cluster,
        accounts,
        "4 Redis restart, then kill -9",
        sends,
        stats,
        runs,
        lost_bound=window,
        notes=f"acknowledged in the 1.5 s before the kill: {window}",
    )
    assert stats.statuses["503"] + stats.statuses["connection error"] > 0  # the outage was seen
    assert figures["processed"] > 0


def test_receiver_killed_during_a_burst(cluster, accounts):
    """Expected: requests in flight at the killed receiver fail and are redelivered to the other;
    the receiver restarts; every acknowledged delivery counted once, nothing lost."""
    runs = 300
    sends = stream(runs)

    def kill_receiver(_: int) -> None:
        cluster.stop_process("receiver-0", signal.SIGKILL)
        time.sleep(0.5)
        cluster.start_process("receiver-0")

    stats = kill_during(sends, kill_receiver, 1, LoadGenerator(cluster.receiver_ports))
    check(cluster, accounts, "5 receiver kill -9", sends, stats, runs)


def test_duplicates_and_replays_with_fresh_delivery_ids(cluster, accounts):
    """Expected: a redelivery (same delivery id) is answered 200 and not queued; a replay with a new
    id is queued and counted as unchanged; the totals equal those of each delivery sent once."""
    runs = 200
    deliveries = run_copies(runs)
    sends = as_sends(deliveries, "g")
    generator = LoadGenerator(cluster.receiver_ports)
    stats = generator.play(sends)
    stats = generator.play(sends, stats)  # every delivery redelivered with its delivery id
    replays = as_sends(deliveries, "replay")
    generator.play(replays, stats)
    figures = check(cluster, accounts, "6 duplicates and replays", sends + replays, stats, runs)
    assert stats.statuses["200"] == len(sends)
    connection = cluster.connection()
    unchanged = connection.hget(
        keys.aggregate("webhook_deliveries_processed_total", ("event", "result")),
        'event="workflow_job",result="unchanged"\x1fv',
    )
    assert float(unchanged) >= 6 * runs  # every replayed job delivery changed nothing
    assert figures["processed"] == 2 * len(sends)
    connection.close()


def test_every_jobs_deliveries_shuffled(cluster, accounts):
    """Expected: deliveries of each run arrive in random order; counts, durations and queue times
    end as in order (checked in detail by the property tests); nothing left in flight."""
    runs = 300
    sends = stream(runs)
    random.Random(5).shuffle(sends)  # noqa: S311 - reproducible order, not a secret
    rss = cluster.rss_mb("worker-0")
    stats = LoadGenerator(cluster.receiver_ports).play(sends)
    check(cluster, accounts, "7 out of order", sends, stats, runs, rss_before=rss)


def test_redis_at_its_memory_limit(cluster, accounts):
    """Expected: with Redis full, receivers answer 503 (the mark and the job are one transaction, so
    no partial delivery is stored) and workers retry; once memory frees, everything goes through."""
    runs = 150
    sends = stream(runs)
    connection = cluster.connection()
    used = int(connection.info("memory")["used_memory"])
    connection.config_set("maxmemory", str(used + 200_000))
    stats = Stats()
    player = threading.Thread(
        target=LoadGenerator(cluster.receiver_ports, deadline_seconds=180).play, args=(sends, stats)
    )
    player.start()
    deadline = time.monotonic() + 60
    while stats.statuses["503"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    connection.config_set("maxmemory", "0")  # memory frees
    player.join()
    check(
        cluster,
        accounts,
        "8 Redis at its memory limit",
        sends,
        stats,
        runs,
        notes=f"503 answers while full: {stats.statuses['503']}",
    )
    assert stats.statuses["503"] > 0
    connection.close()


def test_garbage_jobs_placed_on_the_queue(cluster, accounts):
    """Expected: a job with garbage arguments is counted (bad_batch) and not retried; a job naming a
    function that does not exist fails, is retried max_retries times, then rests in the failed
    registry; the worker lives on and keeps counting real deliveries."""
    connection = cluster.connection()
    queue = Queue("gha-exporter", connection=connection, serializer="rq.serializers.JSONSerializer")
    queue.enqueue("worker.batches.apply_batch", "garbage", result_ttl=60)
    queue.enqueue("worker.batches.apply_batch", [{"not": "an envelope"}, 42], result_ttl=60)
    from rq import Retry  # noqa: PLC0415

    queue.enqueue("worker.batches.does_not_exist", [], retry=Retry(max=2), result_ttl=60, failure_ttl=600)
    runs = 50
    sends = stream(runs)
    stats = LoadGenerator(cluster.receiver_ports).play(sends)
    deadline = time.monotonic() + 60
    while redis_figures(connection)["failed"] < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    figures = wait_drained(connection, len(sends))
    assert figures["failed"] == 1  # the unknown function, after its retries
    assert figures["processed"] == len(sends)
    assert cluster.died_unexpectedly() == []
    worker_metrics = cluster_metrics(cluster)
    assert worker_metrics.count('reason="bad_batch"') == 1
    assert (
        'github_actions_webhook_processing_errors_total{event="unknown",reason="bad_batch"} 1.0'
        in worker_metrics
    )
    assert (
        'github_actions_webhook_processing_errors_total{event="unknown",reason="bad_envelope"} 2.0'
        in worker_metrics
    )
    accounts.append(
        Accounting(
            "9 garbage jobs on the queue",
            len(sends),
            stats.attempts,
            len(stats.acknowledged),
            figures["processed"],
            stats.statuses["200"],
            3,
            0,
            dict(stats.statuses),
            "bad_batch 1, bad_envelope 2 counted; unknown function failed after 2 retries",
        )
    )
    connection.close()


def cluster_metrics(cluster: Cluster) -> str:
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.worker_ports[0]}/metrics", timeout=5) as r:
        return r.read().decode()


def test_slow_clients_do_not_starve_the_receiver(cluster, accounts):
    """Expected: while 300 connections trickle their headers (below receiver.limit_concurrency),
    every real delivery is still answered 202 at once. (How far this goes is measured by
    ``python -m bench slow_clients``; put a reverse proxy in front to absorb slow clients.)"""
    from bench.slowloris import real_deliveries_under_slow_clients  # noqa: PLC0415

    result = real_deliveries_under_slow_clients(cluster.receiver_ports[0], slow=300)
    assert result["still_connected"] == 300
    assert result["answers"] == {"202": 90}
    connection = cluster.connection()
    figures = wait_drained(connection, 90)
    assert figures["processed"] == 90
    connection.close()
    accounts.append(
        Accounting(
            "slow clients (300 trickling)",
            90,
            90,
            90,
            figures["processed"],
            0,
            0,
            0,
            result["answers"],
            "every real delivery answered at once",
        )
    )
