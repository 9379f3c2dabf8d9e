"""The fault suite's deliveries and its per-scenario accounting. The cluster of real processes and
the load generator that plays GitHub are :mod:`bench.cluster` and :mod:`bench.load`, shared with the
benchmarks.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from bench.cluster import Cluster, wait_drained
from bench.load import SECRET, LoadGenerator, Send, Stats, sends
from bench.worker_drain import processed
from stack.redis_server import RedisServer
from tests.corpus import Delivery, run_copies
from tests.e2e.system import scrape, total

P = "github_actions_"
RATE = 50.0  # deliveries a second of the scenarios that play GitHub at a steady pace


def stream(runs: int, prefix: str = "g") -> list[Send]:
    """``runs`` copies of the corpus's real run, in GitHub's order."""
    return as_sends(run_copies(runs), prefix)


def as_sends(deliveries: list[Delivery], prefix: str) -> list[Send]:
    return sends(((d.event, d.body) for d in deliveries), prefix)


@dataclass
class Accounting:
    """One scenario's line: what was sent, acknowledged and counted, and what was lost."""

    scenario: str
    sent: int
    attempts: int
    acknowledged: int
    counted: float
    duplicates: int
    errors: float
    lost: int
    statuses: dict[str, int]
    notes: str = ""

    def line(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.scenario:<34} sent {self.sent:>6}  attempts {self.attempts:>6}"
            f"  acknowledged {self.acknowledged:>6}  counted {int(self.counted):>6}"
            f"  duplicates {self.duplicates:>5}  errors {int(self.errors):>3}"
            f"  lost {self.lost:>3}  [{statuses}] {self.notes}"
        )


def check(  # noqa: PLR0917 - the inputs of a scenario's accounting
    cluster: Cluster,
    accounts: list[Accounting],
    scenario: str,
    sends: list[Send],
    stats: Stats,
    runs: int,
    lost_bound: int = 0,
    notes: str = "",
    rss_before: float | None = None,
) -> dict[str, float]:
    """The checks every scenario ends with; returns Redis's figures."""
    connection = cluster.connection()
    acknowledged = len(stats.acknowledged)
    figures = wait_drained(connection, acknowledged - lost_bound)
    if rss_before is not None:
        rss_after = cluster.rss_mb("worker-0")
        notes += f" worker RSS {rss_before:.0f} -> {rss_after:.0f} MB after draining"
        assert rss_after - rss_before < 64  # memory flat: no growth with the number of deliveries
    lost = acknowledged - int(figures["processed"])
    duplicates = stats.statuses["200"]
    accounts.append(
        Accounting(
            scenario,
            len(sends),
            stats.attempts,
            acknowledged,
            figures["processed"],
            duplicates,
            figures["invalid"],
            lost,
            dict(stats.statuses),
            notes,
        )
    )
    assert not stats.unacknowledged, f"{len(stats.unacknowledged)} deliveries never acknowledged"
    assert acknowledged == len({send.guid for send in sends})
    assert 0 <= lost <= lost_bound  # counted exactly once: never more than acknowledged, none lost
    assert figures["failed"] == 0
    assert figures["claimed"] == 0
    assert cluster.died_unexpectedly() == []
    logs = cluster.logs()
    assert SECRET not in logs
    assert '"head_sha"' not in logs  # no payload reaches a log line
    if lost == 0:
        assert figures["jobs_counted"] == 2 * runs
        assert figures["runs_counted"] == runs
        assert figures["inflight"] == 0  # every job completed: nothing queued or running remains
    connection.close()
    return figures


def play_in_background(cluster: Cluster, runs: int) -> tuple[list[Send], Stats, threading.Thread]:
    """``runs`` copies of the real run played at :data:`RATE` to the cluster's receivers, redelivering
    what is not acknowledged (as GitHub's redelivery would), for up to 300 s."""
    sends = stream(runs)
    stats = Stats()
    generator = LoadGenerator(cluster.receiver_ports, threads=32, rate=RATE, deadline_seconds=300)
    player = threading.Thread(target=generator.play, args=(sends, stats))
    player.start()
    return sends, stats, player


def seconds_until_applying(connection: Redis, since: float, timeout: float = 120.0) -> float:
    """From ``since`` until the count of deliveries applied moves (read straight from Redis)."""
    before = processed(connection)
    while time.monotonic() < since + timeout:
        if processed(connection) > before:
            return time.monotonic() - since
        time.sleep(0.05)
    raise AssertionError(f"the worker applied nothing for {timeout:.0f} s")


def synced_replica(workdir: Path, primary_port: int) -> tuple[RedisServer, Redis]:
    """A replica of the primary at ``primary_port``, started and in sync; and a client of it."""
    replica = RedisServer(
        workdir / "replica",
        log_file=workdir / "replica.log",
        extra_args=["--replicaof", "127.0.0.1", str(primary_port)],
    )
    replica.start()
    client = Redis(port=replica.port, socket_timeout=5)
    deadline = time.monotonic() + 60
    while client.info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not sync"
        time.sleep(0.05)
    return replica, client


def process_metric(cluster: Cluster, process: str, name: str) -> float:
    """The sum of ``name``'s samples (default prefix) on ``process``'s ``/metrics``."""
    return total(scrape(f"http://127.0.0.1:{cluster.port_of(process)}/metrics"), f"{P}{name}")
