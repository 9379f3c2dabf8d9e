"""The real processes: ``python -m receiver`` and ``python -m worker`` against a real Redis.

Deliveries go over HTTP, signed as GitHub signs them; the numbers are read from /metrics.
"""

import json
import signal
import socket
import threading
import time

import pytest

from stack.redis_server import RedisServer
from tests.corpus import SEQUENCE, deliveries, load
from tests.e2e.system import System, handled, scrape, total

pytestmark = pytest.mark.e2e
SECRET = "e2e-secret-0123456789"
LIMIT = 100_000  # an overshoot that fits in loopback socket buffers: the 413 is read, not a reset
W = "github_actions_"


@pytest.fixture(name="redis", scope="module")
def _redis(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("e2e-redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="system", scope="module")
def _system(redis, tmp_path_factory):
    system = System(redis.url, SECRET, tmp_path_factory.mktemp("logs"))
    system.extra_env["GHA_EXPORTER_WEBHOOK__MAX_BODY_BYTES"] = str(LIMIT)
    system.start("receiver")
    system.start("worker")
    yield system
    system.stop_all()


def corpus_in_order():
    """The real krzko run first, in GitHub's order, then every other corpus delivery."""
    first = [load(path) for path in SEQUENCE]
    names = {d.name for d in first}
    rest = [d for d in deliveries() if d.event in ("workflow_job", "workflow_run") and d.name not in names]
    return first + rest


def expected_completions(sent, event, key):
    """Distinct attempts among the completed deliveries: what exactly-once counting must show."""
    attempts = set()
    for delivery in sent:
        data = delivery.data
        obj = data.get(key)
        done = data.get("action") == "completed" or (
            data.get("action") == "requested" and isinstance(obj, dict) and obj.get("status") == "completed"
        )
        if delivery.event == event and done and isinstance(obj, dict):
            attempts.add((obj["id"], obj.get("run_attempt") or 1))
    return len(attempts)


def test_corpus_moves_the_metrics_by_exactly_the_expected_amounts(system):
    sent = corpus_in_order()
    real_run = sent[: len(SEQUENCE)]
    for delivery in real_run:
        assert system.send(delivery.event, delivery.body) == 202, delivery.name
    samples = system.wait_processed(len(real_run))
    krzko = {"repository": "krzko/webhook-testing", "workflow": "Tests"}
    for job, queued, ran in (("pre-commit", 7.0, 10.0), ("test", 6.0, 16.0)):
        labels = {**krzko, "job": job, "runs_on": "ubuntu-latest", "runner_group": "GitHub Actions"}
        assert total(samples, W + "job_run_total", conclusion="success", **labels) == 1
        assert total(samples, W + "job_run_duration_seconds_sum", conclusion="success", **labels) == ran
        assert total(samples, W + "job_queue_duration_seconds_count", **labels) == 1
        assert total(samples, W + "job_queue_duration_seconds_sum", **labels) == queued
    assert total(samples, W + "workflow_run_total", event="push", conclusion="success", **krzko) == 1
    assert total(samples, W + "workflow_run_duration_seconds_sum", conclusion="success", **krzko) == 45.0

    for delivery in sent[len(real_run) :]:
        assert system.send(delivery.event, delivery.body) == 202, delivery.name
    samples = system.wait_processed(len(sent))
    assert total(samples, W + "webhook_events_processed_total") == len(sent) - 1
    assert total(samples, W + "webhook_processing_errors_total") == 1
    assert (
        total(samples, W + "webhook_processing_errors_total", event="workflow_run", reason="missing_field")
        == 1
    )
    assert total(samples, W + "job_run_total") == expected_completions(sent, "workflow_job", "workflow_job")
    assert total(samples, W + "workflow_run_total") == expected_completions(
        sent, "workflow_run", "workflow_run"
    )
    assert total(samples, W + "queue_batches", state="queued") == 0
    assert total(samples, W + "queue_batches", state="failed") == 0
    receiver = scrape(system.receiver_metrics_url)
    assert total(receiver, W + "webhook_deliveries_total", outcome="queued") == len(sent)


def test_bad_requests_get_their_answer_and_move_only_rejection_counters(system):
    worker_before = system.wait_processed(0)
    receiver_before = scrape(system.receiver_metrics_url)
    body = load("octokit-webhooks/workflow_job/completed.success.with-organization.payload.json").body
    cases = [
        ("forged", 401, {"X-Hub-Signature-256": "sha256=" + "0" * 64}, body),
        ("unsigned", 401, {"X-Hub-Signature-256": ""}, body),
        ("sha1 only", 401, {"X-Hub-Signature-256": "", "X-Hub-Signature": "sha1=" + "0" * 40}, body),
        ("truncated", 401, {"X-Hub-Signature-256": "sha256=abcd"}, body),
        ("no event", 400, {"X-GitHub-Event": ""}, body),
        ("no delivery", 400, {"X-GitHub-Delivery": ""}, body),
        ("bad form", 400, {"Content-Type": "application/x-www-form-urlencoded"}, body),
        ("oversized", 413, {}, b"{" + b" " * LIMIT + b"}"),
    ]
    for name, status, headers, payload in cases:
        event = headers.pop("X-GitHub-Event", "workflow_job")
        delivery = headers.pop("X-GitHub-Delivery", None)
        assert system.send(event, payload, delivery, **headers) == status, name

    receiver = scrape(system.receiver_metrics_url)
    moved = {
        key: receiver.get(key, 0) - receiver_before.get(key, 0)
        for key in set(receiver) | set(receiver_before)
        if receiver.get(key, 0) != receiver_before.get(key, 0) and "duration" not in key[0]
    }
    rejections = {
        dict(labels)["reason"]: v for (name, labels), v in moved.items() if name.endswith("rejections_total")
    }
    assert rejections == {
        "bad_signature": 1, "missing_signature": 1, "sha1_only": 1, "malformed_signature": 1,
        "missing_event_header": 1, "missing_delivery_header": 1, "malformed_form": 1, "too_large": 1,
    }  # fmt: skip
    outcomes = {dict(labels)["outcome"] for (name, labels) in moved if name.endswith("deliveries_total")}
    assert outcomes == {"rejected"}

    # Nothing reached the worker: a valid delivery sent now is the next and only one it processes.
    ping = load("grafana-ci-otel-collector/workflow_job/4_workflow_job_queued.json")
    assert system.send("workflow_job", ping.body) == 202
    processed_before = total(worker_before, W + "webhook_events_processed_total")
    after = system.wait_processed(
        processed_before + 1 + total(worker_before, W + "webhook_processing_errors_total")
    )
    assert total(after, W + "webhook_events_processed_total") == processed_before + 1
    assert total(after, W + "job_run_total") == total(worker_before, W + "job_run_total")


def test_a_huge_header_is_cut_off_while_deliveries_on_other_connections_are_answered(system):
    """One connection streams a 64 MB header; the receiver answers it 431 after its first
    receiver.max_header_bytes and closes it, so the attacker cannot send the rest, and signed
    deliveries on other connections are answered as usual (their times are printed, not asserted:
    before the cap, such a header held them up to 11 s)."""
    body = load("grafana-ci-otel-collector/workflow_job/4_workflow_job_queued.json").body
    before = scrape(system.receiver_metrics_url)
    worker_before = handled(system.wait_processed(0))
    huge, started, sent = 64 * 1024 * 1024, threading.Event(), [0]

    def attack() -> None:
        with socket.create_connection(("127.0.0.1", system.receiver_port), timeout=10) as conn:
            conn.sendall(b"POST /webhook HTTP/1.1\r\nHost: x\r\nX-Pad: ")
            started.set()
            chunk = b"a" * 65536
            try:
                while sent[0] < huge:
                    conn.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:  # reset or broken pipe: the receiver closed the connection
                return

    def timed_sends(count: int, tag: str) -> list[float]:
        seconds = []
        for i in range(count):
            start = time.perf_counter()
            assert system.send("workflow_job", body, f"huge-header-{tag}-{i}") == 202
            seconds.append(time.perf_counter() - start)
        return seconds

    alone = timed_sends(20, "alone")
    attacker = threading.Thread(target=attack)
    attacker.start()
    started.wait(10)
    during = timed_sends(20, "during")
    attacker.join(60)
    assert not attacker.is_alive()
    assert sent[0] < huge  # cut off: without the cap the receiver reads (and holds) all of it
    after = scrape(system.receiver_metrics_url)
    moved = total(after, W + "webhook_rejections_total", reason="headers_too_large") - total(
        before, W + "webhook_rejections_total", reason="headers_too_large"
    )
    assert moved == 1
    queued = total(after, W + "webhook_deliveries_total", outcome="queued") - total(
        before, W + "webhook_deliveries_total", outcome="queued"
    )
    assert queued == 40
    assert handled(system.wait_processed(worker_before + 40)) == worker_before + 40
    print(
        f"huge header: attacker cut off after {sent[0] / 1e6:.1f} MB sent;"
        f" deliveries alone max {max(alone) * 1000:.1f} ms, during max {max(during) * 1000:.1f} ms"
    )


def test_redelivery_is_acknowledged_once_and_counted_once(system):
    before = system.wait_processed(0)
    data = load("grafana-ci-otel-collector/workflow_job/9_workflow_job_completed.json").data
    data["workflow_job"]["id"] = 99  # a job the corpus does not have
    body = json.dumps(data).encode()
    assert system.send("workflow_job", body, "redelivered-guid") == 202
    assert system.send("workflow_job", body, "redelivered-guid") == 200
    assert system.send("workflow_job", body, "replayed-with-new-guid") == 202
    done = total(before, W + "webhook_events_processed_total") + total(
        before, W + "webhook_processing_errors_total"
    )
    after = system.wait_processed(done + 2)
    assert total(after, W + "job_run_total") == total(before, W + "job_run_total") + 1
    receiver = scrape(system.receiver_metrics_url)
    assert total(receiver, W + "webhook_deliveries_total", outcome="duplicate") == 1


def test_redis_outage_answers_503_and_both_processes_recover(system, redis):
    before = system.wait_processed(0)
    body = load("grafana-ci-otel-collector/workflow_job/4_workflow_job_queued.json").body
    redis.stop()
    assert system.send("workflow_job", body, "during-outage") == 503
    redis.start()
    assert system.send("workflow_job", body, "during-outage") == 202  # GitHub's redelivery
    done = total(before, W + "webhook_events_processed_total") + total(
        before, W + "webhook_processing_errors_total"
    )
    after = system.wait_processed(done + 1)
    assert (
        total(after, W + "webhook_events_processed_total")
        == total(before, W + "webhook_events_processed_total") + 1
    )
    assert total(scrape(system.receiver_metrics_url), W + "webhook_enqueue_failures_total") == 1


def test_sigterm_stops_both_warm_and_no_secret_reaches_the_logs(system):
    assert system.stop("worker") == 0
    # uvicorn re-raises the SIGTERM it handled once it has drained, so the status may say so
    assert system.stop("receiver") in (0, -signal.SIGTERM)
    logs = system.logs()
    assert "worker stopped" in logs
    assert "receiver stopped" in logs  # the lifespan's shutdown ran: a warm stop
    assert SECRET not in logs
    assert '"head_sha"' not in logs  # debug level included: no payload reaches a log line
    for line in filter(None, logs.splitlines()):
        json.loads(line)  # log.format=json: every line is one JSON object
