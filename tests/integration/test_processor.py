"""The worker's processing rules, against a real Redis, on real payloads."""

import json
import time

import pytest

from receiver.intake import Accepted
from tests.corpus import KRZKO, SEQUENCE, accepted, load
from worker.batches import apply_batch, bind, unbind

pytestmark = pytest.mark.integration
JOB = {"repository": "krzko/webhook-testing", "workflow": "Tests", "runner_group": "GitHub Actions",
       "runs_on": "ubuntu-latest"}  # fmt: skip
RUN = {"repository": "krzko/webhook-testing", "workflow": "Tests", "event": "push", "conclusion": "success"}


def feed(exporter, paths, batch_size=1):
    items = exporter.queued(*[load(p).accepted(f"d-{i}") for i, p in enumerate(paths)])
    for start in range(0, len(items), batch_size):
        exporter.processor.process_batch(items[start : start + batch_size])


@pytest.mark.parametrize("batch_size", [1, 4, 9])
def test_real_run_moves_each_metric_once(exporter, batch_size):
    feed(exporter, SEQUENCE, batch_size)
    value = exporter.value
    for job, queued, ran in (("pre-commit", 7.0, 10.0), ("test", 6.0, 16.0)):
        assert value("job_run_total", job=job, conclusion="success", attempt="rerun", **JOB) == 1
        assert value("job_run_duration_seconds_sum", job=job, conclusion="success", **JOB) == ran
        assert value("job_run_duration_seconds_bucket", job=job, conclusion="success", le="10.0", **JOB) == (
            ran <= 10
        )
        assert value("job_queue_duration_seconds_count", job=job, **JOB) == 1
        assert value("job_queue_duration_seconds_sum", job=job, **JOB) == queued
    assert value("workflow_run_total", attempt="rerun", **RUN) == 1
    assert value("workflow_run_duration_seconds_sum", **RUN) == 45.0  # 10:11:25 -> 10:12:10
    run_queue = {k: RUN[k] for k in ("repository", "workflow", "event")}
    # re-run attempt: from run_started_at 10:11:25 to the first job start 10:11:34
    assert value("workflow_run_queue_duration_seconds_sum", **run_queue) == 9.0
    local = exporter.total
    assert local("webhook_events_processed_total", event="workflow_job", action="queued") == 2
    assert local("webhook_events_processed_total", event="workflow_job", effect="changed") == 6
    assert local("webhook_processing_lag_seconds_count") == 9
    # private repository on a standard Linux runner: 10 s and 16 s are a minute each, at $0.006
    cost = {"repository": "krzko/webhook-testing", "workflow": "Tests", "runner_class": "linux"}
    assert value("job_billable_minutes_total", **cost) == 2
    assert value("job_cost_usd_total", **cost) == pytest.approx(0.012)
    assert value("job_cost", job="test", **cost) == pytest.approx(0.006)
    # nothing left in flight once everything completed
    assert exporter.total("jobs_queued") + exporter.total("jobs_in_progress") == 0
    assert exporter.total("workflow_runs_in_progress") == 0


def test_repeated_deliveries_count_once_and_are_counted_as_unchanged(exporter):
    feed(exporter, SEQUENCE * 3, batch_size=5)
    assert exporter.value("job_run_total", job="test", conclusion="success", attempt="rerun", **JOB) == 1
    assert exporter.value("job_queue_duration_seconds_count", job="test", **JOB) == 1
    assert exporter.value("workflow_run_total", attempt="rerun", **RUN) == 1
    processed = exporter.total("webhook_events_processed_total")
    unchanged = exporter.total("webhook_events_processed_total", effect="unchanged")
    assert processed == 27
    # first pass: all but the second run in_progress (7) changed something; the repeats change nothing
    assert unchanged == 1 + 18


def test_in_flight_gauges_follow_the_jobs(exporter):
    feed(exporter, SEQUENCE[:1])  # pre-commit queued
    assert exporter.value("jobs_queued", runs_on="ubuntu-latest", runner_group="") == 1
    assert exporter.value("oldest_queued_job_age_seconds", runs_on="ubuntu-latest") > 0
    feed(exporter, SEQUENCE[:3])  # run in progress, pre-commit in progress
    assert exporter.total("jobs_queued") == 0
    assert exporter.value("jobs_in_progress", runs_on="ubuntu-latest", runner_group="GitHub Actions") == 1
    assert exporter.value("workflow_runs_in_progress") == 1
    feed(exporter, SEQUENCE[:5])  # test queued, pre-commit completed
    assert exporter.total("jobs_in_progress") == 0
    assert exporter.value("jobs_queued", runs_on="ubuntu-latest", runner_group="") == 1


