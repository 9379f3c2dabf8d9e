"""Several workers, out-of-order and repeated deliveries, a worker killed with SIGKILL: the totals
in /metrics equal those of one worker fed the same deliveries once and in order."""

import random
import time

import pytest
from redis import Redis

from stack.ports import free_port
from stack.redis_server import RedisServer
from tests.conftest import Exporter
from tests.corpus import run_copies
from tests.e2e.system import System, handled, scrape, total

pytestmark = pytest.mark.e2e
SECRET = "replica-secret"
W = "github_actions_"
RUNS = 40
# A multi-job run's queue time depends on which job starts are known when it completes (README).
ORDER_SENSITIVE = ("workflow_run_queue_duration_seconds",)
AGGREGATES = (
    "workflow_run_total", "workflow_run_duration_seconds_sum", "workflow_run_duration_seconds_count",
    "job_run_total", "job_run_duration_seconds_sum", "job_run_duration_seconds_bucket",
    "job_queue_duration_seconds_sum", "job_queue_duration_seconds_count", "job_cost", "job_cost_usd_total",
    "job_billable_minutes_total", "jobs_queued", "jobs_in_progress", "workflow_runs_in_progress",
)  # fmt: skip


@pytest.fixture(name="redis")
def _redis(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="system")
def _system(redis, tmp_path):
    system = System(redis.url, SECRET, tmp_path)
    system.extra_env.update(
        GHA_EXPORTER_LOG__LEVEL="info",
        GHA_EXPORTER_QUEUE__JOB_TIMEOUT_SECONDS="2",
        GHA_EXPORTER_QUEUE__MAINTENANCE_INTERVAL_SECONDS="1",
    )
    yield system
    system.stop_all()


def expected_from_one_worker_in_order(redis, make_settings, deliveries):
    """The reference: the same deliveries, once each and in order, on a separate database."""
    url = redis.url.rsplit("/", 1)[0] + "/1"
    connection = Redis.from_url(url)
    exporter = Exporter(connection, make_settings(GHA_EXPORTER_REDIS__URL=url))
    for index, delivery in enumerate(deliveries):
        exporter.processor.process_batch(exporter.queued(delivery.accepted(str(index), "h", 1.0)))
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in exporter.families()
        for s in family.samples
    }
    connection.close()
    return samples


def aggregates(samples):
    return {k: v for k, v in samples.items() if k[0][len(W) :] in AGGREGATES and v}


def processed(urls):
    return sum(handled(scrape(url)) for url in urls)


API_CACHE_SECONDS = 1.0  # worker.api_cache_seconds, the default the processes run with


def wait_until_drained(system, urls, count, timeout=150.0, applied=0):
    """Until no queue job is busy, the workers handled ``count`` deliveries and the Redis-side
    ledger says ``applied`` were applied (a queue job moving between RQ's lists can look idle)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = scrape(urls[0])
        busy = sum(
            total(samples, W + "queue_batches", state=state)
            for state in ("queued", "dequeued", "started", "claimed")
        )
        done = total(samples, W + "webhook_deliveries_processed_total") >= applied
        if not busy and done and processed(urls) >= count:
            # the in-flight gauges come from a snapshot at most worker.api_cache_seconds old: the
            # first one read after the drain is the last state
            time.sleep(API_CACHE_SECONDS)
            return scrape(urls[0])
        time.sleep(0.1)
    raise AssertionError(f"not drained: {processed(urls)} of {count} processed\n{system.logs()[-3000:]}")


def test_two_workers_with_repeats_and_any_order_match_one_worker_in_order(system, redis, make_settings):
    deliveries = run_copies(RUNS)
    expected = aggregates(expected_from_one_worker_in_order(redis, make_settings, deliveries))
    job_test = {
        "repository": "krzko/webhook-testing", "workflow": "Tests", "job": "test", "conclusion": "success",
        "runner_group": "GitHub Actions", "runs_on": "ubuntu-latest", "attempt": "rerun",
    }  # fmt: skip
    assert expected[(W + "job_run_total", frozenset(job_test.items()))] == RUNS

    system.start("receiver")
    system.start("worker")
    second_port = free_port()
    system.start("worker-2", worker_port=second_port)
    rng = random.Random(7)  # noqa: S311 - a reproducible shuffle, not a secret
    stream = [(d, f"guid-{i}") for i, d in enumerate(deliveries)]
    stream += [(d, f"replay-{i}") for i, d in enumerate(rng.sample(deliveries, len(deliveries) // 3))]
    redelivered = rng.sample(stream, 20)
    rng.shuffle(stream)
    for delivery, guid in stream:
        assert system.send(delivery.event, delivery.body, guid) == 202
    for delivery, guid in redelivered:  # GitHub's "Redeliver": same GUID, acknowledged, not queued
        assert system.send(delivery.event, delivery.body, guid) == 200

    urls = [system.worker_metrics_url, f"http://127.0.0.1:{second_port}/metrics"]
    first = wait_until_drained(system, urls, len(stream))
    assert processed(urls) == len(stream)  # every acknowledged delivery accounted for exactly once
    assert aggregates(first) == {
        k: v for k, v in expected.items() if not k[0].startswith(W + ORDER_SENSITIVE[0])
    }
    assert aggregates(scrape(urls[1])) == aggregates(first)  # replicas agree
    both = [scrape(url) for url in urls]
    assert sum(total(s, W + "webhook_events_processed_total", effect="unchanged") for s in both) >= len(
        stream
    ) - len(deliveries)


def test_a_worker_killed_mid_stream_and_restarted_ends_with_the_exact_totals(system, redis, make_settings):
    deliveries = run_copies(RUNS * 3)
    expected = aggregates(expected_from_one_worker_in_order(redis, make_settings, deliveries))
    system.start("receiver")
    for index, delivery in enumerate(deliveries):
        assert system.send(delivery.event, delivery.body, f"guid-{index}") == 202
    system.start("worker")
    deadline = time.monotonic() + 30
    while processed([system.worker_metrics_url]) < 20:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    system.kill("worker")  # SIGKILL, mid-stream: its job in hand is abandoned, its memory lost
    system.start("worker")
    samples = wait_until_drained(system, [system.worker_metrics_url], 0, applied=len(deliveries))
    assert total(samples, W + "queue_batches", state="failed") == 0
    assert aggregates(samples) == expected
