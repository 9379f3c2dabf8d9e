"""``GET /api/v1/runners`` against a real Redis: the polled inventory joined with the webhooks' busy
runners, filtered and limited; and the in-flight API's runners per queued label set."""

from __future__ import annotations

import json

import pytest

from bench.fake_github import FakeGitHub, hosted_runner, runner, runner_group
from tests.integration.test_runner_poll import TOKEN, queued
from tests.runner_jobs import T0, delivered, lifecycle
from worker.api import BadQuery, InflightApi
from worker.runner_inventory import Inventory
from worker.runners_api import RunnersApi

pytestmark = pytest.mark.integration
NOW = T0 + 100


@pytest.fixture(name="world")
def _world(make_exporter):
    with FakeGitHub(tokens=(TOKEN,)) as github:
        groups = [
            runner_group(1, "Default", github.url, "orgs/krzko"),
            runner_group(2, "gpu", github.url, "orgs/krzko"),
        ]
        github.set_runners("orgs/krzko", [
            runner(7, "runner-7", ("self-hosted", "Linux", "GPU"), busy=True, group_id=2),
            runner(8, "runner-8", ("self-hosted", "Linux", "gpu"), group_id=2),
            runner(9, "runner-9", ("self-hosted", "Linux"), status="offline"),
        ], groups=groups, hosted=[hosted_runner(5, "ubuntu-16core")])  # fmt: skip
        exporter = make_exporter(
            GHA_EXPORTER_GITHUB__API_URL=github.url, GHA_EXPORTER_GITHUB__TOKEN=TOKEN,
            GHA_EXPORTER_GITHUB__RUNNERS='["orgs/krzko"]',
        )  # fmt: skip
        exporter.poller.run_pass()
        yield exporter


def apis(exporter):
    def polled():
        return Inventory(exporter.connection).read(("orgs/krzko",))

    runners = RunnersApi(exporter.reads, exporter.reads.read_inflight, polled, clock=lambda: NOW)
    inflight = InflightApi(exporter.reads, clock=lambda: NOW, read_runners=polled)
    return runners, inflight


def test_the_polled_runners_with_the_job_the_webhooks_say_they_are_busy_with(world):
    # runner 7 busy with job 1 (since T0 + 10); runner 3 of another owner busy, no polled scope lists it
    payloads = [*lifecycle(1, 7, 10, None, group="gpu"), *lifecycle(2, 3, 20, None, owner="elsewhere")]
    world.processor.process_batch(world.queued(*delivered(payloads)))
    runners, _ = apis(world)
    answer = runners.runners({})
    by_name = {row["name"]: row for row in answer["runners"]}
    assert answer["total"] == 5
    seven = by_name["runner-7"]
    assert seven["state"] == "busy"
    assert seven["labels"] == ["self-hosted", "Linux", "GPU"]
    assert seven["busy_job"] == {
        "job_id": 1, "run_attempt": 1, "owner": "krzko", "since": "2023-11-14T22:13:30Z",
        "busy_seconds": 90.0, "html_url": "https://github.com/krzko/webhook-testing/actions/runs/100/job/1",
    }  # fmt: skip
    assert by_name["runner-8"]["busy_job"] is None
    assert by_name["ubuntu-16core"]["kind"] == "hosted"
    alone = by_name["runner-3"]
    assert (alone["scope"], alone["state"], alone["labels"], alone["busy_job"]["job_id"]) == (
        None,
        "busy",
        [],
        2,
    )
    assert answer["by_group"] == [
        {"runner_group": "Default", "busy": 0, "idle": 1, "offline": 1, "busy_from_webhooks": 0},
        {"runner_group": "gpu", "busy": 1, "idle": 1, "offline": 0, "busy_from_webhooks": 1},
        {"runner_group": "pool", "busy": 1, "idle": 0, "offline": 0, "busy_from_webhooks": 1},
    ]
    assert answer["polled"][0]["runners"] == 4


def test_filters_and_limit(world):
    runners, _ = apis(world)
    assert [r["name"] for r in runners.runners({"state": "idle"})["runners"]] == ["ubuntu-16core", "runner-8"]
    assert [r["name"] for r in runners.runners({"label": "gpu"})["runners"]] == ["runner-7", "runner-8"]
    assert [r["name"] for r in runners.runners({"runner_group": "Default"})["runners"]] == [
        "ubuntu-16core", "runner-9"]  # fmt: skip
    limited = runners.runners({"limit": "1"})
    assert (len(limited["runners"]), limited["total"]) == (1, 4)
    for bad in ({"state": "asleep"}, {"limit": "0"}, {"color": "red"}):
        with pytest.raises(BadQuery):
            runners.runners(bad)


def test_the_in_flight_api_says_which_runners_could_take_each_queued_label_set(world):
    jobs = [
        queued(1, ["self-hosted", "gpu"]), queued(2, ["self-hosted", "gpu"]),
        queued(3, ["self-hosted", "lnux"]), queued(4, ["ubuntu-latest"]),
    ]  # fmt: skip
    world.processor.process_batch(world.queued(*delivered(jobs)))
    _, inflight = apis(world)
    rows = {row["runs_on"]: row["runners"] for row in inflight.inflight({})["by_runs_on"]}
    assert rows == {
        "gpu,self-hosted": {"online": 2, "idle": 1, "unmatched_jobs": 0},
        "lnux,self-hosted": {"online": 0, "idle": 0, "unmatched_jobs": 1},
        "ubuntu-latest": None,
    }
    json.dumps(rows)  # what the route sends
