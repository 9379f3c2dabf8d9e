import json

import pytest

from shared.envelope import Envelope
from tests.corpus import Delivery, load
from worker.jobs import bind, process_deliveries, unbind
from worker.marks import ProgressMarks
from worker.metrics import WorkerMetrics, label_problems
from worker.processor import Processor

KRZKO = "grafana-ci-otel-collector/workflow_{}/{}.json"
SEQUENCE = [  # one real run, in the order GitHub delivered it
    KRZKO.format("job", "1_workflow_job_queued"),
    KRZKO.format("run", "2_workflow_run_in_progress"),
    KRZKO.format("job", "3_workflow_job_in_progress"),
    KRZKO.format("job", "4_workflow_job_queued"),
    KRZKO.format("job", "5_workflow_job_completed"),
    KRZKO.format("job", "6_workflow_job_in_progress"),
    KRZKO.format("run", "7_workflow_run_in_progress"),
    KRZKO.format("run", "8_workflow_run_completed"),
    KRZKO.format("job", "9_workflow_job_completed"),
]
P = "github_actions_"
JOB = {"repository": "krzko/webhook-testing", "workflow": "Tests", "runner_group": "GitHub Actions",
       "runs_on": "ubuntu-latest"}  # fmt: skip
RUN = {"repository": "krzko/webhook-testing", "workflow": "Tests", "event": "push", "conclusion": "success"}


def envelope(delivery: Delivery, delivery_id: str = "d-1", received_at: float = 1000.0) -> dict:
    return Envelope.from_bytes(delivery.event, delivery_id, "hook", received_at, delivery.body).to_dict()


@pytest.fixture(name="processor")
def _processor(registry, fake_redis, make_settings):
    settings = make_settings()
    return Processor(
        WorkerMetrics(registry, settings.metrics), ProgressMarks(fake_redis, 3600), clock=lambda: 1002.5
    )


def value(registry, name, **labels):
    return registry.get_sample_value(P + name, labels) or 0.0


def test_real_run_moves_each_metric_once(processor, registry):
    for i, path in enumerate(SEQUENCE):
        processor.process(envelope(load(path), f"d-{i}"))
    for job, queued, ran in (("pre-commit", 7.0, 10.0), ("test", 6.0, 16.0)):
        assert value(registry, "job_run_total", job=job, conclusion="success", **JOB) == 1
        assert value(registry, "job_run_duration_seconds_sum", job=job, conclusion="success", **JOB) == ran
        assert value(registry, "job_queue_duration_seconds_count", job=job, **JOB) == 1
        assert value(registry, "job_queue_duration_seconds_sum", job=job, **JOB) == queued
    assert value(registry, "workflow_run_total", **RUN) == 1
    assert value(registry, "workflow_run_duration_seconds_sum", **RUN) == 45.0  # 10:11:25 -> 10:12:10
    assert value(registry, "webhook_events_processed_total", event="workflow_job", action="queued") == 2
    assert value(registry, "webhook_events_processed_total", event="workflow_job", action="completed") == 2
    assert value(registry, "webhook_events_processed_total", event="workflow_run", action="in_progress") == 2
    assert value(registry, "webhook_processing_lag_seconds_count") == 9
    assert value(registry, "webhook_processing_lag_seconds_sum") == 9 * 2.5


def test_repeated_deliveries_count_once(processor, registry):
    for i, path in enumerate(SEQUENCE * 3):
        processor.process(envelope(load(path), f"replay-{i}"))
    assert value(registry, "job_run_total", job="test", conclusion="success", **JOB) == 1
    assert value(registry, "job_queue_duration_seconds_count", job="test", **JOB) == 1
    assert value(registry, "workflow_run_total", **RUN) == 1
    assert value(registry, "webhook_events_processed_total", event="workflow_job", action="completed") == 6


def test_queued_payload_never_gives_queue_time(processor, registry):
    processor.process(envelope(load(KRZKO.format("job", "1_workflow_job_queued"))))
    assert value(registry, "job_queue_duration_seconds_count", job="pre-commit", **JOB) == 0


