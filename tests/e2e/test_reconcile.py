"""Nothing GitHub sent is lost: the real receiver and worker, the fake GitHub delivering to them, an
outage of the receiver and a Redis that lost acknowledged deliveries; then one
``python -m worker reconcile`` and every delivery is counted exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from redis import Redis

from bench.fake_github import FakeGitHub, Refusal
from shared import keys
from stack.redis_server import RedisServer
from tests.corpus import KRZKO, load
from tests.e2e.system import ROOT, System, handled, scrape, total

pytestmark = pytest.mark.e2e
SECRET = "e2e-reconcile-secret"
TOKEN = "ghp_e2e-reconcile-0123456789"
HOOK = "repos/octo-org/app/hooks/17"
W = "github_actions_"


@pytest.fixture(name="redis")
def _redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("reconcile-redis"))
    server.start()
    yield server
    server.stop()


def job(job_id: int) -> bytes:
    data = load(KRZKO.format("job", "9_workflow_job_completed")).data
    data["workflow_job"]["id"] = job_id
    return json.dumps(data).encode()


def applied(system: System, count: int, timeout: float = 60.0) -> dict:
    """The worker's samples once Redis counts ``count`` deliveries applied (or the timeout passed)."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(system.worker_metrics_url)
        done = total(samples, W + "webhook_deliveries_processed_total")
        if done >= count or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


def reconcile(system: System, github: FakeGitHub, *args: str) -> subprocess.CompletedProcess[str]:
    env = system.env()
    env.update(
        GHA_EXPORTER_GITHUB__HOOKS=json.dumps([HOOK]),
        GHA_EXPORTER_GITHUB__API_URL=github.url,
        GHA_EXPORTER_GITHUB__TOKEN=TOKEN,
    )
    return subprocess.run(
        [sys.executable, "-m", "worker", "reconcile", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_after_an_outage_and_a_lost_write_one_pass_counts_every_delivery_once(redis, tmp_path):
    system = System(redis.url, SECRET, tmp_path)
    with FakeGitHub(tokens=(TOKEN,)) as github:
        try:
            system.start("receiver")
            system.start("worker")
            github.add_hook(HOOK, 17, system.webhook_url, SECRET)
            taken = [github.deliver(HOOK, "workflow_job", job(i)) for i in range(10)]
            assert {r.status for r in taken} == {"OK"}
            system.wait_processed(10)

            system.stop("receiver")  # a bad deploy: GitHub logs failed deliveries, and never retries
            failed = [github.deliver(HOOK, "workflow_job", job(100 + i)) for i in range(10)]
            assert {r.status for r in failed} == {"failed to connect to host"}
            system.start("receiver")

            system.stop("worker")  # acknowledged, then lost with a Redis that had not written them
            lost = [github.deliver(HOOK, "workflow_job", job(200 + i)) for i in range(10)]
            assert {r.status for r in lost} == {"OK"}
            connection = Redis.from_url(redis.url)
            for key in connection.scan_iter("rq:*"):
                connection.delete(key)
            connection.delete(*[keys.mark("17", r.guid) for r in lost])
            connection.close()
            system.start("worker")

            dry = reconcile(system, github, "--dry-run")
            assert dry.returncode == 0, dry.stderr
            assert "would redeliver 20 (10 failed, 10 missing)" in dry.stdout
            assert github.redelivered == []

            first = reconcile(system, github)
            assert first.returncode == 0, first.stderr
            assert "redelivered 20 (10 failed, 10 missing)" in first.stdout
            assert sorted(github.redelivered) == sorted(r.guid for r in failed + lost)
            assert TOKEN not in first.stdout + first.stderr

            # the second worker process counts only what it handled: the totals in Redis count all
            samples = applied(system, 30)
            assert handled(samples) == 20
            assert total(samples, W + "webhook_deliveries_processed_total", result="changed") == 30
            assert total(samples, W + "job_run_total") == 30  # every job once

            second = reconcile(system, github)
            assert second.returncode == 0, second.stderr
            assert "redelivered 0 (0 failed, 0 missing)" in second.stdout
            assert len(github.redelivered) == 20
            assert total(scrape(system.worker_metrics_url), W + "job_run_total") == 30

            # an API that echoes the token in an error: the command's output masks it as the logs do
            echoed = {"message": f"the token {TOKEN} may not read this hook"}
            github.refusals.append(Refusal(422, 1, body=json.dumps(echoed).encode()))
            third = reconcile(system, github)
            assert third.returncode == 1
            assert "the token *** may not read this hook" in third.stdout
            assert TOKEN not in third.stdout + third.stderr
        finally:
            system.stop_all()


def test_with_github_hooks_set_the_worker_redelivers_what_a_redis_outage_refused(redis, tmp_path):
    """No command: the worker's own loop runs the pass (the first one is due at once)."""
    system = System(redis.url, SECRET, tmp_path)
    with FakeGitHub(tokens=(TOKEN,)) as github:
        system.extra_env.update(
            GHA_EXPORTER_GITHUB__HOOKS=json.dumps([HOOK]),
            GHA_EXPORTER_GITHUB__API_URL=github.url,
            GHA_EXPORTER_GITHUB__TOKEN=TOKEN,
        )
        try:
            system.start("receiver")
            github.add_hook(HOOK, 17, system.webhook_url, SECRET)
            redis.stop()  # the receiver answers 503: GitHub records failed deliveries
            refused = [github.deliver(HOOK, "workflow_job", job(300 + i)) for i in range(5)]
            assert {r.status for r in refused} == {"Invalid HTTP Response: 503"}
            redis.start()
            system.start("worker")
            samples = applied(system, 5)
            assert total(samples, W + "webhook_deliveries_processed_total", result="changed") == 5
            assert total(samples, W + "job_run_total") == 5
            assert sorted(github.redelivered) == sorted(r.guid for r in refused)
            assert total(samples, W + "reconcile_redeliveries_total", hook=HOOK, reason="failed") == 5
            assert total(samples, W + "reconcile_last_success_timestamp_seconds", hook=HOOK) > 0
            assert TOKEN not in system.logs()
        finally:
            system.stop_all()
