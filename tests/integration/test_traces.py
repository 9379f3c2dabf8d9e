"""Traces: the corpus's run as spans by OpenTelemetry's CI/CD conventions, sent from the outbox in
Redis to an OTLP/HTTP endpoint on loopback that decodes them with ``opentelemetry-proto``."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from opentelemetry.semconv._incubating.attributes import cicd_attributes, vcs_attributes
from opentelemetry.semconv.attributes import error_attributes

from bench.otlp_sink import Collector
from shared import keys
from tests.corpus import KRZKO, SEQUENCE, Delivery, accepted, load, run_copies
from worker import trace_entries
from worker.__main__ import trace_loop
from worker.otlp import GITHUB_ATTRIBUTES
from worker.outbox import Outbox
from worker.trace_export import TraceLoop

pytestmark = pytest.mark.integration
RUN_ID, ATTEMPT = 6454805877, 10
JOBS = {17556730984: "pre-commit", 17556741424: "test"}
CONVENTIONS = {
    value
    for module in (cicd_attributes, vcs_attributes, error_attributes)
    for name, value in vars(module).items()
    if name.isupper() and isinstance(value, str)
}


@pytest.fixture(name="collector")
def _collector():
    with Collector() as collector:
        yield collector


def traced(make_exporter, collector, **env):
    env.setdefault("GHA_EXPORTER_TRACES__STEPS", "true")
    exporter = make_exporter(GHA_EXPORTER_TRACES__OTLP_ENDPOINT=collector.url, **env)
    loop = trace_loop(exporter.connection, exporter.settings, exporter.registry)
    assert loop is not None
    return exporter, loop


def feed(exporter, deliveries, prefix="d"):
    batch = [accepted(d.event, f"{prefix}-{i}", d.body) for i, d in enumerate(deliveries)]
    exporter.processor.process_batch(exporter.queued(*batch))


def by_name(collector):
    return {r.span.name: r for r in collector.received}


def test_the_corpus_run_arrives_as_a_tree_by_the_cicd_conventions(make_exporter, collector):
    exporter, loop = traced(make_exporter, collector)
    feed(exporter, [load(path) for path in SEQUENCE])
    assert Outbox(exporter.connection).waiting().entries == 3  # two jobs and the run, counted
    assert loop.tick() == 3
    spans = by_name(collector)
    run = spans["RUN Tests"]
    trace = trace_entries.trace_id(RUN_ID, ATTEMPT).to_bytes(16, "big")
    assert run.span.kind == Span.SPAN_KIND_SERVER
    assert run.span.parent_span_id == b""
    assert run.span.trace_id == trace
    assert run.attributes[cicd_attributes.CICD_PIPELINE_RESULT] == "success"
    assert run.attributes[cicd_attributes.CICD_PIPELINE_RUN_ID] == str(RUN_ID)
    assert run.attributes[vcs_attributes.VCS_REPOSITORY_NAME] == "webhook-testing"
    assert run.attributes[vcs_attributes.VCS_OWNER_NAME] == "krzko"
    assert run.attributes["github.actions.run.attempt"] == ATTEMPT
    assert run.resource["service.name"] == "gha-exporter"
    assert len(run.span.links) == 1  # attempt 10 links to attempt 9's run span
    assert run.span.links[0].span_id == trace_entries.run_span_id(RUN_ID, ATTEMPT - 1).to_bytes(8, "big")
    for job_id, name in JOBS.items():
        job = spans[name]
        assert job.span.kind == Span.SPAN_KIND_INTERNAL
        assert job.span.trace_id == trace
        assert job.span.parent_span_id == run.span.span_id
        assert job.attributes[cicd_attributes.CICD_PIPELINE_TASK_RUN_ID] == str(job_id)
        assert job.attributes[cicd_attributes.CICD_PIPELINE_TASK_RUN_RESULT] == "success"
        assert job.attributes[cicd_attributes.CICD_WORKER_NAME].startswith("GitHub Actions")
        children = [r for r in collector.received if r.span.parent_span_id == job.span.span_id]
        pending = [r for r in children if r.span.name == "pending"]
        assert len(pending) == 1
        assert pending[0].span.start_time_unix_nano == job.span.start_time_unix_nano
        assert pending[0].attributes[cicd_attributes.CICD_PIPELINE_RUN_STATE] == "pending"
        steps = [r for r in children if r.span.name != "pending"]
        assert steps
        assert all(s.attributes[cicd_attributes.CICD_PIPELINE_TASK_RUN_RESULT] for s in steps)
        assert all(job.span.start_time_unix_nano <= s.span.start_time_unix_nano for s in children)
    # pre-commit: queued 10:11:27, started 10:11:34, completed 10:11:44
    pre_commit = spans["pre-commit"]
    assert (pre_commit.span.end_time_unix_nano - pre_commit.span.start_time_unix_nano) // 10**9 == 17
    names = {key for r in collector.received for key in r.attributes}
    assert names - CONVENTIONS <= set(GITHUB_ATTRIBUTES), names - CONVENTIONS
    assert exporter.total("traces_exported_total") == len(collector.received)
    assert exporter.total("traces_pending") == 0
    assert loop.tick() == 0  # nothing sent twice


def test_a_failed_job_is_an_error_span_with_its_conclusion_as_error_type(make_exporter, collector):
    exporter, loop = traced(make_exporter, collector)
    failed = load(KRZKO.format("job", "5_workflow_job_completed")).data
    failed["workflow_job"]["conclusion"] = "timed_out"
    feed(
        exporter,
        [type(load(SEQUENCE[0]))(load(SEQUENCE[0]).path, "workflow_job", json.dumps(failed).encode())],
    )
    loop.tick()
    job = by_name(collector)["pre-commit"]
    assert job.attributes[cicd_attributes.CICD_PIPELINE_TASK_RUN_RESULT] == "timeout"
    assert job.attributes[error_attributes.ERROR_TYPE] == "timed_out"
    assert job.span.status.code == Status.STATUS_CODE_ERROR


def test_redelivered_and_shuffled_lifecycles_give_the_same_spans(make_exporter, collector):
    exporter, loop = traced(make_exporter, collector)
    deliveries = [load(path) for path in SEQUENCE]
    feed(exporter, deliveries)
    loop.tick()
    first = sorted((r.span.trace_id, r.span.span_id, r.span.parent_span_id) for r in collector.received)
    exporter.connection.flushdb()
    collector.received.clear()
    shuffled = deliveries * 2  # each one redelivered
    random.Random(7).shuffle(shuffled)  # noqa: S311 - an order, not a secret
    for i, delivery in enumerate(shuffled):
        feed(exporter, [delivery], prefix=f"shuffled-{i}")  # one batch each, in the shuffled order
    loop.tick()
    again = sorted((r.span.trace_id, r.span.span_id, r.span.parent_span_id) for r in collector.received)
    assert again == first


def test_two_workers_send_each_span_once(make_exporter, collector):
    one, loop_one = traced(make_exporter, collector)
    two, loop_two = traced(make_exporter, collector)
    deliveries = [load(path) for path in SEQUENCE]
    feed(one, deliveries[:5])
    feed(two, deliveries, prefix="again")  # the same run through the other worker: counted once
    taken = loop_one.tick() + loop_two.tick() + loop_one.tick()
    assert taken == 3
    assert set(collector.span_ids().values()) == {1}


def test_two_workers_sending_at_once_send_each_span_once(make_exporter, collector):
    one, loop_one = traced(make_exporter, collector, GHA_EXPORTER_TRACES__STEPS="false")
    _two, loop_two = traced(make_exporter, collector, GHA_EXPORTER_TRACES__STEPS="false")
    feed(one, run_copies(400))  # 1,200 entries: six requests of 200
    with ThreadPoolExecutor(2) as pool:
        taken = 0
        while Outbox(one.connection).waiting().entries:
            taken += sum(pool.map(lambda loop: loop.tick(), (loop_one, loop_two)))
    assert taken == 1_200
    assert len(collector.span_ids()) == 400 * 5
    assert set(collector.span_ids().values()) == {1}


def test_a_dead_senders_entries_are_taken_over_when_its_lease_lapses(make_exporter, collector):
    """A worker took the lease and the oldest entries, and died before the collector answered: the
    other worker waits while the lease holds, then sends every entry, each once."""
    exporter, made = traced(make_exporter, collector, GHA_EXPORTER_TRACES__STEPS="false")
    feed(exporter, [load(path) for path in SEQUENCE])
    dead = exporter.connection.lock(keys.OUTBOX_LOCK, timeout=1, blocking=False, thread_local=False)
    assert dead.acquire()  # and never renewed nor released: the worker is gone
    Outbox(exporter.connection).take(200, hold_ms=1000)  # what it was sending
    loop = TraceLoop(exporter.connection, made._export, lease_seconds=1)
    assert loop.tick() == 0  # the lease holds
    deadline = time.monotonic() + 10
    taken = 0
    while taken < 3 and time.monotonic() < deadline:
        time.sleep(0.2)  # polled until the lease lapses (1 s), not slept on once
        taken += loop.tick()
    assert taken == 3
    assert len(collector.span_ids()) == 5
    assert set(collector.span_ids().values()) == {1}


def test_a_collector_that_answers_503_with_retry_after_gets_every_span_once_later(make_exporter, collector):
    exporter, loop = traced(make_exporter, collector)
    collector.answers = [(503, {"Retry-After": "0"}), (429, {"Retry-After": "0"}), (502, {})]
    feed(exporter, [load(path) for path in SEQUENCE])
    assert loop.tick() == 0
    assert exporter.total("traces_export_errors_total", status="503") == 1
    assert Outbox(exporter.connection).waiting().entries == 3  # kept
    assert loop.tick() == 0  # Retry-After 0: at once; 429
    assert loop.tick() == 0  # 502: no Retry-After, waits 1 s (the next tick) ... then
    export = loop._export
    export._resume_at = 0.0
    assert loop.tick() == 3
    assert set(collector.span_ids().values()) == {1}
    assert exporter.total("traces_export_errors_total") == 3


def test_a_request_the_collector_refuses_is_split_until_the_bad_entry_is_dropped(make_exporter, collector):
    exporter, loop = traced(make_exporter, collector)
    feed(exporter, [load(path) for path in SEQUENCE])
    collector.answers = [(400, {}), (400, {})]  # the 3 entries refused, then the first alone: dropped
    taken = loop.tick()
    assert exporter.total("traces_dropped_total", reason="rejected") == 1
    assert taken == 2
    assert exporter.total("traces_pending") == 0


def test_past_the_bound_the_oldest_entries_are_dropped_and_counted(make_exporter, collector):
    exporter, loop = traced(make_exporter, collector, GHA_EXPORTER_TRACES__MAX_PENDING="100")
    completed = load(KRZKO.format("job", "5_workflow_job_completed"))
    bodies = []
    for job_id in range(1, 131):
        data = completed.data
        data["workflow_job"]["id"] = job_id
        bodies.append(Delivery(completed.path, "workflow_job", json.dumps(data).encode()))
    feed(exporter, bodies)
    waiting = Outbox(exporter.connection).waiting()
    assert waiting.entries == 100
    assert waiting.dropped == {"outbox_full": 30}
    loop.tick()
    task_ids = Counter(r.attributes[cicd_attributes.CICD_PIPELINE_TASK_RUN_ID] for r in collector.received
                       if r.span.name == "pre-commit")  # fmt: skip
    assert set(task_ids) == {str(job_id) for job_id in range(31, 131)}  # the newest 100, once each


def test_the_exemplars_carry_the_trace_and_span_of_their_job(make_exporter, collector):
    from tests.integration.test_exemplars import exemplars  # noqa: PLC0415 - one helper

    exporter, _loop = traced(make_exporter, collector, GHA_EXPORTER_TRACES__STEPS="false")
    feed(exporter, [load(path) for path in SEQUENCE])
    found = {e.labels["job_id"]: e.labels for e in exemplars(exporter, "job_run_duration_seconds").values()}
    labels = found["17556730984"]
    assert labels["trace_id"] == trace_entries.trace_hex(trace_entries.trace_id(RUN_ID, ATTEMPT))
    assert labels["span_id"] == trace_entries.span_hex(trace_entries.job_span_id(17556730984, ATTEMPT))
    waits = exemplars(exporter, "job_queue_duration_seconds").values()
    assert {e.labels["span_id"] for e in waits} >= {
        trace_entries.span_hex(trace_entries.wait_span_id(17556730984, ATTEMPT))
    }
    runs = exemplars(exporter, "workflow_run_duration_seconds").values()
    assert {e.labels["span_id"] for e in runs} == {
        trace_entries.span_hex(trace_entries.run_span_id(RUN_ID, ATTEMPT))
    }