def test_completed_before_in_progress_still_one_queue_time(processor, registry):
    processor.process(envelope(load(KRZKO.format("job", "9_workflow_job_completed"))))
    processor.process(envelope(load(KRZKO.format("job", "6_workflow_job_in_progress"))))
    assert value(registry, "job_queue_duration_seconds_count", job="test", **JOB) == 1
    assert value(registry, "job_queue_duration_seconds_sum", job="test", **JOB) == 6.0


def test_job_without_runner_is_counted_without_duration_or_queue_time(processor, registry):
    delivery = load(
        "actions-runner-controller/workflow_job/webhook_workflow_job_with_completed_failure_check_run.json"
    )
    processor.process(envelope(delivery))
    job = delivery.data["workflow_job"]
    labels = {
        "repository": delivery.data["repository"]["full_name"],
        "workflow": job.get("workflow_name") or "",
        "job": job["name"],
        "conclusion": "failure",
        "runner_group": "",
        "runs_on": "",
    }
    assert value(registry, "job_run_total", **labels) == 1
    assert value(registry, "job_run_duration_seconds_count", **labels) == 0
    assert registry.get_sample_value(P + "job_queue_duration_seconds_count", {**labels}) is None


def test_negative_queue_time_is_clamped_to_zero(processor, registry):
    data = load(KRZKO.format("job", "6_workflow_job_in_progress")).data
    data["workflow_job"]["created_at"] = "2023-10-13T10:12:00Z"  # after started_at 10:11:52
    processor.process(envelope(Delivery(load(KRZKO.format("job", "6_workflow_job_in_progress")).path,
                                        "workflow_job", json.dumps(data).encode())))  # fmt: skip
    assert value(registry, "job_queue_duration_seconds_count", job="test", **JOB) == 1
    assert value(registry, "job_queue_duration_seconds_sum", job="test", **JOB) == 0


def test_unusable_payloads_are_counted_and_do_not_raise(processor, registry):
    processor.process({"not": "an envelope"})
    bad = Envelope("workflow_job", "d-bad", "hook", 1000.0, "{not json").to_dict()
    processor.process(bad)
    stub = load("grafana-ci-otel-collector/workflow_run/1_workflow_run_requested.json")
    processor.process(envelope(stub))
    assert value(registry, "webhook_processing_errors_total", event="unknown", reason="bad_envelope") == 1
    assert (
        value(registry, "webhook_processing_errors_total", event="workflow_job", reason="invalid_json") == 1
    )
    assert (
        value(registry, "webhook_processing_errors_total", event="workflow_run", reason="missing_field") == 1
    )
    assert value(registry, "webhook_processing_lag_seconds_count") == 0


def test_job_function_processes_a_list_and_counts_a_malformed_job(processor, registry):
    token = bind(processor)
    try:
        assert process_deliveries([envelope(load(p), f"d-{i}") for i, p in enumerate(SEQUENCE)]) == 9
        assert process_deliveries("garbage") == 0
        assert process_deliveries([1, 2], extra=True) == 0
    finally:
        unbind(token)
    assert value(registry, "workflow_run_total", **RUN) == 1
    assert value(registry, "webhook_processing_errors_total", event="unknown", reason="bad_job") == 2


def test_label_sets_are_configurable(registry, fake_redis, make_settings):
    settings = make_settings(GHA_EXPORTER_METRICS__LABELS='{job_run_total = ["repository", "conclusion"]}')
    processor = Processor(WorkerMetrics(registry, settings.metrics), ProgressMarks(fake_redis, 3600))
    for i, path in enumerate(SEQUENCE):
        processor.process(envelope(load(path), f"d-{i}"))
    assert value(registry, "job_run_total", repository="krzko/webhook-testing", conclusion="success") == 2


def test_unknown_labels_are_configuration_errors():
    problems = label_problems({"job_run_total": ("repository", "runner_name"), "nope": ("x",)})
    assert len(problems) == 2
    assert problems[0].startswith("metrics.labels.job_run_total")
    assert problems[1].startswith("metrics.labels.nope")
