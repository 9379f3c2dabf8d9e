"""The runners' inventory polled from the fake GitHub (bench/fake_github.py) into a real Redis, and
the scrape's runner families from it: pagination, groups, larger runners, a runner going offline,
rate limits shared with reconciliation, a hostile answer, one worker at a time, polling off."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from bench.fake_github import FakeGitHub, Refusal, github_settings, hosted_runner, runner, runner_group
from shared import keys
from shared.marks import DeliveryMarks
from tests.runner_jobs import delivered, runner_job
from worker.metrics import PollMetrics, ReconcileMetrics
from worker.reconcile import Reconciler
from worker.reconcile_store import ReconcileStore
from worker.runner_inventory import Inventory
from worker.runner_poll import RunnerPoller, runner_poll_loop

pytestmark = pytest.mark.integration
TOKEN = "ghp_runners-0123456789"
ORG = "orgs/krzko"


@pytest.fixture(name="github")
def _github() -> Iterator[FakeGitHub]:
    with FakeGitHub(tokens=(TOKEN,)) as github:
        yield github


@pytest.fixture(name="polling")
def _polling(make_exporter, github):
    """An exporter polling ``scopes`` (a JSON list) from the fake."""

    def make(scopes, **env):
        return make_exporter(
            GHA_EXPORTER_GITHUB__API_URL=github.url, GHA_EXPORTER_GITHUB__TOKEN=TOKEN,
            GHA_EXPORTER_GITHUB__RUNNERS=json.dumps(scopes), **env,
        )  # fmt: skip

    return make


def poller(github, connection, registry=None, **changes):
    registry = registry or CollectorRegistry()
    settings = github_settings(github.url, token=TOKEN, **changes)
    return RunnerPoller(
        connection, lambda: settings, PollMetrics(registry, "gha_"), ReconcileMetrics(registry, "gha_")
    )


def test_an_organization_read_page_by_page_with_its_groups_and_larger_runners(polling, github):
    pool = [runner(i, f"pool-{i}", ("self-hosted", "Linux", "X64", "gpu"), busy=i % 3 == 0, group_id=2)
            for i in range(1, 251)]  # fmt: skip
    pool[0]["status"] = "offline"
    github.set_runners(
        ORG,
        [*pool, runner(900, "mac-1", ("self-hosted", "macOS", "ARM64"), os="macOS", group_id=1)],
        groups=[runner_group(1, "Default", github.url, ORG), runner_group(2, "gpu-pool", github.url, ORG)],
        hosted=[hosted_runner(5, "ubuntu-16core", group_id=2), hosted_runner(6, "old", status="Shutdown")],
    )
    exporter = polling([ORG])
    report = exporter.poller.run_pass()
    assert report.result == "ok"
    assert report.runners == {ORG: 253}
    assert report.requests == 1 + 3 + 1  # groups, three pages of runners, the larger runners
    value = exporter.value
    busy = len([i for i in range(2, 251) if i % 3 == 0])
    assert value("runners", state="busy", runner_group="gpu-pool", os="linux") == busy
    assert value("runners", state="idle", runner_group="gpu-pool", os="linux") == 249 - busy + 1  # + larger
    assert value("runners", state="offline", runner_group="gpu-pool", os="linux") == 1
    assert value("runners", state="idle", runner_group="Default", os="macos") == 1
    assert value("runners", state="offline", runner_group="Default", os="linux") == 1  # the shut-down pool
    assert value("runner_label_sets", labels="gpu,linux,self-hosted,x64") == 250
    assert value("runners_polled_timestamp_seconds", scope=ORG) == pytest.approx(time.time(), abs=30)
    assert exporter.total("github_rate_limit_remaining") > 0


def test_a_runner_gone_offline_between_polls_is_seen_at_the_next(polling, github):
    github.set_runners(ORG, [runner(1, "a"), runner(2, "b", busy=True)])
    exporter = polling([ORG])
    exporter.poller.run_pass()
    assert exporter.total("runners", state="offline") == 0
    github.set_runners(ORG, [runner(1, "a", status="offline"), runner(2, "b")])
    assert not exporter.poller.due()  # the interval runs from the poll just made
    exporter.poller.run_pass()
    assert exporter.total("runners", state="offline") == 1
    assert exporter.total("runners", state="idle") == 1
    assert exporter.total("runners", state="busy") == 0


def test_a_repository_and_an_enterprise(polling, github):
    github.set_runners("repos/krzko/app", [runner(1, "repo-runner", group_id=None)])
    groups = [runner_group(7, "enterprise-pool", github.url, "enterprises/acme")]
    github.set_runners("enterprises/acme", [runner(1, "shared", group_id=7)], groups=groups)
    exporter = polling(["repos/krzko/app", "enterprises/acme"])
    assert exporter.poller.run_pass().result == "ok"
    assert exporter.value("runners", state="idle", runner_group="Default", os="linux") == 1
    assert exporter.value("runners", state="idle", runner_group="enterprise-pool", os="linux") == 1


def test_a_failed_scope_keeps_its_last_reading_and_a_dropped_scope_is_forgotten(polling, github, connection):
    github.set_runners(ORG, [runner(1, "a")])
    github.set_runners("orgs/other", [runner(1, "b")])
    exporter = polling([ORG, "orgs/other"])
    exporter.poller.run_pass()
    del github.runner_lists["orgs/other"]  # now 404
    report = polling([ORG, "orgs/other"]).poller.run_pass()
    assert report.result == "partial"
    assert "404" in report.errors["orgs/other"]
    assert exporter.total("runners") == 2  # the last complete reading of orgs/other is kept
    polling([ORG]).poller.run_pass()
    assert set(connection.hkeys(keys.RUNNERS)) == {b"orgs/krzko", b"at:orgs/krzko", b"next_poll"}


def test_a_runner_not_as_documented_is_left_out_and_counted_never_the_list(github, connection, registry):
    bad = [
        runner(2, "x" * 500), {**runner(3, "c"), "busy": "yes"}, {**runner(4, "d"), "labels": [{"name": 7}]},
        "not an object", {**runner(5, "e"), "id": True},
    ]  # fmt: skip
    groups = [{"id": 2.0, "name": "gpu"}, {"id": float("inf"), "name": "inf"}, {"id": 3, "name": "x" * 300}]
    github.set_runners(
        ORG, [runner(1, "good", group_id=2), runner(6, "odd-group", group_id=3), *bad], groups=groups
    )
    polls = poller(github, connection, registry, runners=(ORG,))
    report = polls.run_pass()
    assert report.runners == {ORG: 2}
    assert registry.get_sample_value("gha_github_api_errors_total", {"status": "invalid_runner"}) == 5
    assert registry.get_sample_value("gha_runner_polls_total", {"result": "ok"}) == 1
    [reading] = Inventory(connection).read((ORG,))
    assert {r.name: r.group for r in reading.runners} == {"good": "gpu", "odd-group": "3"}  # a group unnamed
    # an answer that is no JSON, or not GitHub's shape: the scope's last reading is kept
    for body in (b"<html>not json", b'{"total_count": 1, "runners": {"1": "no list"}}'):
        github.refusals.append(Refusal(200, 1, body=body))
        connection.hdel(keys.RUNNERS, "next_poll")
        report = polls.run_pass()
        assert "invalid_answer" in report.errors[ORG]
        assert [r.name for r in Inventory(connection).read((ORG,))[0].runners] == ["good", "odd-group"]


def test_a_rate_limit_ends_the_poll_and_holds_back_reconciliation_too(github, connection, registry):
    github.set_runners(ORG, [runner(1, "a")])
    github.set_runners("orgs/other", [runner(1, "b")])
    github.refusals.append(Refusal(429, 1, retry_after=600))
    polls = poller(github, connection, registry, runners=(ORG, "orgs/other"))
    report = polls.run_pass()
    assert report.result == "failed"
    assert report.errors["orgs/other"] == "rate limited"  # not asked once GitHub said to wait
    assert len(github.requests) == 1
    store = ReconcileStore(connection)
    assert store.github_waits(time.time() + 500)
    assert not store.github_waits(time.time() + 700)
    assert not polls.due()

    settings = github_settings(github.url, token=TOKEN, hooks=("orgs/krzko/hooks/1",))
    reconciler = Reconciler(connection, DeliveryMarks(connection, lambda: 60), lambda: settings,
                            ReconcileMetrics(CollectorRegistry(), "gha_"))  # fmt: skip
    assert not reconciler.due()


def test_reconciliation_keeps_its_share_of_the_rate_limit(github, connection):
    """With github.hooks set, a poll waits while GitHub's last word leaves fewer requests before
    its reset than one reconciliation pass may make."""
    github.set_runners(ORG, [runner(1, "a")])
    hooks = ("orgs/krzko/hooks/1",)
    polls = poller(github, connection, runners=(ORG,), hooks=hooks, max_requests_per_pass=500)
    reset = str(int(time.time()) + 600)
    connection.hset(keys.RECONCILE_STATUS, mapping={"rate_limit_remaining": "499", "rate_limit_reset": reset})
    assert not polls.due()
    connection.hset(keys.RECONCILE_STATUS, "rate_limit_remaining", "501")
    assert polls.due()
    connection.hset(keys.RECONCILE_STATUS, mapping={"rate_limit_remaining": "3", "rate_limit_reset": "1000"})
    assert polls.due()  # that reset is past: GitHub's budget is whole again


def test_one_worker_at_a_time_polls(github, connection):
    github.set_runners(ORG, [runner(1, "a")])
    first = runner_poll_loop(connection, poller(github, connection, runners=(ORG,)))
    second = runner_poll_loop(connection, poller(github, connection, runners=(ORG,)))
    held = connection.lock(keys.RUNNERS_LOCK, timeout=30, blocking=False)
    assert held.acquire()
    assert first.tick() is None
    held.release()
    assert first.tick() is not None
    assert second.tick() is None  # not due: the interval runs from the poll just made
    assert len(github.requests) == 3  # groups, runners, larger runners (404: none), once


def test_polling_off_makes_no_request(make_exporter, github, connection):
    exporter = make_exporter(GHA_EXPORTER_GITHUB__API_URL=github.url, GHA_EXPORTER_GITHUB__TOKEN=TOKEN)
    loop = runner_poll_loop(connection, exporter.poller)
    assert loop.tick() is None
    assert github.requests == []
    assert exporter.total("runners") == 0
    names = {family.name for family in exporter.families()}
    assert "github_actions_jobs_queued_unmatched" in names  # the family, empty
    assert exporter.connection.exists(keys.RUNNERS) == 0


# -- jobs no runner can take ------------------------------------------------------------------------
def queued(job_id, labels, owner="krzko"):
    data = runner_job(job_id, "in_progress", 1, 0, labels=labels, owner=owner)
    data["action"] = "queued"
    job = data["workflow_job"]
    job.update(
        status="queued",
        runner_id=None,
        runner_name=None,
        runner_group_name=None,
        started_at=job["created_at"],
    )
    return data


def test_queued_jobs_are_unmatched_saturated_or_fine_per_label_set(polling, github):
    github.set_runners(ORG, [
        runner(1, "gpu-1", ("self-hosted", "Linux", "GPU"), busy=True),
        runner(2, "gpu-2", ("self-hosted", "Linux", "gpu"), status="offline"),
        runner(3, "cpu-1", ("self-hosted", "linux", "X64")),
        runner(4, "arm-1", ("runs-on,env=dev,runner=arm",)),  # a composite label, no self-hosted label
    ], hosted=[hosted_runner(5, "ubuntu-16core")])  # fmt: skip
    exporter = polling([ORG])
    exporter.poller.run_pass()
    jobs = [
        queued(1, ["self-hosted", "gpu"]), queued(2, ["self-hosted", "GPU", "linux"]),  # saturated
        queued(3, ["self-hosted", "linux"]),  # fine: cpu-1 is idle
        queued(4, ["self-hosted", "lnux"]), queued(5, ["self-hosted", "lnux"]),  # a typo: unmatched
        queued(6, ["runs-on,env=dev,runner=arm"]),  # fine: matched part by part
        queued(7, ["ubuntu-latest"]),  # GitHub's own: not judged
        queued(8, ["ubuntu-16core"]),  # the larger runner, by its name
        queued(9, ["self-hosted", "gpu"], owner="elsewhere"),  # no polled scope reaches it: not judged
    ]  # fmt: skip
    entries = exporter.queued(*delivered(jobs))
    exporter.processor.process_batch(entries)
    value = exporter.value
    assert value("jobs_queued_saturated", runs_on="gpu,self-hosted") == 1
    assert value("jobs_queued_saturated", runs_on="GPU,linux,self-hosted") == 1
    assert value("jobs_queued_unmatched", runs_on="lnux,self-hosted") == 2
    assert value("jobs_queued_unmatched", runs_on="linux,self-hosted") == 0
    assert value("jobs_queued_saturated", runs_on="linux,self-hosted") == 0
    assert value("jobs_queued_unmatched", runs_on="runs-on,env=dev,runner=arm") == 0
    assert value("jobs_queued_unmatched", runs_on="ubuntu-16core") == 0
    assert exporter.total("jobs_queued_unmatched") == 2
    assert exporter.total("jobs_queued_saturated") == 2
    judged = {s.labels["runs_on"] for f in exporter.families() for s in f.samples
              if s.name == "github_actions_jobs_queued_unmatched"}  # fmt: skip
    assert "ubuntu-latest" not in judged
    assert len(judged) == 6  # the two saturated sets, the typo, cpu, arm, the larger runner
