"""What a signed but hostile (or careless) payload can do to the worker's numbers and its Redis,
against a real Redis: huge label values, many label sets in the in-flight gauges, timestamps no
job can have, and a scrape too large to render.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from receiver.intake import Accepted
from shared import keys
from tests.corpus import KRZKO, accepted, load
from worker import codec
from worker.metrics import Update

pytestmark = pytest.mark.integration
OPENMETRICS = "application/openmetrics-text; version=1.0.0"
MB_NAME = "x" * 1_000_000


def job(step: str, job_id: int, delivery: str | None = None, **changes: Any) -> Accepted:
    """A real job payload of the krzko run (``queued``, ``in_progress`` or ``completed``) as job
    ``job_id``, with ``changes`` to its ``workflow_job``."""
    name = {"queued": "1_workflow_job_queued", "in_progress": "6_workflow_job_in_progress"}.get(
        step, "9_workflow_job_completed"
    )
    data = load(KRZKO.format("job", name)).data
    data["workflow_job"].update(id=job_id, **changes)
    return accepted("workflow_job", delivery or f"{step}-{job_id}", json.dumps(data).encode(), "1", 1.8e9)


def run(delivery: str, **changes: Any) -> Accepted:
    data = load(KRZKO.format("run", "8_workflow_run_completed")).data
    data["workflow_run"].update(**changes)
    return accepted("workflow_run", delivery, json.dumps(data).encode(), "1", 1.8e9)


def apply(exporter, *deliveries: Accepted) -> None:
    """Queue ``deliveries`` through the receiver's intake and apply them as one batch."""
    exporter.processor.process_batch(exporter.queued(*deliveries))


def stored_strings(connection) -> list[bytes]:
    """Every key, field, member and value in Redis."""
    found: list[bytes] = []
    for key in connection.scan_iter():
        found.append(key)
        kind = connection.type(key)
        if kind == b"hash":
            for field, value in connection.hgetall(key).items():
                found += [field, value]
        elif kind == b"set":
            found += list(connection.smembers(key))
        elif kind == b"zset":
            found += connection.zrange(key, 0, -1)
        elif kind == b"string":
            found.append(connection.get(key))
        elif kind == b"list":
            found += connection.lrange(key, 0, -1)
    return found


# -- label values -------------------------------------------------------------------------------
def test_a_megabyte_job_name_is_cut_before_it_reaches_redis_and_counted(exporter):
    apply(exporter, *[job("queued", 1, name=MB_NAME), job("completed", 1, name=MB_NAME)])
    assert max(len(item) for item in stored_strings(exporter.connection)) < 4096
    [name] = {
        sample.labels["job"]
        for family in exporter.families()
        for sample in family.samples
        if "job" in sample.labels and sample.name.endswith("job_run_total")
    }
    assert len(name.encode()) <= 256
    assert name.startswith("xxxx")
    assert name.endswith("]")
    assert "…[" in name
    assert exporter.value("label_values_truncated_total", label="job") == 2  # queued, then completed
    assert exporter.total("job_run_total") == 1
    assert exporter.total("job_cost_usd_total") > 0
    # a repeat changes nothing, so it counts no cut either
    apply(exporter, *[job("completed", 1, "repeat", name=MB_NAME)])
    assert exporter.value("label_values_truncated_total", label="job") == 2


def test_long_values_that_share_their_start_stay_apart_and_stay_valid_utf8(make_exporter):
    exporter = make_exporter(GHA_EXPORTER_METRICS__MAX_LABEL_VALUE_BYTES="64")
    shared = "𝄞" * 40  # 4 bytes each: the cut falls inside a character unless it is careful
    apply(
        exporter,
        *[
            job("completed", 1, name=shared + "one"),
            job("completed", 2, name=shared + "two", labels=["r" * 500]),
        ],
    )
    names = {
        sample.labels["job"]: sample.labels["runs_on"]
        for family in parse_openmetrics(exporter.exposition.render(OPENMETRICS)[0].decode())
        for sample in family.samples
        if sample.name.endswith("job_run_total") and "job" in sample.labels
    }
    assert len(names) == 2
    for name, runs_on in names.items():
        assert len(name.encode()) <= 64
        assert name.startswith("𝄞")
        assert len(runs_on.encode()) <= 64
    assert exporter.value("label_values_truncated_total", label="job") == 2
    assert exporter.value("label_values_truncated_total", label="runs_on") == 1