def test_queued_payload_never_gives_queue_time(exporter):
    feed(exporter, [KRZKO.format("job", "1_workflow_job_queued")])
    assert exporter.value("job_queue_duration_seconds_count", job="pre-commit", **JOB) == 0


def test_completed_before_in_progress_still_one_queue_time_and_no_regression(exporter):
    feed(
        exporter,
        [KRZKO.format("job", "9_workflow_job_completed"), KRZKO.format("job", "6_workflow_job_in_progress")],
    )
    assert exporter.value("job_queue_duration_seconds_count", job="test", **JOB) == 1
    assert exporter.value("job_queue_duration_seconds_sum", job="test", **JOB) == 6.0
    assert exporter.total("jobs_in_progress") == 0  # completed is terminal


def test_job_without_runner_is_counted_without_duration_queue_time_or_cost(exporter):
    delivery = load(
        "actions-runner-controller/workflow_job/webhook_workflow_job_with_completed_failure_check_run.json"
    )
    exporter.processor.process_batch(exporter.queued(delivery.accepted("d-1")))
    job = delivery.data["workflow_job"]
    labels = {
        "repository": delivery.data["repository"]["full_name"],
        "workflow": job.get("workflow_name") or "",
        "job": job["name"],
        "conclusion": "failure",
        "runner_group": "",
        "runs_on": "",
    }
    assert exporter.value("job_run_total", attempt="first", **labels) == 1
    assert exporter.total("job_run_duration_seconds_count") == 0
    assert exporter.total("job_queue_duration_seconds_count") == 0
    assert exporter.total("job_billable_minutes_total") == 0


def test_negative_queue_time_is_clamped_to_zero(exporter):
    original = load(KRZKO.format("job", "6_workflow_job_in_progress"))
    data = original.data
    data["workflow_job"]["created_at"] = "2023-10-13T10:12:00Z"  # after started_at 10:11:52
    exporter.processor.process_batch(
        exporter.queued(accepted("workflow_job", "d-1", json.dumps(data).encode()))
    )
    assert exporter.value("job_queue_duration_seconds_count", job="test", **JOB) == 1
    assert exporter.value("job_queue_duration_seconds_sum", job="test", **JOB) == 0


def test_unusable_payloads_are_counted_and_do_not_stop_the_batch(exporter):
    stub = load("grafana-ci-otel-collector/workflow_run/1_workflow_run_requested.json")
    exporter.processor.process_batch([
        {"not": "an envelope"},
        *exporter.queued(
            accepted("workflow_job", "d-bad", b"{not json"),
            stub.accepted("d-stub"),
            load(KRZKO.format("job", "9_workflow_job_completed")).accepted("d-job"),
        ),
    ])  # fmt: skip
    local = exporter.total
    assert local("webhook_processing_errors_total", event="unknown", reason="bad_envelope") == 1
    assert local("webhook_processing_errors_total", event="workflow_job", reason="invalid_json") == 1
    assert local("webhook_processing_errors_total", event="workflow_run", reason="missing_field") == 1
    assert exporter.value("job_run_total", job="test", conclusion="success", attempt="rerun", **JOB) == 1


def test_job_function_processes_a_list_and_counts_a_malformed_job(exporter):
    token = bind(exporter.processor)
    try:
        entries = exporter.queued(*[load(p).accepted(f"d-{i}") for i, p in enumerate(SEQUENCE)])
        assert apply_batch(entries) == 9
        assert apply_batch("garbage") == 0
        assert apply_batch([1, 2], extra=True) == 0
    finally:
        unbind(token)
    assert exporter.value("workflow_run_total", attempt="rerun", **RUN) == 1
    assert exporter.total("webhook_processing_errors_total", event="unknown", reason="bad_batch") == 2


def test_label_sets_are_configurable(make_exporter):
    exporter = make_exporter(GHA_EXPORTER_METRICS__LABELS='{job_run_total = ["repository", "conclusion"]}')
    feed(exporter, SEQUENCE)
    assert exporter.value("job_run_total", repository="krzko/webhook-testing", conclusion="success") == 2


