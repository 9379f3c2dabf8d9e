"""A loopback cluster of real processes: a Redis (AOF ``everysec``, ``noeviction``), receivers and
workers, with RQ's timeouts shortened; and what Redis says about the deliveries it holds. Used by
the benchmarks and the fault suite."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import cast

from redis import Redis

from bench.load import SECRET
from shared import keys
from shared.queueing import make_queue
from shared.rqadapter.storage import QueueBatches
from shared.settings_loader import load_settings
from stack.ports import free_port
from stack.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[1]


class Cluster:
    def __init__(self, workdir: Path, receivers: int = 2, workers: int = 1) -> None:
        self.workdir = workdir
        self.redis = RedisServer(workdir / "redis", log_file=workdir / "redis.log")
        self.receiver_ports = [free_port() for _ in range(receivers)]
        self.worker_ports = [free_port() for _ in range(workers)]
        self.client_url: str | None = None  # where the processes reach Redis (a proxy), else its own URL
        self.extra_env: dict[str, str] = {}  # more settings of both processes (e.g. Sentinel)
        self.config_file: Path | None = None  # a YAML file of both processes, holding the webhook secret
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.expected_exits: set[str] = set()

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GHA_EXPORTER_")}
        env.update(
            GHA_EXPORTER_REDIS__URL=self.client_url or self.redis.url,
            GHA_EXPORTER_WEBHOOK__SECRETS=SECRET,
            GHA_EXPORTER_RECEIVER__HOST="127.0.0.1",
            GHA_EXPORTER_WORKER__HOST="127.0.0.1",
            GHA_EXPORTER_LOG__FORMAT="json",
            GHA_EXPORTER_LOG__LEVEL="info",
            GHA_EXPORTER_QUEUE__JOB_TIMEOUT_SECONDS="2",
            GHA_EXPORTER_QUEUE__MAINTENANCE_INTERVAL_SECONDS="1",
        )
        if self.config_file is not None:
            env["GHA_EXPORTER_CONFIG"] = str(self.config_file)
            del env["GHA_EXPORTER_WEBHOOK__SECRETS"]
        env.update(self.extra_env)
        return env

    def start(self) -> Cluster:
        if not self.redis.answers_ping():  # else a Redis started by the caller (e.g. with Sentinels)
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
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited while starting:\n{self.logs(name, tail=4000)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port_of(name)}/health", timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{name} did not come up")

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
        return rss_mb(self.processes[name].pid)

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


def rss_mb(pid: int) -> float:
    """A process's resident memory now, in MB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024


def redis_figures(connection: Redis, queue_name: str = "gha-exporter") -> dict[str, float]:
    """What Redis says: the deliveries applied, the aggregates, the queue and its registries, in flight."""
    queue = make_queue(connection, load_settings(environ={"GHA_EXPORTER_QUEUE__NAME": queue_name}).queue)
    processed = cast(
        dict[bytes, bytes],
        connection.hgetall(keys.aggregate("webhook_deliveries_processed_total", ("event", "result"))),
    )
    by_result: dict[str, float] = {"changed": 0.0, "unchanged": 0.0, "invalid": 0.0}
    for key, value in processed.items():
        result = re.search(r'result="(\w+)"', key.decode())
        if result is None:
            raise RuntimeError(f"unexpected processed-total field {key!r}")
        by_result[result[1]] = by_result.get(result[1], 0.0) + float(value)
    jobs = connection.hgetall(
        keys.aggregate(
            "job_run_total",
            ("repository", "workflow", "job", "conclusion", "runner_group", "runs_on", "attempt"),
        )
    )
    runs = connection.hgetall(
        keys.aggregate("workflow_run_total", ("repository", "workflow", "event", "conclusion", "attempt"))
    )
    inflight = sum(int(connection.zcard(key)) for key in connection.scan_iter("gha-exporter:inflight:*"))
    return {
        "processed": sum(by_result.values()),
        "invalid": by_result["invalid"],
        "jobs_counted": sum(float(v) for v in jobs.values()),
        "runs_counted": sum(float(v) for v in runs.values()),
        **QueueBatches(queue).counts(),
        "claimed": int(connection.zcard(keys.claimed(queue_name))),
        "inflight": inflight,
    }


def wait_drained(connection: Redis, at_least: int, timeout: float = 180.0) -> dict[str, float]:
    """Poll until the queue, its intermediate list, the started registry and the claims are empty and the
    deliveries applied have reached ``at_least``."""
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
