"""Exemplars: with OpenMetrics negotiated, each bucket of the job duration, job queue time and run
duration histograms carries the newest job (run) observed in it, kept in Redis; read back with
prometheus_client's OpenMetrics parser."""

import json
from datetime import UTC, datetime

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from tests.corpus import KRZKO, SEQUENCE, accepted, load

pytestmark = pytest.mark.integration
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
COMPLETED = KRZKO.format("job", "5_workflow_job_completed")  # pre-commit: started 10:11:34, took 10 s


def feed(exporter, bodies, first=0):
    deliveries = [accepted(event, f"d-{first + i}", body) for i, (event, body) in enumerate(bodies)]
    exporter.processor.process_batch(exporter.queued(*deliveries))


def epoch(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def iso(seconds):
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def job_like(job_id, shift, took=10):
    """The corpus's completed pre-commit job as another job of the same labels, ``shift`` seconds later."""
    data = load(COMPLETED).data
    job = data["workflow_job"]
    started = epoch(job["started_at"]) + shift
    job.update(
        id=job_id, created_at=iso(started - 7), started_at=iso(started), completed_at=iso(started + took)
    )
    return ("workflow_job", json.dumps(data).encode())


def exemplars(exporter, family):
    """``{(le, labels of the series): exemplar}`` of a histogram, from the OpenMetrics scrape."""
    body, _ = exporter.exposition.render(OPENMETRICS)
    found = {}
    for parsed in parse_openmetrics(body.decode()):
        for s in parsed.samples:
            if s.name == exporter.prefix + family + "_bucket" and s.exemplar is not None:
                labels = dict(s.labels)
                found[(labels.pop("le"), frozenset(labels.items()))] = s.exemplar
    return found


def test_each_histogram_shows_the_job_or_run_behind_its_bucket(exporter):
    feed(exporter, [(d.event, d.body) for d in map(load, SEQUENCE)])
    run = exemplars(exporter, "job_run_duration_seconds")
    by_job = {e.labels["job_id"]: (le, e) for (le, _labels), e in run.items()}
    assert set(by_job) == {"17556730984", "17556741424"}  # pre-commit, test
    le, pre_commit = by_job["17556730984"]
    assert pre_commit.labels == {"run_id": "6454805877", "job_id": "17556730984"}
    assert pre_commit.value == 10.0
    assert float(pre_commit.timestamp) == epoch("2023-10-13T10:11:44Z")  # its completed_at
    assert le == "10.0"  # the first bound at or above 10 s: the bucket it fell into

    queued = exemplars(exporter, "job_queue_duration_seconds")
    waits = {e.labels["job_id"]: (e.value, float(e.timestamp)) for e in queued.values()}
    assert waits["17556730984"] == (7.0, epoch("2023-10-13T10:11:34Z"))  # waited 7 s, until it started

    runs = exemplars(exporter, "workflow_run_duration_seconds")
    [(_, only)] = runs.items()
    assert only.labels == {"run_id": "6454805877"}
    assert only.value == 45.0  # run_started_at 10:11:25 to updated_at 10:12:10
    assert float(only.timestamp) == epoch("2023-10-13T10:12:10Z")


def test_text_format_carries_no_exemplar(exporter):
    feed(exporter, [(d.event, d.body) for d in map(load, SEQUENCE)])
    text, _ = exporter.exposition.render("")
    assert b"_bucket{" in text
    assert b"#" not in b"".join(line for line in text.splitlines() if not line.startswith(b"#"))


@pytest.mark.parametrize("order", ["oldest first", "newest first"])
def test_the_newest_job_of_a_bucket_wins_whatever_the_order(make_exporter, order):
    older, newer = job_like(1, shift=0), job_like(2, shift=3600)
    exporter = make_exporter()
    feed(exporter, [older, newer] if order == "oldest first" else [newer, older])
    [(le, exemplar)] = [(le, e) for (le, _), e in exemplars(exporter, "job_run_duration_seconds").items()]
    assert (le, exemplar.labels["job_id"]) == ("10.0", "2")
    replica = make_exporter()  # another worker on the same Redis shows the same
    assert exemplars(replica, "job_run_duration_seconds") == exemplars(exporter, "job_run_duration_seconds")


def test_buckets_keep_their_own_exemplar_and_ties_agree(make_exporter):
    quick, slow = job_like(1, shift=0, took=3), job_like(2, shift=0, took=700)
    same_time = [job_like(3, shift=60), job_like(4, shift=60)]  # same completed_at, same bucket
    seen = []
    for bodies in (same_time, same_time[::-1]):
        exporter = make_exporter()
        exporter.connection.flushdb()
        feed(exporter, [quick, slow, *bodies])
        found = exemplars(exporter, "job_run_duration_seconds")
        seen.append({le: e.labels["job_id"] for (le, _), e in found.items()})
    assert seen[0] == seen[1]
    assert seen[0]["5.0"] == "1"
    assert seen[0]["900.0"] == "2"
    assert seen[0]["10.0"] in {"3", "4"}


def test_exemplars_can_be_turned_off(make_exporter):
    exporter = make_exporter(GHA_EXPORTER_METRICS__EXEMPLARS="false")
    feed(exporter, [(d.event, d.body) for d in map(load, SEQUENCE)])
    assert exemplars(exporter, "job_run_duration_seconds") == {}
    stored = exporter.reads.read_fields()["job_run_duration_seconds"]
    assert stored
    assert not [field for field in stored if field.rpartition(b"\x1f")[2].startswith(b"x")]


def test_a_delivery_applied_twice_moves_no_exemplar(exporter):
    """A redelivery of an older job (new delivery id) is a repeat: the bucket keeps the newer job."""
    feed(exporter, [job_like(1, shift=0), job_like(2, shift=3600)])
    before = exemplars(exporter, "job_run_duration_seconds")
    feed(exporter, [job_like(1, shift=0)], first=100)
    assert exemplars(exporter, "job_run_duration_seconds") == before
    assert exporter.reads.read_aggregates()["job_run_duration_seconds"]  # numbers still decode
