"""The reconciler against the fake GitHub and the real receiver on a real Redis: deliveries that
failed while the receiver was down, and acknowledged ones Redis lost, are redelivered once; old ones
and ones redelivered too often are only counted; the lease lets one worker at a time run a pass."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from loguru import logger
from prometheus_client import CollectorRegistry
from redis import Redis

from bench.fake_github import FakeGitHub, Refusal, github_settings
from shared import keys
from shared.marks import DeliveryMarks
from tests.conftest import SECRET
from tests.receiver_thread import running_receiver
from worker.metrics import ReconcileMetrics
from worker.reconcile import Reconciler, reconcile_loop
from worker.reconcile_store import read_status

pytestmark = pytest.mark.integration
TOKEN = "ghp_reconcile-0123456789"
HOOK = "repos/octo-org/app/hooks/17"
DOWN = "http://127.0.0.1:9/webhook"  # nothing listens there: GitHub logs a failed delivery
DAY = 86_400.0


def payload(job_id: int) -> bytes:
    return json.dumps({"action": "queued", "workflow_job": {"id": job_id}, "repository": {}}).encode()


@pytest.fixture(name="world")
def _world(settings) -> Iterator[tuple[FakeGitHub, str, Redis]]:
    with FakeGitHub(tokens=(TOKEN,)) as github, running_receiver(settings) as receiver:
        github.add_hook(HOOK, 17, receiver, SECRET)
        connection = Redis.from_url(settings.redis.url)
        yield github, receiver, connection
        connection.close()


@pytest.fixture(name="metrics")
def _metrics(registry) -> ReconcileMetrics:
    return ReconcileMetrics(registry, "gha_")


def reconciler(github: FakeGitHub, connection: Redis, metrics: ReconcileMetrics, **changes) -> Reconciler:
    """A reconciler of HOOK through the fake."""
    settings = github_settings(github.url, token=TOKEN, hooks=(HOOK,), **changes)
    marks = DeliveryMarks(connection, lambda: 3600)
    return Reconciler(connection, marks, lambda: settings, metrics)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value("gha_" + name, labels) or 0.0


def test_failed_and_lost_deliveries_are_redelivered_once_and_then_left_alone(world, registry, metrics):
    github, receiver, connection = world
    hook = github.hooks[HOOK]
    hook.url = DOWN
    failed = [github.deliver(HOOK, "workflow_job", payload(i)).guid for i in range(3)]
    github.deliver(HOOK, "ping", b"{}")  # not an event the exporter counts
    hook.url = receiver
    taken = [github.deliver(HOOK, "workflow_job", payload(10 + i)).guid for i in range(3)]
    connection.delete(keys.mark("17", taken[0]))  # acknowledged, then lost with a Redis that crashed

    report = reconciler(github, connection, metrics).run_pass()
    [hook_report] = report.hooks
    assert report.result == "ok"
    assert sorted(github.redelivered) == sorted([*failed, taken[0]])
    assert hook_report.count("redeliver", "failed") == 3
    assert hook_report.count("redeliver", "missing") == 1
    assert value(registry, "reconcile_redeliveries_total", hook=HOOK, reason="failed") == 3
    assert value(registry, "reconcile_redeliveries_total", hook=HOOK, reason="missing") == 1
    for guid in [*failed, *taken]:  # every one has its mark now: the receiver took the redeliveries
        assert connection.exists(keys.mark("17", guid))

    connection.hdel(keys.RECONCILE_STATUS, "next_pass")
    again = reconciler(github, connection, metrics).run_pass()
    assert again.hooks[0].decisions == []
    assert len(github.redelivered) == 4


def test_too_old_and_too_often_are_counted_not_redelivered(world, registry, metrics):
    github, _receiver, connection = world
    github.hooks[HOOK].url = DOWN  # the receiver stays down: every redelivery fails too
    old = github.deliver(HOOK, "workflow_job", payload(1), at=time.time() - 4 * DAY).guid
    stuck = github.deliver(HOOK, "workflow_run", payload(2)).guid
    for _ in range(4):
        # reading 5 days back, past GitHub's 3-day redelivery window (GHES keeps 7 days of log)
        reconciler(
            github, connection, metrics, max_redeliveries=2, reconcile_lookback_seconds=int(5 * DAY)
        ).run_pass()
    assert github.redelivered == [stuck, stuck]
    assert old not in github.redelivered
    # each counted once, though later passes see them again
    assert value(registry, "reconcile_unrecoverable_total", hook=HOOK, reason="too_old") == 1
    assert value(registry, "reconcile_unrecoverable_total", hook=HOOK, reason="exhausted") == 1


def test_a_dry_run_asks_for_nothing(world, metrics):
    github, _receiver, connection = world
    github.hooks[HOOK].url = DOWN
    github.deliver(HOOK, "workflow_job", payload(1))
    report = reconciler(github, connection, metrics).run_pass(dry_run=True)
    assert report.hooks[0].count("redeliver") == 1
    assert github.redelivered == []
    assert connection.hget(keys.RECONCILE_STATUS, "next_pass") is None  # a dry run schedules nothing


def test_a_rate_limit_ends_the_pass_and_puts_the_next_after_it(world, registry, metrics):
    github, _receiver, connection = world
    github.refusals.append(Refusal(429, 1, retry_after=900))
    report = reconciler(github, connection, metrics).run_pass()
    assert report.result == "failed"
    assert value(registry, "github_api_errors_total", status="429") == 1
    assert value(registry, "reconcile_passes_total", result="failed") == 1
    next_pass = float(connection.hget(keys.RECONCILE_STATUS, "next_pass"))
    assert next_pass >= time.time() + 800
    assert connection.hget(keys.RECONCILE_STATUS, f"last_success:{HOOK}") is None


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Retry-After": "999999999999", "X-RateLimit-Remaining": "9" * 400}, id="huge"),
        pytest.param(
            {"Retry-After": "\u00b2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9" * 400}, id="odd"
        ),
    ],
)
def test_hostile_rate_limit_headers_delay_the_next_pass_an_hour_at_most(world, metrics, headers):
    """A 403 whose headers ask for a wait of 31,700 years, or are no numbers at all, delays the next
    pass by an hour at most, and what is stored from them is bounded (a 400-digit number stored in
    Redis broke every scrape). What an earlier version stored is read with the same bounds."""
    github, _receiver, connection = world
    github.refusals.append(Refusal(403, 1, headers=headers))
    passes = reconciler(github, connection, metrics)
    assert passes.run_pass().result == "failed"
    next_pass = float(connection.hget(keys.RECONCILE_STATUS, "next_pass"))
    assert next_pass <= time.time() + 300 + 3600  # the interval, then the wait's bound
    assert read_status(connection, github_settings(github.url, hooks=(HOOK,))).rate_remaining in (
        None,
        0,
        1_000_000,
    )
    connection.hset(
        keys.RECONCILE_STATUS,
        mapping={"next_pass": "1e15", "rate_limit_remaining": "9" * 400, "github_wait_until": "9" * 400},
    )  # stored before (or by a hostile hand)
    assert passes.due()  # a next pass further than any wait allows is due now
    assert read_status(connection, github_settings(github.url, hooks=(HOOK,))).rate_remaining is None


def test_one_worker_at_a_time_runs_a_due_pass(world, metrics):
    github, _receiver, connection = world
    github.hooks[HOOK].url = DOWN
    github.deliver(HOOK, "workflow_job", payload(1))
    first = reconcile_loop(connection, reconciler(github, connection, metrics), lambda: True)
    second = reconcile_loop(
        connection,
        reconciler(github, connection, ReconcileMetrics(CollectorRegistry(), "gha_")),
        lambda: True,
    )
    held = connection.lock("gha-exporter:lock:reconcile", timeout=30, blocking=False)
    assert held.acquire()  # another worker is in a pass
    assert first.tick() is None
    held.release()
    assert first.tick() is not None
    assert second.tick() is None  # not due: the interval runs from the pass just made
    assert github.redelivered != []
    assert reconcile_loop(connection, reconciler(github, connection, metrics), lambda: False).tick() is None


def test_a_broken_app_key_is_counted_and_logged_without_the_key(world, registry, metrics):
    github, _receiver, connection = world
    github.add_hook("app/hook", 19, DOWN, SECRET)
    github.deliver("app/hook", "workflow_job", payload(1))
    settings = github_settings(
        github.url, app_id="7", app_private_key="not-a-pem-key-0123", hooks=("app/hook",)
    )
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}")
    try:
        report = Reconciler(
            connection, DeliveryMarks(connection, lambda: 3600), lambda: settings, metrics
        ).run_pass()
    finally:
        logger.remove(sink)
    assert report.result == "failed"
    assert value(registry, "github_api_errors_total", status="error") == 1
    assert lines
    assert not [line for line in lines if "not-a-pem-key-0123" in line]


def test_a_log_longer_than_a_pass_is_read_over_several_passes_and_completes(world, registry, metrics):
    """1,050 deliveries (11 pages), a budget of 5 requests a pass: each pass reads 4 pages (80 %) and
    redelivers what they hold that Redis lacks; the next resumes where it stopped; the third reaches
    the log's start, and the hook's last success is when the first began. Before, every pass read
    from the newest again and the hook never succeeded."""
    github, receiver, connection = world
    github.hooks[HOOK].url = DOWN
    guids = [github.deliver(HOOK, "workflow_job", payload(i)).guid for i in range(1_050)]
    missing = {guids[5], guids[500], guids[1_000]}  # one each on pages 11, 6 and 1 (newest first)
    with connection.pipeline(transaction=False) as pipe:  # the marks of deliveries applied
        for guid in guids:
            if guid not in missing:
                pipe.hset(keys.mark("17", guid), "state", "applied")
        pipe.execute()
    github.hooks[HOOK].url = receiver
    began = time.time()
    passes = 0
    while connection.hget(keys.RECONCILE_STATUS, f"last_success:{HOOK}") is None:
        passes += 1
        assert passes <= 10, f"no pass reached the log's start: {github.redelivered}"
        connection.hdel(keys.RECONCILE_STATUS, "next_pass")
        reconciler(github, connection, metrics, max_requests_per_pass=5).run_pass()
    assert passes == 3
    assert sorted(github.redelivered) == sorted(missing)
    assert began <= float(connection.hget(keys.RECONCILE_STATUS, f"last_success:{HOOK}")) <= began + 60
    assert connection.hget(keys.RECONCILE_STATUS, f"resume:{HOOK}") is None
    assert value(registry, "reconcile_passes_total", result="failed") == 2  # read in part, resumed
    assert value(registry, "reconcile_passes_total", result="ok") == 1
