"""A real Prometheus (its exemplar storage on) scrapes the real receiver and worker; the answers of
PromQL queries and of its exemplar API are checked."""

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from typing import Any

import pytest

from bench.otlp_sink import Collector
from stack.ports import free_port
from stack.redis_server import RedisServer
from tests.corpus import SEQUENCE, load
from tests.e2e.system import System
from worker import trace_entries

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="no prometheus binary: install Debian's `prometheus` package (.ci/run does)",
    ),
]


@pytest.fixture(name="stack", scope="module")
def _stack(tmp_path_factory):
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    system = System(redis.url, "prometheus-e2e-secret", tmp_path_factory.mktemp("logs"))
    collector = Collector().__enter__()  # traces on: the exemplars carry trace and span ids
    system.extra_env.update(GHA_EXPORTER_TRACES__OTLP_ENDPOINT=collector.url)
    system.start("receiver")
    system.start("worker")
    workdir = tmp_path_factory.mktemp("prometheus")
    targets = {"receiver": system.receiver_port, "worker": system.worker_port}
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": f"gha-exporter-{name}", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for name, port in targets.items()
        ],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = (workdir / "prometheus.log").open("w")
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--enable-feature=exemplar-storage",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield system, f"http://127.0.0.1:{port}", collector
    prometheus.terminate()
    prometheus.wait(30)
    collector.__exit__()
    log.close()
    system.stop_all()
    redis.stop()


def api(base: str, path: str, **params: str) -> Any:
    """The data of a Prometheus HTTP API answer."""
    url = f"{base}/api/v1/{path}?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - loopback
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def query(base: str, expr: str) -> list[dict]:
    return api(base, "query", query=expr)["result"]


def eventually(base: str, expr: str, expected: float, timeout: float = 60.0) -> None:
    """Poll Prometheus until ``expr`` evaluates to ``expected`` (scrapes come every second)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            result = query(base, expr)
        except OSError:
            result = []
        last = [float(r["value"][1]) for r in result]
        if last == [expected]:
            return
        time.sleep(0.25)
    raise AssertionError(f"{expr} = {last}, expected {expected}")


def exemplars(base: str, metric: str, timeout: float = 60.0) -> dict[str, list[dict]]:
    """``{le: exemplars}`` that Prometheus stored for ``metric``'s buckets, once it has some for
    every bucket that saw an observation (the exemplars carry the jobs' own 2023 times)."""
    deadline, found = time.monotonic() + timeout, {}
    window = {"start": "2023-10-13T00:00:00Z", "end": "2023-10-14T00:00:00Z"}
    while time.monotonic() < deadline:
        found = {
            series["seriesLabels"]["le"]: series["exemplars"]
            for series in api(base, "query_exemplars", query=f"{metric}_bucket", **window)
        }
        if found and all(found.values()):
            return found
        time.sleep(0.25)
    raise AssertionError(f"no exemplars of {metric}: {found}")


def test_prometheus_sees_counts_quantiles_cost_in_flight_jobs_and_exemplars(stack):
    system, prometheus, collector = stack
    eventually(prometheus, 'sum(up{job=~"gha-exporter.*"})', 2)
    *first, last = [load(path) for path in SEQUENCE]
    for delivery in first:
        assert system.send(delivery.event, delivery.body) == 202
    # job "pre-commit" completed, job "test" still running
    eventually(prometheus, "sum(github_actions_job_run_total)", 1)
    eventually(prometheus, 'sum(github_actions_jobs_in_progress{runs_on="ubuntu-latest"})', 1)
    eventually(prometheus, "sum(github_actions_workflow_run_total)", 1)
    assert system.send(last.event, last.body) == 202
    eventually(prometheus, "sum(github_actions_job_run_total)", 2)
    eventually(prometheus, "sum(github_actions_jobs_in_progress) or vector(0)", 0)  # no series left
    # queue times 7 s and 6 s, both in the (5, 10] bucket: the median interpolates to 7.5 s
    eventually(
        prometheus,
        "histogram_quantile(0.5, sum by (le) (github_actions_job_queue_duration_seconds_bucket))",
        7.5,
    )
    eventually(prometheus, "sum(github_actions_job_queue_duration_seconds_sum)", 13)
    # private repository, two jobs of 10 s and 16 s on Linux: one minute each at $0.006
    eventually(prometheus, "sum(github_actions_job_cost_usd_total)", 0.012)
    eventually(prometheus, "sum(github_actions_job_billable_minutes_total)", 2)
    eventually(prometheus, 'sum(github_actions_webhook_deliveries_total{outcome="queued"})', 9)
    # every job's duration and queue time, the run's duration: an exemplar on the bucket it fell in
    durations = exemplars(prometheus, "github_actions_job_run_duration_seconds")
    assert {le: [(e["labels"]["job_id"], e["value"]) for e in found] for le, found in durations.items()} == {
        "10.0": [("17556730984", "10")],  # pre-commit: 10 s
        "30.0": [("17556741424", "16")],  # test: 16 s
    }
    assert {e["labels"]["run_id"] for found in durations.values() for e in found} == {"6454805877"}
    # both waits (7 s, 6 s) fell in (5, 10]: the bucket ends with the job that started last ("test");
    # Prometheus keeps the pre-commit job before it if a scrape came between the two
    waits = exemplars(prometheus, "github_actions_job_queue_duration_seconds")
    assert list(waits) == ["10.0"]
    assert [e["labels"]["job_id"] for e in waits["10.0"]][-1] == "17556741424"
    assert {e["labels"]["job_id"] for e in waits["10.0"]} <= {"17556730984", "17556741424"}
    run = exemplars(prometheus, "github_actions_workflow_run_duration_seconds")
    trace = trace_entries.trace_hex(trace_entries.trace_id(6454805877, 10))
    span = trace_entries.span_hex(trace_entries.run_span_id(6454805877, 10))
    assert [(le, e["labels"], e["value"]) for le, found in run.items() for e in found] == [
        ("60.0", {"run_id": "6454805877", "trace_id": trace, "span_id": span}, "45")
    ]
    # the exemplars' trace ids are those of the spans the worker sent (Prometheus kept all 128 chars)
    assert {e["labels"]["trace_id"] for found in durations.values() for e in found} == {trace}
    deadline = time.monotonic() + 30
    while len(collector.received) < 5 and time.monotonic() < deadline:  # the run, 2 jobs, 2 waits
        time.sleep(0.1)  # sent within a tick (1 s) of the completion; polled, not slept on
    sent = {r.span.span_id.hex() for r in collector.received}
    assert {e["labels"]["span_id"] for found in durations.values() for e in found} <= sent
    assert span in sent
