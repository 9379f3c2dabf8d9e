"""The commands the README gives, run as a user runs them."""

import contextlib
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stack.ports import free_port
from stack.sample import SAMPLES
from tests.e2e.system import ROOT, scrape, total

pytestmark = pytest.mark.e2e


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GHA_EXPORTER_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("component", ["receiver", "worker"])
def test_invalid_configuration_is_reported_at_once_and_exits_non_zero(component):
    env = clean_env(
        GHA_EXPORTER_RECEIVER__PORT="not-a-port",
        GHA_EXPORTER_LOG__FORMAT="xml",
        GHA_EXPORTER_WEBHOOK__SECRETS="s",
    )
    result = subprocess.run(
        [sys.executable, "-m", component],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "receiver.port" in result.stderr
    assert "log.format" in result.stderr


def test_receiver_refuses_to_start_without_a_secret():
    result = subprocess.run(
        [sys.executable, "-m", "receiver"],
        env=clean_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert "webhook.secrets" in result.stderr


@contextlib.contextmanager
def one_command_stack(tmp_path: Path) -> Iterator[tuple[dict[str, int], Path]]:
    """``python3 dev.py up`` (``python -m stack``) in ``tmp_path``: its ports and its output, once
    it says it is running; stopped with Ctrl-C (SIGINT) after, and checked to stop cleanly."""
    ports = {"--receiver-port": free_port(), "--worker-port": free_port(), "--redis-port": free_port()}
    args = [f"{k}={v}" for k, v in ports.items()]
    output = tmp_path / "stack.log"
    log = output.open("w+")
    stack = subprocess.Popen(
        [sys.executable, "-m", "stack", *args],
        cwd=tmp_path,
        env=clean_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while "gha-exporter is running" not in output.read_text():
            assert stack.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.1)
        yield ports, output
    finally:
        stack.send_signal(signal.SIGINT)
        code = stack.wait(60)
        log.close()
    assert code == 0
    assert "gha-exporter stopped" in output.read_text()


def send_sample(tmp_path: Path, url: str, *files: Path) -> str:
    """``python3 dev.py send-sample [FILE --event workflow_job]``, run from the stack's directory."""
    event = ["--event", "workflow_job"] if files else []
    sent = subprocess.run(
        [sys.executable, "-m", "stack.sample", "--url", url, *map(str, files), *event],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr
    return sent.stdout


def test_the_one_command_system_runs_and_a_signed_sample_shows_in_metrics(tmp_path):
    with one_command_stack(tmp_path) as (ports, output):
        found = re.search(r"webhook secret\s+(\S+)", output.read_text())
        assert found is not None
        secret = found.group(1)
        assert (tmp_path / ".data" / "webhook-secret").read_text().strip() == secret
        url = f"http://127.0.0.1:{ports['--receiver-port']}/webhook"
        assert send_sample(tmp_path, url).count("202 ") == 9
        metrics = f"http://127.0.0.1:{ports['--worker-port']}/metrics"
        deadline = time.monotonic() + 30
        while total(scrape(metrics), "github_actions_webhook_events_processed_total") < 9:
            assert time.monotonic() < deadline, "the sample was not processed"
            time.sleep(0.05)
        samples = scrape(metrics)
        assert total(samples, "github_actions_job_run_total", repository="krzko/webhook-testing") == 2
        assert total(samples, "github_actions_workflow_run_total", conclusion="success") == 1
        request = urllib.request.Request(metrics, headers={"Accept": "application/openmetrics-text"})
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            assert response.headers["Content-Type"].startswith("application/openmetrics-text")
            assert response.read().endswith(b"# EOF\n")
    assert (tmp_path / ".data" / "redis" / "appendonlydir").is_dir()  # queued deliveries survive a restart


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        return json.load(response)


def until(read: Callable[[], Any], wanted: Callable[[Any], bool], what: str) -> Any:
    """Poll ``read`` until its answer is ``wanted`` (the worker applies a delivery within a second)."""
    deadline, last = time.monotonic() + 30, None
    while time.monotonic() < deadline:
        last = read()
        if wanted(last):
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: last seen {last}")


def test_the_readme_walk_through_a_queued_job_shows_on_the_page_and_leaves_when_completed(tmp_path):
    """The README's walk-through: the sample's queued job alone appears at the printed page's API;
    its completion removes it; a job that fails is then listed under the recent failures."""
    with one_command_stack(tmp_path) as (ports, output):
        page = re.search(r"in-flight page\s+(\S+)", output.read_text())
        assert page is not None
        assert page.group(1) == f"http://127.0.0.1:{ports['--worker-port']}/"
        with urllib.request.urlopen(page.group(1), timeout=5) as response:  # noqa: S310 - loopback
            assert b"<title>" in response.read()
        url = f"http://127.0.0.1:{ports['--receiver-port']}/webhook"
        inflight = functools.partial(get_json, page.group(1) + "api/v1/inflight")
        recent = functools.partial(get_json, page.group(1) + "api/v1/recent")
        jobs = lambda answer: [(j["job"], j["phase"]) for j in answer["jobs"]]  # noqa: E731

        send_sample(tmp_path, url, SAMPLES / "1-workflow_job-queued.json")
        until(inflight, lambda a: jobs(a) == [("pre-commit", "queued")], "the queued job on the page")
        send_sample(tmp_path, url, SAMPLES / "5-workflow_job-completed.json")
        until(inflight, lambda a: jobs(a) == [], "the completed job gone")
        assert recent() == {"jobs": []}  # it succeeded

        octokit = ROOT / "tests" / "payloads" / "octokit-webhooks" / "workflow_job"
        send_sample(tmp_path, url, octokit / "queued.payload.json")
        until(inflight, lambda a: jobs(a) == [("update", "queued")], "the second queued job on the page")
        send_sample(tmp_path, url, octokit / "completed.failure.with-organization.payload.json")
        until(inflight, lambda a: jobs(a) == [], "the failed job gone")
        [failed] = recent()["jobs"]
        assert (failed["job_id"], failed["conclusion"]) == (289782451, "failure")


def test_receiver_metrics_can_be_served_apart_from_the_webhook(redis_url, tmp_path):
    webhook_port, metrics_port = free_port(), free_port()
    env = clean_env(
        GHA_EXPORTER_REDIS__URL=redis_url,
        GHA_EXPORTER_WEBHOOK__SECRETS="s",
        GHA_EXPORTER_RECEIVER__HOST="127.0.0.1",
        GHA_EXPORTER_RECEIVER__PORT=str(webhook_port),
        GHA_EXPORTER_RECEIVER__METRICS_HOST="127.0.0.1",
        GHA_EXPORTER_RECEIVER__METRICS_PORT=str(metrics_port),
    )
    log = (tmp_path / "receiver.log").open("w")
    receiver = subprocess.Popen([sys.executable, "-m", "receiver"], env=env, cwd=ROOT, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while True:  # the webhook port answers last: uvicorn binds it after the metrics thread starts
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{webhook_port}/health", timeout=1) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "receiver.log").read_text()
                time.sleep(0.1)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
            assert b"github_actions_webhook_rejections_total" in r.read()
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{webhook_port}/metrics", timeout=5)
        assert missing.value.code == 404
        missing.value.close()
    finally:
        receiver.send_signal(signal.SIGTERM)
        receiver.wait(30)
        log.close()
