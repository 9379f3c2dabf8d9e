"""The worker's /metrics text, written without prometheus_client's sample objects, parses back to
the same samples in both formats, escapes label values, and shows only redis_up 0 without Redis."""

import json

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from redis import Redis

from stack.ports import free_port
from tests.conftest import Exporter
from tests.corpus import KRZKO, SEQUENCE, accepted, load

pytestmark = pytest.mark.integration
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def feed(exporter, bodies):
    deliveries = [accepted(event, f"d-{i}", body) for i, (event, body) in enumerate(bodies)]
    exporter.processor.process_batch(exporter.queued(*deliveries))


def samples(families):
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in families
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_text_and_openmetrics_show_the_same_samples(exporter):
    feed(exporter, [(d.event, d.body) for d in map(load, SEQUENCE)])
    text, text_type = exporter.exposition.render("")
    openmetrics, om_type = exporter.exposition.render(OPENMETRICS)
    assert text_type.startswith("text/plain; version=0.0.4")
    assert om_type.startswith("application/openmetrics-text")
    assert openmetrics.endswith(b"# EOF\n")
    assert openmetrics.count(b"# EOF") == 1
    in_text = samples(parse_text(text.decode()))
    assert in_text == samples(parse_openmetrics(openmetrics.decode()))
    job_runs = {k: v for k, v in in_text.items() if k[0] == "github_actions_job_run_total"}
    assert sum(job_runs.values()) == 2
    assert b"# TYPE github_actions_job_run counter" in openmetrics  # OpenMetrics: family without _total
    assert b"# TYPE github_actions_job_run_total counter" in text
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in in_text.items()
        if name == "github_actions_job_queue_duration_seconds_bucket" and ("job", "pre-commit") in labels
    )
    assert buckets[-1] == (float("inf"), 1.0)  # cumulative up to +Inf = the count
    assert [value for _, value in buckets] == sorted(value for _, value in buckets)


def test_label_values_are_escaped(exporter):
    data = load(KRZKO.format("job", "5_workflow_job_completed")).data
    name = 'new\nline "quoted" \\ back'
    data["workflow_job"]["name"] = name
    feed(exporter, [("workflow_job", json.dumps(data).encode())])
    assert exporter.total("job_run_total", job=name) == 1
    assert exporter.total("job_run_duration_seconds_count", job=name) == 1


def test_without_redis_only_redis_up_zero(make_settings):
    url = f"redis://127.0.0.1:{free_port()}/0"
    connection = Redis.from_url(url, socket_connect_timeout=1)
    exporter = Exporter(connection, make_settings(GHA_EXPORTER_REDIS__URL=url))
    body, _ = exporter.exposition.render("")
    connection.close()
    names = {s.name for family in parse_text(body.decode()) for s in family.samples}
    assert "github_actions_redis_up" in names
    assert exporter.value("redis_up") == 0
    assert not any(name.startswith("github_actions_job") for name in names)


def test_every_family_exposed_is_defined_in_worker_metrics(make_exporter):
    from worker.metrics import FAMILIES, SCRAPE_FAMILIES  # noqa: PLC0415 - the catalogue under test

    exporter = make_exporter(GHA_EXPORTER_METRICS__STEP_METRICS="true")
    feed(exporter, [(d.event, d.body) for d in map(load, SEQUENCE)])
    catalogue = {family.name for family in FAMILIES} | {family.name for family in SCRAPE_FAMILIES} | {
        "webhook_events_processed_total", "webhook_processing_errors_total",
        "webhook_processing_lag_seconds", "worker_batch_conflicts_total",
        "reconcile_passes_total", "reconcile_redeliveries_total", "reconcile_unrecoverable_total",
        "runner_polls_total", "github_api_errors_total", "config_reload_failures_total",
        "redis_dataset_resets_total", "redis_dataset_age_seconds", "scrape_errors_total",
    }  # fmt: skip  # LocalMetrics, ReconcileMetrics, PollMetrics, reloads, the dataset, the scrape
    exposed = {f.name for f in parse_openmetrics(exporter.exposition.render(OPENMETRICS)[0].decode())}
    names = {name.removeprefix(exporter.prefix) for name in exposed}
    counters = {f"{name}_total" for name in names}
    assert {n for n in names if n not in catalogue and f"{n}_total" not in catalogue} == set()
    assert catalogue <= names | counters, catalogue - names - counters
