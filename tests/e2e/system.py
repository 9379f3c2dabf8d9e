"""Start the real receiver and worker processes against a real Redis, and read their /metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from shared.signing import sign
from stack.ports import free_port

ROOT = Path(__file__).resolve().parents[2]


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our loopback URL
        return parse(response.read().decode())


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Each sample of a /metrics text by (name, labels)."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: dict, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, lbl), v in samples.items() if n == name and wanted <= lbl)


def handled(samples: dict) -> float:
    """Deliveries a worker took care of: processed, or refused as unusable."""
    return total(samples, "github_actions_webhook_events_processed_total") + total(
        samples, "github_actions_webhook_processing_errors_total"
    )


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:  # an error response still holds its connection
            return exc.code, exc.read()


@dataclass
class System:
    redis_url: str
    secret: str
    log_dir: Path
    receiver_port: int = field(default_factory=free_port)
    worker_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}/webhook"

    @property
    def worker_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.worker_port}/metrics"

    @property
    def receiver_metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}/metrics"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GHA_EXPORTER_")}
        env.update(
            GHA_EXPORTER_REDIS__URL=self.redis_url,
            GHA_EXPORTER_WEBHOOK__SECRETS=self.secret,
            GHA_EXPORTER_RECEIVER__HOST="127.0.0.1",
            GHA_EXPORTER_RECEIVER__PORT=str(self.receiver_port),
            GHA_EXPORTER_WORKER__HOST="127.0.0.1",
            GHA_EXPORTER_WORKER__PORT=str(self.worker_port),
            GHA_EXPORTER_LOG__FORMAT="json",
            GHA_EXPORTER_LOG__LEVEL="debug",
        )
        env.update(self.extra_env)
        return env

    def start(self, name: str, worker_port: int | None = None, descriptors: int | None = None) -> None:
        """Start ``receiver`` or ``worker``; a second worker gets another name and its own port;
        ``descriptors``: the process may open at most that many (a container's limit)."""
        module = "receiver" if name == "receiver" else "worker"
        env = self.env()
        if worker_port is not None:
            env["GHA_EXPORTER_WORKER__PORT"] = str(worker_port)
        log = (self.log_dir / f"{name}.log").open("ab")
        limit = [] if descriptors is None else ["prlimit", f"--nofile={descriptors}:{descriptors}"]
        self.processes[name] = subprocess.Popen(
            [*limit, sys.executable, "-m", module], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        port = self.receiver_port if module == "receiver" else (worker_port or self.worker_port)
        self.wait_for(f"http://127.0.0.1:{port}/health", name)

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def wait_for(self, url: str, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise RuntimeError(f"{name} exited: {self.logs()}")
            try:
                with urllib.request.urlopen(url, timeout=1):  # noqa: S310
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"{name} did not answer {url}")

    def stop(self, name: str, timeout: float = 20.0) -> int:
        process = self.processes.pop(name)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout)

    def stop_all(self) -> None:
        for name in list(self.processes):
            try:
                self.stop(name)
            except subprocess.TimeoutExpired:
                self.processes.get(name, subprocess.Popen(["true"])).kill()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("*.log")))

    def send(self, event: str, body: bytes, delivery_id: str | None = None, **headers: str) -> int:
        sent = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": str(uuid.uuid4()) if delivery_id is None else delivery_id,
            "X-GitHub-Hook-ID": "4242",
            "X-Hub-Signature-256": sign(self.secret, body),
        }
        sent.update(headers)
        return post(self.webhook_url, body, {k: v for k, v in sent.items() if v})[0]

    def wait_processed(self, count: float, timeout: float = 60.0) -> dict:
        """Poll the worker until it has handled ``count`` deliveries (processed or refused)."""
        deadline = time.monotonic() + timeout
        while True:
            samples = scrape(self.worker_metrics_url)
            if handled(samples) >= count or time.monotonic() > deadline:
                return samples
            time.sleep(0.05)
