"""The image, built from the project's Dockerfile by a real engine and run: both commands answer
``/health`` as the non-root user, the image's HEALTHCHECK passes, a signed delivery sent to the
receiver's container is counted by the worker's, and each stops on SIGTERM within its grace, also
while Redis cannot be reached.

The official base image cannot be pulled here: the build is given the Debian stand-in as its
``BASE_IMAGE`` (the README says what differs).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator

import pytest

from stack.ports import free_port
from stack.sample import SAMPLES, event_of, post
from tests.containers.engine import ROOT, Engine
from tests.containers.waiting import get, until
from tests.e2e.system import scrape, total

pytestmark = pytest.mark.containers
IMAGE = "gha-exporter:local"
SECRET = "image-test-secret"
GRACE = 10.0  # receiver.graceful_shutdown_seconds and worker.stop_grace_seconds, by default


@pytest.fixture(name="image", scope="module")
def _image(engine: Engine, standins: dict[str, str], figures: list[str]) -> str:
    started = time.monotonic()
    # README: docker build -t gha-exporter:local .  (Podman: --format docker keeps the HEALTHCHECK)
    engine.run(
        "build", "--format", "docker", "--build-arg", f"BASE_IMAGE={standins['python']}",
        "-t", IMAGE, ".", timeout=900, cwd=ROOT,
    )  # fmt: skip
    built = time.monotonic() - started
    size = int(engine.run("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout.strip())
    figures.append(f"image build {built:.0f} s, image size {size / 1e6:.0f} MB")
    return IMAGE


def instruction(name: str) -> list[str]:
    """The exec-form JSON array of the final stage's ENTRYPOINT, CMD or HEALTHCHECK CMD."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    final_stage = text.rsplit("\nFROM ", 1)[1]
    pattern = r"^HEALTHCHECK .*?CMD (\[.*\])$" if name == "HEALTHCHECK" else rf"^{name} (\[.*\])$"
    found = re.search(pattern, final_stage, re.M)
    assert found, f"no exec-form {name} in the final stage"
    return list(json.loads(found.group(1)))


def test_the_dockerfile_runs_exec_form_as_non_root_on_an_official_base_by_default():
    assert instruction("ENTRYPOINT") == ["python", "-m"]  # SIGTERM reaches the process itself
    assert instruction("CMD") == ["receiver"]
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.\d+-slim-bookworm$", text, re.M)
    final_stage = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001$", final_stage, re.M)
    assert "pip install" not in final_stage  # nothing is built in the final stage


def wait_health(port: int) -> None:
    until(lambda: get(f"http://127.0.0.1:{port}/health"), 60, f"/health on port {port}")


class Containers:
    """Containers started on the host's network (so they reach the tests' Redis on loopback)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.names: list[str] = []

    def start(self, command: str, redis_url: str, port: int) -> str:
        name = f"gha-exporter-test-{command}-{port}"
        self.engine.run(
            "run", "-d", "--name", name, "--network", "host",
            "-e", f"GHA_EXPORTER_REDIS__URL={redis_url}",
            "-e", f"GHA_EXPORTER_WEBHOOK__SECRETS={SECRET}",
            "-e", f"GHA_EXPORTER_{command.upper()}__PORT={port}",
            IMAGE, *([command] if command != "receiver" else []),
        )  # fmt: skip
        self.names.append(name)
        return name

    def stop(self, name: str) -> tuple[int, float]:
        """``docker stop`` with compose's grace (20 s); the exit code and how long it took."""
        started = time.monotonic()
        self.engine.run("stop", "-t", "20", name, timeout=60)
        seconds = time.monotonic() - started
        code = int(self.engine.run("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip())
        return code, seconds

    def logs(self, name: str) -> str:
        result = self.engine.run("logs", name, check=False)
        return result.stdout + result.stderr

    def remove_all(self) -> None:
        for name in self.names:
            self.engine.run("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture(name="containers")
def _containers(engine: Engine, image: str) -> Iterator[Containers]:  # noqa: ARG001 - built first
    containers = Containers(engine)
    yield containers
    containers.remove_all()


def worker_counted(port: int) -> float:
    metrics = scrape(f"http://127.0.0.1:{port}/metrics")
    return total(metrics, "github_actions_webhook_deliveries_processed_total")


def test_both_commands_run_as_non_root_answer_health_and_count_a_signed_delivery(
    engine: Engine, containers: Containers, redis_url: str, figures: list[str]
):
    receiver_port, worker_port = free_port(), free_port()
    receiver = containers.start("receiver", redis_url, receiver_port)
    worker = containers.start("worker", redis_url, worker_port)
    wait_health(receiver_port)
    wait_health(worker_port)
    for name in (receiver, worker):
        assert engine.run("exec", name, "id", "-u").stdout.strip() == "10001"
        assert engine.run("healthcheck", "run", name, check=False).returncode == 0, containers.logs(name)
    samples = sorted(SAMPLES.glob("*.json"))
    for sample in samples:
        status, _ = post(
            f"http://127.0.0.1:{receiver_port}/webhook", SECRET, event_of(sample, None), sample.read_bytes()
        )
        assert status == 202
    until(lambda: worker_counted(worker_port) >= len(samples), 60, "the worker counting the deliveries")
    assert worker_counted(worker_port) == len(samples)  # each once
    exits = {name: containers.stop(name) for name in (receiver, worker)}
    figures.append(
        "image: SIGTERM with Redis up: "
        + ", ".join(f"{n} exit {c} in {s:.1f} s" for n, (c, s) in exits.items())
    )
    for code, seconds in exits.values():
        assert code == 0
        assert seconds < GRACE
    logs = containers.logs(receiver) + containers.logs(worker)
    assert SECRET not in logs


def test_both_commands_stop_on_sigterm_while_redis_cannot_be_reached(
    containers: Containers, figures: list[str]
):
    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    receiver_port, worker_port = free_port(), free_port()
    receiver = containers.start("receiver", unreachable, receiver_port)
    worker = containers.start("worker", unreachable, worker_port)
    wait_health(receiver_port)
    wait_health(worker_port)
    # retrying Redis (RQ's reconnection loop, or the supervisor's backoff): what ended in SIGKILL
    retrying = re.compile("Redis unreachable")  # the outage, logged once (shared.outage)
    until(lambda: retrying.search(containers.logs(worker)), 60, "the worker retrying Redis")
    exits = {name: containers.stop(name) for name in (receiver, worker)}
    figures.append(
        "image: SIGTERM with Redis down: "
        + ", ".join(f"{n} exit {c} in {s:.1f} s" for n, (c, s) in exits.items())
    )
    for name, (code, seconds) in exits.items():
        assert code != 137, f"{name} was killed at the end of the grace"
        assert seconds < GRACE + 1, name


def test_the_healthcheck_fails_when_nothing_answers(engine: Engine, image: str):
    result = engine.run(
        "run", "--rm", "--entrypoint", "python", image, *instruction("HEALTHCHECK")[1:], check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