# -- the in-flight gauges' guard -------------------------------------------------------------------
def test_inflight_gauges_fold_past_the_series_limit_and_leave_nothing_behind(make_exporter):
    exporter = make_exporter(GHA_EXPORTER_METRICS__MAX_SERIES_PER_FAMILY="3")
    jobs = range(1, 6)
    apply(exporter, *[job("queued", i, labels=[f"pool-{i}"]) for i in jobs])
    queued = {s.labels["runs_on"]: s.value for f in exporter.families() for s in f.samples
              if s.name == exporter.prefix + "jobs_queued"}  # fmt: skip
    assert queued == {"pool-1": 1, "pool-2": 1, "pool-3": 1, "__overflow__": 2}
    assert exporter.value("series_folded_total", family="jobs_queued") == 2
    assert exporter.value("oldest_queued_job_age_seconds", runs_on="__overflow__") > 0
    assert exporter.total("oldest_queued_job_age_seconds") > 0

    apply(exporter, *[job("in_progress", i, labels=[f"pool-{i}"]) for i in jobs])
    assert exporter.total("jobs_queued") == 0
    assert exporter.value("jobs_in_progress", runs_on="__overflow__", runner_group="__overflow__") == 2
    assert exporter.value("series_folded_total", family="jobs_in_progress") == 2

    apply(exporter, *[job("completed", i, labels=[f"pool-{i}"]) for i in jobs])
    assert exporter.total("jobs_in_progress") == 0
    for phase in ("queued", "waiting", "in_progress"):
        assert exporter.connection.zcard(keys.inflight("job", phase)) == 0  # the folded members left too
    assert exporter.total("job_run_total") == 5


# -- timestamps ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"started_at": "0001-01-01T00:00:00Z", "completed_at": "9999-12-31T23:59:59Z"},
            "implausible_duration",
        ),
        ({"completed_at": "2023-10-19T10:12:08Z"}, "implausible_duration"),  # 6 days
        (
            {"completed_at": "2023-10-13T10:01:52Z"},
            "implausible_duration",
        ),  # ends 10 minutes before its start
        ({"created_at": "2020-01-01T00:00:00Z"}, "implausible_queue_time"),  # waited years
    ],
)
def test_a_job_with_impossible_timestamps_is_an_error_and_moves_nothing(exporter, changes, reason):
    apply(exporter, *[job("completed", 1, **changes)])
    assert exporter.value("webhook_processing_errors_total", event="workflow_job", reason=reason) == 1
    assert exporter.value("webhook_deliveries_processed_total", event="workflow_job", result="invalid") == 1
    for family in ("job_run_total", "job_cost_usd_total", "job_billable_minutes_total",
                   "job_run_duration_seconds_count", "job_queue_duration_seconds_count"):  # fmt: skip
        assert exporter.total(family) == 0, family


def test_plausible_edges_and_old_payloads_still_count(exporter):
    apply(
        exporter,
        *[
            job("completed", 1, completed_at="2023-10-17T10:11:52Z"),  # 4 days
            job("completed", 2, completed_at="2023-10-13T10:11:42Z"),  # 10 s before its start: skew, 0
            job("completed", 3, created_at="2023-10-13T10:12:00Z"),  # created after it started: 0
            job("completed", 4),  # a real payload of 2023, delivered in 2027
        ],
    )
    assert exporter.total("webhook_processing_errors_total") == 0
    assert exporter.total("job_run_total") == 4
    assert exporter.total("job_run_duration_seconds_sum") == 4 * 86400 + 0 + 16 + 16
    assert exporter.total("job_queue_duration_seconds_sum") == 6 + 6 + 0 + 6


def test_a_run_longer_than_35_days_is_an_error_and_moves_nothing(exporter):
    apply(exporter, *[run("long", updated_at="2023-11-20T10:12:10Z")])
    assert (
        exporter.value("webhook_processing_errors_total", event="workflow_run", reason="implausible_duration")
        == 1
    )
    assert exporter.total("workflow_run_total") == 0
    apply(exporter, *[run("real")])
    assert exporter.total("workflow_run_total") == 1