def test_a_restarted_worker_and_a_second_replica_show_the_same_totals(make_exporter):
    first = make_exporter()
    feed(first, SEQUENCE)
    second = make_exporter()
    for name in ("job_run_total", "job_queue_duration_seconds_sum", "workflow_run_total"):
        assert second.total(name) == first.total(name) > 0


def job_variant(job_id: int, name: str, **changes) -> Accepted:
    """The real completed job 'test' as another job: a new id and name."""
    data = load(KRZKO.format("job", "9_workflow_job_completed")).data
    data["workflow_job"].update(id=job_id, name=name, **changes)
    return accepted("workflow_job", f"d-{job_id}", json.dumps(data).encode())


def test_cardinality_guard_folds_new_label_sets_into_overflow(make_exporter):
    exporter = make_exporter(GHA_EXPORTER_METRICS__MAX_SERIES_PER_FAMILY="2")
    exporter.processor.process_batch(exporter.queued(*[job_variant(i, f"job-{i}") for i in range(1, 6)]))
    assert exporter.total("job_run_total") == 5
    assert exporter.total("job_run_total", job="__overflow__") == 3
    assert exporter.total("job_run_total", job="job-1") == 1
    assert exporter.value("series_folded_total", family="job_run_total") == 3
    # a known label set keeps counting past the limit
    exporter.processor.process_batch(exporter.queued(job_variant(9, "job-1")))
    assert exporter.total("job_run_total", job="job-1") == 2
    # three jobs of one new label set in one batch: one write for the three (merged), three folded
    exporter.processor.process_batch(exporter.queued(*[job_variant(i, "job-7") for i in (71, 72, 73)]))
    assert exporter.total("job_run_total", job="__overflow__") == 6
    assert exporter.value("series_folded_total", family="job_run_total") == 6


def test_step_metrics_are_off_by_default_and_counted_once_when_on(make_exporter):
    off = make_exporter()
    feed(off, SEQUENCE)
    assert off.total("job_step_total") == 0
    on = make_exporter(GHA_EXPORTER_METRICS__STEP_METRICS="true")
    on.connection.flushall()
    feed(on, SEQUENCE * 2)
    steps = load(KRZKO.format("job", "9_workflow_job_completed")).data["workflow_job"]["steps"]
    assert on.total("job_step_total", job="test") == len(steps)
    first = steps[0]
    assert on.total("job_step_total", job="test", step=first["name"], conclusion=first["conclusion"]) == 1
    assert on.total("job_step_duration_seconds_count", job="test") == len(steps)


def test_jobs_stuck_past_their_ttl_are_counted_as_expired_once(make_exporter):
    """Expiry goes by when the state was last written (its Redis TTL), never by GitHub's timestamps:
    these deliveries are from 2023, replayed now."""
    exporter = make_exporter()
    feed(
        exporter,
        [KRZKO.format("job", "1_workflow_job_queued"), KRZKO.format("run", "2_workflow_run_in_progress")],
    )
    assert exporter.total("jobs_queued") == 1
    now = time.time()
    assert exporter.expiry.sweep(now) == 0  # written just now: in flight, however old its timestamps
    exporter.connection.delete("gha-exporter:state:job:17556730984:10")  # its TTL ran out
    assert exporter.expiry.sweep(now) == 1
    assert exporter.expiry.sweep(now) == 0  # counted once, by whichever worker swept first
    assert exporter.value("state_expired_total", kind="job", phase="queued") == 1
    assert exporter.total("jobs_queued") == 0
    assert exporter.total("workflow_runs_in_progress") == 1  # runs have their own, longer TTL
    [run] = exporter.connection.keys("gha-exporter:state:run:*")
    exporter.connection.delete(run)
    assert exporter.expiry.sweep(now) == 1
    assert exporter.value("state_expired_total", kind="run", phase="in_progress") == 1


