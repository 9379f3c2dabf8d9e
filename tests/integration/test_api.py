"""``GET /api/v1/inflight`` against a real Redis, fed a real run's deliveries: jobs and runs appear,
change phase and leave when completed, oldest first, filtered and limited."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from typing import Any

import pytest

from receiver.intake import Accepted
from shared.http_server import HttpServer
from tests.corpus import SEQUENCE, accepted, load
from worker.api import BadQuery, Gate, InflightApi, json_route

pytestmark = pytest.mark.integration
NOW = 1_697_191_900.0  # 2023-10-13T10:11:40Z, while the run was going on
REPO = "krzko/webhook-testing"
RUN = "https://github.com/krzko/webhook-testing/actions/runs/6454805877"


def feed(exporter, count: int) -> None:
    deliveries = [load(path).accepted(f"d-{i}", "1", NOW) for i, path in enumerate(SEQUENCE[:count])]
    exporter.processor.process_batch(exporter.queued(*deliveries))


def test_jobs_and_runs_appear_change_phase_and_leave(exporter):
    api = InflightApi(exporter.reads, clock=lambda: NOW)
    feed(exporter, 1)
    assert api.inflight({}) == {
        "jobs": [{
            "repository": REPO, "workflow": "Tests", "job": "pre-commit", "run_id": 6454805877,
            "run_attempt": 10, "job_id": 17556730984, "runs_on": "ubuntu-latest", "runner_group": "",
            "phase": "queued", "since": "2023-10-13T10:11:27Z", "age_seconds": 13.0,
            "html_url": f"{RUN}/job/17556730984",
        }],
        "runs": [], "total_jobs": 1, "total_runs": 0,
        "by_runs_on": [{"runs_on": "ubuntu-latest", "queued": 1, "waiting": 0, "in_progress": 0,
                        "oldest_wait_seconds": 13.0, "runners": None}],
    }  # fmt: skip
    feed(exporter, 4)  # the run and pre-commit in progress, test queued
    seen = api.inflight({})
    assert [(j["job"], j["phase"], j["since"]) for j in seen["jobs"]] == [
        ("pre-commit", "in_progress", "2023-10-13T10:11:34Z"),
        ("test", "queued", "2023-10-13T10:11:46Z"),
    ]
    assert seen["jobs"][0]["runner_group"] == "GitHub Actions"
    assert seen["jobs"][1]["age_seconds"] == 0.0  # since is after the clock here: never negative
    assert seen["by_runs_on"] == [
        {"runs_on": "ubuntu-latest", "queued": 1, "waiting": 0, "in_progress": 1, "oldest_wait_seconds": 0.0,
         "runners": None}
    ]  # fmt: skip
    [run] = seen["runs"]
    assert run == {
        "repository": REPO, "workflow": "Tests", "run_id": 6454805877, "run_attempt": 10, "event": "push",
        "branch": "main", "phase": "in_progress", "since": "2023-10-13T10:11:25Z", "age_seconds": 15.0,
        "html_url": RUN,
    }  # fmt: skip
    feed(exporter, len(SEQUENCE))
    assert api.inflight({}) == {"jobs": [], "runs": [], "total_jobs": 0, "total_runs": 0, "by_runs_on": []}


def test_filters_and_limit(exporter):
    api = InflightApi(exporter.reads, clock=lambda: NOW)
    feed(exporter, 4)
    assert [j["job"] for j in api.inflight({"phase": "queued"})["jobs"]] == ["test"]
    assert api.inflight({"phase": "queued"})["runs"] == []
    assert [j["job"] for j in api.inflight({"runs_on": "ubuntu-latest"})["jobs"]] == ["pre-commit", "test"]
    assert api.inflight({"runs_on": "ubuntu-latest"})["runs"] == []  # runs have no runs_on
    assert api.inflight({"runs_on": "self-hosted"})["total_jobs"] == 0
    assert api.inflight({"repository": REPO})["total_runs"] == 1
    assert api.inflight({"repository": "other/repo"})["total_jobs"] == 0
    limited = api.inflight({"limit": "1"})
    assert [j["job"] for j in limited["jobs"]] == ["pre-commit"]
    assert limited["total_jobs"] == 2
    # str.isdigit() passes them; int() refuses or reads them: superscript two, Arabic-Indic digits, bold 9
    unicode_digits = ("\u00b2", "\u0661", "\u0661\u0660", "\U0001d7d7")
    for bad in (
        {"limit": "0"}, {"limit": "x"}, {"limit": "1001"}, {"limit": "9" * 4301}, {"limit": " 1"},
        *({"limit": digits} for digits in unicode_digits), {"phase": "completed"}, {"colour": "red"},
    ):  # fmt: skip
        with pytest.raises(BadQuery):
            api.inflight(bad)


def test_served_over_http_with_bad_queries_answered_400(exporter):
    api = InflightApi(exporter.reads, clock=lambda: NOW)
    feed(exporter, 1)
    server = HttpServer(
        "127.0.0.1", 0, lambda _accept: ([b""], "text/plain"), lambda: True,
        {"/api/v1/inflight": json_route(api.inflight)},
    )  # fmt: skip
    server.start()
    base = f"http://127.0.0.1:{server.port}/api/v1/inflight"
    try:
        with urllib.request.urlopen(f"{base}?phase=queued", timeout=5) as response:  # noqa: S310 - loopback
            assert response.headers["Content-Type"] == "application/json"
            assert json.loads(response.read())["total_jobs"] == 1
        with pytest.raises(urllib.error.HTTPError) as bad:
            urllib.request.urlopen(f"{base}?limit=99999", timeout=5)  # noqa: S310
        assert bad.value.code == 400
        assert "limit" in json.loads(bad.value.read())["error"]
        bad.value.close()
    finally:
        server.stop()


def completed(job_id: int, conclusion: str, minute: int, delivery: str = "") -> Accepted:
    data = load("grafana-ci-otel-collector/workflow_job/9_workflow_job_completed.json").data
    data["workflow_job"].update(
        id=job_id, conclusion=conclusion, completed_at=f"2023-10-13T10:{minute:02d}:08Z"
    )
    return accepted("workflow_job", delivery or f"c-{job_id}", json.dumps(data).encode(), "1", NOW)


def test_recent_failures_newest_first_bounded_and_counted_once(make_exporter):
    exporter = make_exporter(GHA_EXPORTER_WORKER__RECENT_FAILURES="2")
    api = InflightApi(exporter.reads, clock=lambda: NOW)
    first = [completed(1, "failure", 20), completed(2, "success", 21), completed(3, "cancelled", 22)]
    exporter.processor.process_batch(exporter.queued(*first))
    again = completed(3, "cancelled", 22, "c-3-again")  # job 3's completion once more, a new delivery id
    exporter.processor.process_batch(exporter.queued(completed(4, "timed_out", 15), again))
    jobs = api.recent({})["jobs"]
    assert [(j["job_id"], j["conclusion"]) for j in jobs] == [(3, "cancelled"), (4, "timed_out")]
    assert jobs[0] == {
        "repository": REPO, "workflow": "Tests", "job": "test", "run_id": 6454805877, "run_attempt": 10,
        "job_id": 3, "runs_on": "ubuntu-latest", "runner_group": "GitHub Actions", "conclusion": "cancelled",
        "completed_at": "2023-10-13T10:22:08Z", "duration_seconds": 616.0,
        "html_url": f"{RUN}/job/17556741424",
    }  # fmt: skip
    assert [j["job_id"] for j in api.recent({"limit": "1"})["jobs"]] == [3]
    with pytest.raises(BadQuery):
        api.recent({"phase": "queued"})


def test_the_api_server_refuses_what_it_does_not_serve(exporter):
    """Only GET and HEAD, only the allowed hosts, a bounded number of requests at once, nosniff on
    every answer; each refusal counted."""
    api = InflightApi(exporter.reads, clock=lambda: NOW)
    refused: Counter[str] = Counter()
    entered, release = threading.Event(), threading.Event()

    def slow(query):
        entered.set()
        release.wait(10)
        return api.inflight(query)

    gate = Gate(1, lambda reason: refused.update([reason]))
    server = HttpServer(
        "127.0.0.1", 0, lambda _accept: ([b"x 1.0\n"], "text/plain"), lambda: True,
        {"/api/v1/inflight": json_route(slow, gate)},
        allowed_hosts=("localhost", "127.0.0.1"), refused=lambda reason: refused.update([reason]),
    )  # fmt: skip
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        for method in ("POST", "DELETE", "TRACE", "PUT"):
            assert call(base + "/api/v1/inflight", method=method)[0] == 405
        assert call(base + "/api/v1/inflight", method="FOO")[0] == 400  # no method: the parser refuses it
        assert call(base + "/metrics", headers={"Host": "evil.example"})[0] == 400  # DNS rebinding
        assert call(base + "/metrics", headers={"Host": f"localhost:{server.port}"})[0] == 200
        status, headers, _body = call(base + "/metrics")
        assert (status, headers["X-Content-Type-Options"]) == (200, "nosniff")
        assert call(base + "/nowhere")[1]["X-Content-Type-Options"] == "nosniff"
        first = threading.Thread(target=call, args=(base + "/api/v1/inflight",))
        first.start()
        assert entered.wait(10)
        status, headers, body = call(base + "/api/v1/inflight?limit=1")  # the one slot is taken
        assert (status, headers["Retry-After"], headers["X-Content-Type-Options"]) == (429, "1", "nosniff")
        release.set()
        first.join(10)
        status, _headers, body = call(base + "/api/v1/inflight?limit=%C2%B2")  # ²
        assert (status, json.loads(body)["error"]) == (400, "limit must be a whole number from 1 to 1000")
    finally:
        server.stop()
    assert refused == {"method_not_allowed": 4, "malformed_request": 1, "host_not_allowed": 1, "busy": 1}


def call(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    """Status, headers and body of one request (an error status is an answer too)."""
    request = urllib.request.Request(url, method=method, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def test_a_request_reads_the_counts_and_the_rows_it_lists_not_every_member(exporter, monkeypatch):
    """3,000 queued jobs: the counts come from Redis's summary, and a list of 10 reads one page of
    the set, not its 3,000 members (before, every request read every set whole)."""
    group = json.dumps(["ubuntu-latest", "", REPO])
    exporter.connection.zadd(
        "gha-exporter:inflight:job:queued",
        {f"{group}\x1fjob:{i}:1": NOW - 3_000 + i for i in range(3_000)},
    )
    pages: list[tuple[int, int]] = []
    read_page = exporter.reads.inflight_page

    def counted(kind: str, phase: str, start: int, count: int):
        pages.append((start, count))
        return read_page(kind, phase, start, count)

    monkeypatch.setattr(exporter.reads, "inflight_page", counted)
    answer = InflightApi(exporter.reads, clock=lambda: NOW).inflight({"limit": "10"})
    assert answer["total_jobs"] == 3_000
    assert [job["job_id"] for job in answer["jobs"]] == list(range(10))  # the oldest first
    assert pages == [(0, 1_000)]
