"""The fault suite's cluster and load generator, all on loopback.

The cluster: a real Redis (AOF ``everysec``, ``noeviction``), receivers and workers as real
processes with RQ's timeouts shortened. The load generator plays GitHub: it signs real-shaped
deliveries, round-robins the receivers, and redelivers (same delivery id) anything that did not
get a 2xx, like a user pressing "Redeliver", until it is acknowledged or its deadline passes.
"""

from __future__ import annotations

import http.client
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from redis import Redis
from rq import Queue

from shared.signing import sign
from stack.ports import free_port
from stack.redis_server import RedisServer
from tests.corpus import Delivery, run_copies
from worker.combine import claimed_key
from worker.ledger import aggregate_key

ROOT = Path(__file__).resolve().parents[2]
SECRET = "fault-suite-secret"
P = "github_actions_"


@dataclass
class Send:
    event: str
    body: bytes
    guid: str


def stream(runs: int, prefix: str = "g") -> list[Send]:
    return [Send(d.event, d.body, f"{prefix}-{i}") for i, d in enumerate(run_copies(runs))]


def as_sends(deliveries: list[Delivery], prefix: str) -> list[Send]:
    return [Send(d.event, d.body, f"{prefix}-{i}") for i, d in enumerate(deliveries)]


@dataclass
class Stats:
    attempts: int = 0
    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    unacknowledged: set[str] = field(default_factory=set)
    ack_times: dict[str, float] = field(default_factory=dict)


