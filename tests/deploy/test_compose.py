"""The compose stack, started as the README says with podman-compose (the same commands as
``docker compose``): Redis, two receivers behind the entry point, the worker; signed deliveries sent
to the entry port are spread over the receivers and counted once by the worker; ``--scale`` adds a
receiver the entry point finds by itself; the ``monitoring`` profile's Prometheus scrapes the
worker and every receiver, loads the alert rules and stores exemplars; ``down`` leaves nothing.

The official images cannot be pulled here: the stack is given the Debian stand-ins through the
``*_IMAGE`` variables ``docker-compose.yml`` reads (its defaults are the official images). Grafana
has no Debian package and is not started.
"""

from __future__ import annotations

import json
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.ports import free_port
from stack.sample import SAMPLES, event_of, post
from tests.containers.engine import Engine, command
from tests.containers.waiting import get, until
from tests.e2e.system import parse, scrape, total

pytestmark = pytest.mark.containers
PROJECT = "gha-exporter"  # docker-compose.yml's `name`
SECRET = "compose-test-secret"
COMPOSE = str(Path(sys.executable).parent / "podman-compose")


class Stack:
    def __init__(self, engine: Engine, standins: dict[str, str]) -> None:
        self.engine = engine
        self.ports = {
            name: free_port("0.0.0.0") for name in ("RECEIVER_PORT", "WORKER_METRICS_PORT", "PROMETHEUS_PORT")
        }
        self.env = {
            **engine.env,
            "PYTHON_IMAGE": standins["python"],
            "REDIS_IMAGE": standins["redis"],
            "PROXY_IMAGE": standins["haproxy"],
            "PROMETHEUS_IMAGE": standins["prometheus"],
            "GHA_EXPORTER_WEBHOOK__SECRETS": SECRET,
            **{name: str(port) for name, port in self.ports.items()},
        }

    def compose(self, *args: str, timeout: float = 900) -> str:
        return command(COMPOSE, *args, env=self.env, timeout=timeout).stdout

    def url(self, port: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"

    def containers(self, service: str | None = None) -> list[str]:
        label = f"com.docker.compose.service={service}" if service else f"io.podman.compose.project={PROJECT}"
        listed = self.engine.run("ps", "-a", "--filter", f"label={label}", "--format", "{{.Names}}").stdout
        return sorted(name for name in listed.split() if name.startswith(f"{PROJECT}_"))

    def in_container(self, name: str, url: str, check: bool = True) -> str:
        """What ``url`` answers inside container ``name`` ('' when it fails and ``check`` is off)."""
        script = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
        return self.engine.run("exec", name, "python", "-c", script, check=check).stdout

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label=io.podman.compose.project={PROJECT}"
        found = {
            "containers": self.engine.run("ps", "-a", "-q", "--filter", label).stdout.split(),
            "pods": self.engine.run("pod", "ps", "-q", "--filter", f"name={PROJECT}").stdout.split(),
            "volumes": [
                v for v in self.engine.run("volume", "ls", "-q").stdout.split() if v.startswith(f"{PROJECT}_")
            ],
            "networks": [
                n
                for n in self.engine.run("network", "ls", "-q", "--format", "{{.Name}}").stdout.split()
                if n.startswith(f"{PROJECT}_")
            ],
        }
        return {kind: names for kind, names in found.items() if names}


def unsigned_refused(url: str) -> bool:
    try:
        request = urllib.request.Request(url, data=b"{}", method="POST")  # noqa: S310 - our own http URL
        urllib.request.urlopen(request, timeout=5)  # noqa: S310
    except urllib.error.HTTPError as error:
        return error.code == 401  # a receiver answered (behind the entry point)
    return False


def send_samples(stack: Stack) -> int:
    samples = sorted(SAMPLES.glob("*.json"))
    for sample in samples:  # each with a new delivery id
        status, _ = post(
            stack.url("RECEIVER_PORT", "/webhook"), SECRET, event_of(sample, None), sample.read_bytes()
        )
        assert status == 202
    return len(samples)


def queued_by(stack: Stack, receiver: str) -> float:
    metrics = parse(stack.in_container(receiver, "http://127.0.0.1:8000/metrics"))
    return total(metrics, "github_actions_webhook_deliveries_total", outcome="queued")


@pytest.fixture(name="stack", scope="module")
def _stack(engine: Engine, standins: dict[str, str], figures: list[str]) -> Iterator[Stack]:
    stack = Stack(engine, standins)
    if stack.leftovers():  # a run that was killed: its stack goes first
        stack.compose("down", "-v", "--remove-orphans")
    assert not stack.leftovers(), f"a {PROJECT} stack is still there: {stack.leftovers()}"
    started = time.monotonic()
    try:
        stack.compose("up", "--build", "-d")  # README: docker compose up --build -d
        until(
            lambda: unsigned_refused(stack.url("RECEIVER_PORT", "/webhook")), 120, "the entry point answering"
        )
        until(lambda: get(stack.url("WORKER_METRICS_PORT", "/health")), 120, "the worker answering")
        figures.append(
            f"compose stack: up (with the image build) until it answers in {time.monotonic() - started:.0f} s"
        )
        yield stack
    finally:
        stopped = time.monotonic()
        stack.compose("down", "-v", "--remove-orphans")  # README: docker compose down -v --remove-orphans
        figures.append(f"compose stack: down in {time.monotonic() - stopped:.0f} s")
    assert stack.leftovers() == {}


def processed(stack: Stack) -> float:
    return total(
        scrape(stack.url("WORKER_METRICS_PORT", "/metrics")),
        "github_actions_webhook_deliveries_processed_total",
    )


def test_deliveries_are_spread_over_both_receivers_and_counted_once(stack: Stack):
    receivers = stack.containers("receiver")
    assert len(receivers) == 2
    sent = 0

    def both_took_some() -> bool:
        """The sample run once more (new delivery ids); true once each receiver has queued some (the
        entry point sends only to receivers its health check saw ready, from a few seconds in)."""
        nonlocal sent
        sent += send_samples(stack)
        return all(queued_by(stack, name) > 0 for name in receivers)

    until(both_took_some, 90, "deliveries reaching both receivers")
    until(lambda: processed(stack) >= sent, 60, "the worker counting every delivery")
    metrics = scrape(stack.url("WORKER_METRICS_PORT", "/metrics"))
    assert total(metrics, "github_actions_webhook_deliveries_processed_total") == sent  # each once
    assert total(metrics, "github_actions_job_run_total") == 2  # the sample's two jobs, counted once
    assert sum(queued_by(stack, name) for name in receivers) == sent  # each acknowledged delivery queued once


def test_a_scaled_receiver_is_found_by_the_entry_point(stack: Stack):
    stack.compose("up", "-d", "--scale", "receiver=3")  # README: docker compose up -d --scale receiver=3
    receivers = stack.containers("receiver")
    assert len(receivers) == 3
    newest = receivers[-1]
    until(
        lambda: stack.in_container(newest, "http://127.0.0.1:8000/health", check=False),
        60,
        "the third receiver answering",
    )
    until(
        lambda: send_samples(stack) and queued_by(stack, newest) > 0,
        90,
        "the third receiver taking deliveries",
    )


def test_the_monitoring_profiles_prometheus_scrapes_every_target_with_rules_and_exemplars(stack: Stack):
    # README: docker compose --profile monitoring up -d (here Prometheus alone: no Grafana image)
    stack.compose("--profile", "monitoring", "up", "-d", "prometheus")
    api = stack.url("PROMETHEUS_PORT", "/api/v1/")

    def targets_up() -> dict[str, int]:
        active = json.loads(get(api + "targets"))["data"]["activeTargets"]
        jobs: dict[str, int] = {}
        for target in active:
            if target["health"] == "up":
                jobs[target["labels"]["job"]] = jobs.get(target["labels"]["job"], 0) + 1
        return jobs if jobs.get("gha-exporter-worker") and jobs.get("gha-exporter-receiver", 0) >= 2 else {}

    up = until(targets_up, 120, "Prometheus scraping the worker and the receivers")
    assert up["gha-exporter-worker"] == 1
    rules = json.loads(get(api + "rules"))["data"]["groups"]
    names = {rule["name"] for group in rules for rule in group["rules"]}
    assert "GhaExporterRedisUnreachable" in names
    send_samples(stack)  # completed jobs: their durations are observed with an exemplar

    def exemplars() -> list[dict[str, Any]]:
        # an exemplar carries the time of its job's own facts: the sample run's, in October 2023
        window = {"start": "2023-10-13T00:00:00Z", "end": "2023-10-14T00:00:00Z"}
        query = urllib.parse.urlencode({"query": "github_actions_job_run_duration_seconds_bucket", **window})
        found = json.loads(get(api + "query_exemplars?" + query))["data"]
        return [e for series in found for e in series["exemplars"]]

    stored = until(exemplars, 120, "Prometheus storing the duration buckets' exemplars")
    assert all(re.fullmatch(r"\d+", e["labels"]["job_id"]) for e in stored)