# -- the scrape's bound --------------------------------------------------------------------------
def test_a_scrape_stops_at_its_byte_bound_with_whole_series_and_says_so(make_exporter):
    limit = 1024 * 1024
    exporter = make_exporter(GHA_EXPORTER_WORKER__MAX_SCRAPE_BYTES=str(limit))
    names = exporter.policy.names["job_run_duration_seconds"]
    updates = [
        Update(
            "job_run_duration_seconds", tuple(f"{name}-{i}-" + "v" * 40 for name in names), "observe", 30.0
        )
        for i in range(600)
    ]  # about 2.8 MB of text
    exporter.ledger.add(updates)
    for accept in ("", OPENMETRICS):
        chunks, _ = exporter.exposition.stream(accept)
        body = list(chunks)
        assert len(body) > 3  # streamed: the registry, then family by family
        text = b"".join(body)
        assert limit - 10_000 < len(text) <= limit + 1000  # the bound, and the closing family after it
        # the OpenMetrics parser refuses a histogram series without its +Inf bucket, count or sum
        families = (parse_openmetrics if accept else parse_text)(text.decode())
        samples = {s.name: s.value for f in families for s in f.samples if not s.labels}
        assert samples[exporter.prefix + "scrape_truncated"] == 1
    roomy = make_exporter(GHA_EXPORTER_WORKER__MAX_SCRAPE_BYTES=str(64 * limit))
    assert roomy.value("scrape_truncated") == 0
    assert roomy.total("job_run_duration_seconds_count") == 600


def test_a_run_queue_time_longer_than_a_run_can_live_is_not_observed(exporter):
    """A first attempt created in 2020 whose first job started in 2023: the run's own timestamps
    are plausible (run_started_at to updated_at), the queue time between them is not."""
    apply(
        exporter,
        *[run("old", run_attempt=1, created_at="2020-01-01T00:00:00Z"), job("in_progress", 1, run_attempt=1)],
    )
    assert exporter.total("workflow_run_total") == 1
    assert exporter.total("job_queue_duration_seconds_count") == 1
    assert exporter.total("workflow_run_queue_duration_seconds_count") == 0
    apply(exporter, *[run("new", run_attempt=1), job("in_progress", 2, run_attempt=1)])
    assert exporter.total("workflow_run_queue_duration_seconds_count") == 0  # observed once per attempt


def test_a_value_redis_holds_that_cannot_be_rendered_is_left_out_and_counted(make_exporter):
    """A 400-digit number, text, bytes that are no UTF-8, a histogram whose count is no number, a
    reconcile status no number: each series is left out, the rest of the body is whole and ends as
    its format wants, and scrape_errors_total says which family lost how many."""
    exporter = make_exporter(
        GHA_EXPORTER_GITHUB__HOOKS='["orgs/acme/hooks/1"]', GHA_EXPORTER_GITHUB__TOKEN="t"
    )
    apply(exporter, *[job("completed", 1)])
    runs = exporter.policy.aggregate_key("job_run_total")
    sep = codec.SEPARATOR
    exporter.connection.hset(runs, mapping={
        f'repository="a"{sep}v': "9" * 400, f'repository="b"{sep}v': "eleven",
        f'repository="c"{sep}v'.encode() + b"": b"\xff\xfe", b'repository="\xff"' + f"{sep}v".encode(): b"1",
    })  # fmt: skip
    exporter.connection.hset(
        exporter.policy.aggregate_key("job_run_duration_seconds"), f'repository="d"{sep}count', "NaNa"
    )
    exporter.connection.hset(keys.RECONCILE_STATUS, "last_success:orgs/acme/hooks/1", "yesterday")
    for accept in ("", OPENMETRICS):
        text = b"".join(exporter.exposition.stream(accept)[0]).decode()
        families = {f.name: f for f in (parse_openmetrics if accept else parse_text)(text)}
        assert text.endswith("# EOF\n" if accept else "scrape_truncated 0.0\n")
        counted = families[exporter.prefix + "job_run"].samples
        assert len(counted) == 1  # the job this test completed; the four stored by hand left out
        assert not families[exporter.prefix + "reconcile_last_success_timestamp_seconds"].samples
    errors = {  # one more scrape, which shows what the two before it counted
        s.labels["family"]: s.value
        for f in exporter.families()
        for s in f.samples
        if s.name == exporter.prefix + "scrape_errors_total"
    }
    assert errors == {"job_run_total": 8, "job_run_duration_seconds": 2}  # 4 and 1 a scrape


def test_a_family_that_cannot_be_built_leaves_the_rest_of_the_scrape_whole(exporter, monkeypatch):
    def broken(*_args: Any) -> list[Any]:
        raise RuntimeError("a bug no guard foresaw")

    monkeypatch.setattr(exporter.exposition._stored, "_inflight", broken)
    apply(exporter, *[job("completed", 1)])
    text = b"".join(exporter.exposition.stream(OPENMETRICS)[0]).decode()
    families = {f.name: f for f in parse_openmetrics(text)}
    assert exporter.prefix + "job_run" in families
    assert exporter.prefix + "queue_batches" in families  # built after the broken one
    assert text.endswith("# EOF\n")
    # counted as a scrape renders, after the registry it is shown in: this test's scrape, not value()'s
    assert exporter.value("scrape_errors_total", family="inflight") == 1