class LoadGenerator:
    def __init__(self, ports: list[int], threads: int = 12, deadline_seconds: float = 120.0) -> None:
        self.ports = ports
        self.threads = threads
        self.deadline_seconds = deadline_seconds
        self._lock = threading.Lock()
        self._round_robin = itertools.count()

    def play(self, sends: list[Send], stats: Stats | None = None) -> Stats:
        stats = stats or Stats()
        queue = iter(list(sends))
        deadline = time.monotonic() + self.deadline_seconds

        def next_send() -> Send | None:
            with self._lock:
                return next(queue, None)

        def run() -> None:
            connections: dict[int, http.client.HTTPConnection] = {}
            while (send := next_send()) is not None:
                self._deliver(send, stats, connections, deadline)
            for connection in connections.values():
                connection.close()

        workers = [threading.Thread(target=run) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return stats

    def _deliver(
        self, send: Send, stats: Stats, connections: dict[int, http.client.HTTPConnection], deadline: float
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": send.event,
            "X-GitHub-Delivery": send.guid,
            "X-GitHub-Hook-ID": "777",
            "X-Hub-Signature-256": sign(SECRET, send.body),
        }
        backoff = 0.05
        while time.monotonic() < deadline:
            port = self.ports[next(self._round_robin) % len(self.ports)]
            try:
                connection = connections.get(port) or http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=10
                )
                connections[port] = connection
                connection.request("POST", "/webhook", body=send.body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = str(response.status)
            except (OSError, http.client.HTTPException):
                broken = connections.pop(port, None)
                if broken is not None:
                    broken.close()
                status = "connection error"
            with self._lock:
                stats.attempts += 1
                stats.statuses[status] += 1
                if status in ("200", "202"):
                    stats.acknowledged.add(send.guid)
                    stats.ack_times[send.guid] = time.time()
                    return
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        with self._lock:
            stats.unacknowledged.add(send.guid)


class Cluster:
    def __init__(self, workdir: Path, receivers: int = 2, workers: int = 1) -> None:
        self.workdir = workdir
        self.redis = RedisServer(workdir / "redis", log_file=workdir / "redis.log")
        self.receiver_ports = [free_port() for _ in range(receivers)]
        self.worker_ports = [free_port() for _ in range(workers)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.expected_exits: set[str] = set()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GHA_EXPORTER_")}
        env.update(
            GHA_EXPORTER_REDIS__URL=self.redis.url,
            GHA_EXPORTER_WEBHOOK__SECRETS=SECRET,
            GHA_EXPORTER_RECEIVER__HOST="127.0.0.1",
            GHA_EXPORTER_WORKER__HOST="127.0.0.1",
            GHA_EXPORTER_LOG__FORMAT="json",
            GHA_EXPORTER_LOG__LEVEL="info",
            GHA_EXPORTER_QUEUE__JOB_TIMEOUT_SECONDS="2",
            GHA_EXPORTER_QUEUE__MAINTENANCE_INTERVAL_SECONDS="1",
        )
        return env

    def start(self) -> Cluster:
        self.redis.start()
        for index in range(len(self.receiver_ports)):
            self.start_process(f"receiver-{index}")
        for index in range(len(self.worker_ports)):
            self.start_process(f"worker-{index}")
        return self

    def port_of(self, name: str) -> int:
        kind, index = name.rsplit("-", 1)
        return (self.receiver_ports if kind == "receiver" else self.worker_ports)[int(index)]

    def start_process(self, name: str) -> None:
        kind = name.rsplit("-", 1)[0]
        env = self.env()
        env[f"GHA_EXPORTER_{kind.upper()}__PORT"] = str(self.port_of(name))
        with (self.workdir / f"{name}.log").open("ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", kind], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
            )
        self.expected_exits.discard(name)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.processes[name].poll() is None, self.logs(name, tail=4000)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port_of(name)}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{name} did not come up")

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> tuple[int, float]:
        """Signal ``name`` and wait; returns its exit status and how long it took to exit."""
        self.expected_exits.add(name)
        process = self.processes[name]
        started = time.monotonic()
        process.send_signal(sig)
        code = process.wait(timeout)
        return code, time.monotonic() - started

    def died_unexpectedly(self) -> list[str]:
        return [n for n, p in self.processes.items() if p.poll() is not None and n not in self.expected_exits]

    def rss_mb(self, name: str) -> float:
        status = Path(f"/proc/{self.processes[name].pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024

    def logs(self, name: str | None = None, tail: int | None = None) -> str:
        files = [self.workdir / f"{name}.log"] if name else sorted(self.workdir.glob("*.log"))
        return "\n".join(f.read_text(errors="replace")[-(tail or 0) :] for f in files if f.exists())

    def connection(self) -> Redis:
        return Redis.from_url(self.redis.url, socket_timeout=5)

    def shutdown(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                self.expected_exits.add(name)
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.redis.stop()


@dataclass
class Ledger:
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


def redis_figures(connection: Redis, queue_name: str = "gha-exporter") -> dict[str, float]:
    """What Redis says: the delivery ledger, the aggregates, the queue and its registries, in flight."""
    queue = Queue(queue_name, connection=connection, serializer="rq.serializers.JSONSerializer")
    processed = cast(
        dict[bytes, bytes],
        connection.hgetall(aggregate_key("webhook_deliveries_processed_total", ("event", "result"))),
    )
    by_result: dict[str, float] = {"changed": 0.0, "unchanged": 0.0, "invalid": 0.0}
    for key, value in processed.items():
        result = re.search(r'result="(\w+)"', key.decode())
        assert result, key
        by_result[result[1]] = by_result.get(result[1], 0.0) + float(value)
    jobs = connection.hgetall(
        aggregate_key(
            "job_run_total",
            ("repository", "workflow", "job", "conclusion", "runner_group", "runs_on", "attempt"),
        )
    )
    runs = connection.hgetall(
        aggregate_key("workflow_run_total", ("repository", "workflow", "event", "conclusion", "attempt"))
    )
    inflight = sum(int(connection.zcard(key)) for key in connection.scan_iter("gha-exporter:inflight:*"))
    return {
        "processed": sum(by_result.values()),
        "invalid": by_result["invalid"],
        "jobs_counted": sum(float(v) for v in jobs.values()),
        "runs_counted": sum(float(v) for v in runs.values()),
        "queued": queue.count,
        "dequeued": int(connection.llen(queue.intermediate_queue_key)),
        "started": queue.started_job_registry.count,
        "failed": queue.failed_job_registry.count,
        "claimed": int(connection.zcard(claimed_key(queue_name))),
        "inflight": inflight,
    }


def wait_drained(connection: Redis, at_least: int, timeout: float = 180.0) -> dict[str, float]:
    """Poll until the queue, its intermediate list, the started registry and the claims are empty and the
    ledger has reached ``at_least`` deliveries."""
    deadline = time.monotonic() + timeout
    figures: dict[str, float] = {}
    while time.monotonic() < deadline:
        try:
            figures = redis_figures(connection)
        except OSError:
            time.sleep(0.2)
            continue
        if (
            not (figures["queued"] or figures["dequeued"] or figures["started"] or figures["claimed"])
            and figures["processed"] >= at_least
        ):
            return figures
        time.sleep(0.2)
    raise AssertionError(f"not drained in {timeout}s: {figures}")
