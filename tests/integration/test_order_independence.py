"""Whatever the order and however often GitHub delivers a run's real deliveries, the final metrics
equal those of the single in-order sequence (property-based, against a real Redis)."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.corpus import KRZKO, SEQUENCE, load
from worker.otlp import SpanMaker
from worker.outbox import Outbox

pytestmark = pytest.mark.integration
# the run with only its first job ("pre-commit"): its queue time has one candidate
SECOND_JOB = (
    "4_workflow_job_queued.json",
    "6_workflow_job_in_progress.json",
    "9_workflow_job_completed.json",
)
ONE_JOB_RUN = [path for path in SEQUENCE if not path.endswith(SECOND_JOB)]
# With several jobs, a run's queue time uses the earliest job start seen when the run completed
# (README, "workflow_run_queue_duration_seconds"), so only the one-job run checks it.
ORDER_SENSITIVE = {"workflow_run_queue_duration_seconds"}
# Which deliveries changed something depends on the order; their number never does (checked below).
LEDGER = "webhook_deliveries_processed_total"
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def deliveries_of(paths):
    return [load(p).accepted(f"d-{i}") for i, p in enumerate(paths)]


def final_metrics(exporter, items, batch_size, ignore=frozenset(), order=None):
    """The metrics after ``items`` were queued through the receiver's intake, then applied in
    ``order`` (their indexes; a repeat is a batch retried), ``batch_size`` at a time."""
    exporter.connection.flushall()
    entries = exporter.queued(*items)
    ordered = entries if order is None else [entries[i] for i in order]
    for start in range(0, len(ordered), batch_size):
        exporter.processor.process_batch(ordered[start : start + batch_size])
    everything = exporter.reads.read_aggregates()
    processed = sum(values["v"] for values in everything[LEDGER].values())
    assert processed == len({item["delivery_id"] for item in ordered})  # each delivery accounted once
    aggregates = {k: v for k, v in everything.items() if k not in ignore and k != LEDGER}
    entries = exporter.reads.read_inflight().entries()
    inflight = sorted((e.kind, e.phase, tuple(e.group), e.since) for e in entries)
    return aggregates, inflight


def shuffled_with_repeats(size):
    return st.lists(st.integers(0, size - 1), max_size=size).flatmap(
        lambda extra: st.permutations(list(range(size)) + extra)
    )


@FAST
@given(order=shuffled_with_repeats(len(SEQUENCE)), batch_size=st.integers(1, 6))
def test_a_real_run_in_any_order_with_repeats(exporter, order, batch_size):
    items = deliveries_of(SEQUENCE)
    expected = final_metrics(exporter, items, 1, ORDER_SENSITIVE)
    assert expected[0]["job_run_total"]  # the in-order sequence does count something
    assert expected[1] == []  # and leaves nothing in flight
    assert final_metrics(exporter, items, batch_size, ORDER_SENSITIVE, order) == expected


@FAST
@given(order=shuffled_with_repeats(len(ONE_JOB_RUN)), batch_size=st.integers(1, 4))
def test_a_one_job_run_in_any_order_including_its_queue_time(exporter, order, batch_size):
    items = deliveries_of(ONE_JOB_RUN)
    expected = final_metrics(exporter, items, 1)
    assert expected[0]["workflow_run_queue_duration_seconds"]
    assert final_metrics(exporter, items, batch_size, order=order) == expected


@FAST
@given(order=shuffled_with_repeats(3))
def test_an_unfinished_job_ends_in_the_same_phase_in_any_order(exporter, order):
    """queued, in_progress and no completion: in progress, whatever came first."""
    queued, started = (
        KRZKO.format("job", "4_workflow_job_queued"),
        KRZKO.format("job", "6_workflow_job_in_progress"),
    )
    items = deliveries_of([queued, started, queued])
    expected = final_metrics(exporter, items, 1)
    assert [entry[1] for entry in expected[1]] == ["in_progress"]
    assert final_metrics(exporter, items, 1, order=order) == expected


def outbox_spans(exporter, items, batch_size, order=None):
    """The spans the outbox holds after ``items`` were applied in ``order``, ``batch_size`` at a time."""
    exporter.connection.flushall()
    entries = exporter.queued(*items)
    ordered = entries if order is None else [entries[i] for i in order]
    for start in range(0, len(ordered), batch_size):
        exporter.processor.process_batch(ordered[start : start + batch_size])
    maker = SpanMaker("gha-exporter")
    return sorted(
        span for entry in Outbox(exporter.connection).take(100, hold_ms=1) for span in maker.spans(entry.body)
    )


@FAST
@given(order=shuffled_with_repeats(len(SEQUENCE)), batch_size=st.integers(1, 6))
def test_a_real_runs_spans_are_the_same_in_any_order_with_repeats(make_exporter, order, batch_size):
    """With traces on, the outbox holds the same spans, to the byte, however the deliveries came."""
    exporter = make_exporter(GHA_EXPORTER_TRACES__OTLP_ENDPOINT="http://127.0.0.1:9/v1/traces",
                             GHA_EXPORTER_TRACES__STEPS="true")  # fmt: skip
    items = deliveries_of(SEQUENCE)
    expected = outbox_spans(exporter, items, 1)
    assert len(expected) > 5  # the run, two jobs, their waits and steps
    assert outbox_spans(exporter, items, batch_size, order) == expected