def test_a_settled_state_is_kept_as_long_as_the_marks_and_a_completed_run_keeps_little(make_exporter):
    exporter = make_exporter(
        GHA_EXPORTER_STATE__JOB_TTL_SECONDS="7200", GHA_EXPORTER_WEBHOOK__DEDUPE_TTL_SECONDS="400000"
    )
    feed(exporter, [KRZKO.format("job", "1_workflow_job_queued")])
    job = "gha-exporter:state:job:17556730984:10"
    assert 7190 < exporter.connection.ttl(job) <= 7200  # in flight: state.job_ttl_seconds
    feed(exporter, SEQUENCE)
    assert 399_990 < exporter.connection.ttl(job) <= 400_000  # settled: as long as its marks
    [run] = exporter.connection.keys("gha-exporter:state:run:*")
    assert 399_990 < exporter.connection.ttl(run) <= 400_000
    assert exporter.total("workflow_run_queue_duration_seconds_count") == 1
    kept = {field.decode() for field in exporter.connection.hkeys(run)}
    assert kept == {"phase", "queue_observed"}  # what late deliveries need: it is done


def test_state_entries_expire(make_exporter):
    exporter = make_exporter(GHA_EXPORTER_STATE__JOB_TTL_SECONDS="3600")
    feed(exporter, [KRZKO.format("job", "1_workflow_job_queued")])
    ttl = exporter.connection.ttl("gha-exporter:state:job:17556730984:10")
    assert 3590 < ttl <= 3600


def test_public_repositories_run_free_on_standard_runners(exporter):
    data = load(KRZKO.format("job", "9_workflow_job_completed")).data
    data["repository"].update(private=False, visibility="public")
    exporter.processor.process_batch(
        exporter.queued(accepted("workflow_job", "d", json.dumps(data).encode()))
    )
    labels = {"repository": "krzko/webhook-testing", "workflow": "Tests", "runner_class": "linux"}
    assert exporter.value("job_run_total", job="test", conclusion="success", attempt="rerun", **JOB) == 1
    assert exporter.value("job_cost_usd_total", **labels) == 0
    assert exporter.value("job_billable_minutes_total", **labels) == 0


def test_jobs_waiting_for_approval_are_their_own_gauge(exporter):
    waiting = load("octokit-webhooks/workflow_job/waiting.payload.json")
    exporter.processor.process_batch(exporter.queued(waiting.accepted("d-1")))
    assert exporter.value("jobs_waiting", runs_on="k8s,self-hosted", runner_group="") == 1
    assert exporter.total("jobs_queued") == 0


def test_every_delivery_is_accounted_once_in_redis_even_when_its_job_is_retried(exporter):
    batch = exporter.queued(
        *[load(path).accepted(f"d-{i}") for i, path in enumerate(SEQUENCE)],
        accepted("workflow_job", "d-bad", b"{not json"),
    )
    exporter.processor.process_batch(batch)
    exporter.processor.process_batch(batch)  # RQ retried the job after a worker died past its commit
    ledger = {"event": "workflow_job"}
    assert exporter.total("webhook_deliveries_processed_total") == 10
    assert exporter.value("webhook_deliveries_processed_total", result="invalid", **ledger) == 1
    assert exporter.total("webhook_deliveries_processed_total", result="changed") == 8
    assert exporter.total("webhook_events_processed_total", effect="replayed") == 10  # the bad one too
    assert exporter.value("job_run_total", job="test", conclusion="success", attempt="rerun", **JOB) == 1
    assert exporter.connection.hgetall("gha-exporter:delivery:hook:d-3") == {b"state": b"applied"}


@pytest.mark.parametrize("body", ["real", "unusable"])
def test_a_delivery_another_worker_applies_between_reading_and_writing_is_counted_once(make_exporter, body):
    """Worker B applies the delivery while worker A decides on it: A's write is refused (a changed
    state fails its WATCH; a delivery without state, only its mark, fails the marks' check: A read
    the mark's state with the body), A decides again, finds it applied, counts nothing."""
    first, second = make_exporter(), make_exporter()
    raw = load(SEQUENCE[-1]).body if body == "real" else b"{not json"
    batch = first.queued(accepted("workflow_job", "d-raced", raw))
    decide = first.processor.decide_batch
    raced: list[None] = []

    def decide_after_the_other_worker(*args):
        if not raced:
            raced.append(second.processor.process_batch(batch))
        return decide(*args)

    first.processor.decide_batch = decide_after_the_other_worker
    first.processor.process_batch(batch)
    assert first.total("webhook_deliveries_processed_total") == 1  # the Redis-side ledger
    assert first.total("worker_batch_conflicts_total") == 1
    assert first.total("webhook_events_processed_total", effect="replayed") == (body == "real")
