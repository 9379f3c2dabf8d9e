import json

import pytest

from tests.corpus import deliveries, load
from worker.payloads import JobEvent, PayloadError, parse, parse_job, parse_run


@pytest.mark.parametrize(
    "delivery", deliveries("workflow_job") + deliveries("workflow_run"), ids=lambda d: d.name
)
def test_every_corpus_payload_parses_or_is_refused_with_a_reason(delivery):
    if delivery.name == "grafana-ci-otel-collector/workflow_run/1_workflow_run_requested.json":
        with pytest.raises(PayloadError) as error:  # the upstream stub has no workflow_run object
            parse(delivery.event, delivery.body)
        assert error.value.reason == "missing_field"
        return
    event = parse(delivery.event, delivery.body)
    data = delivery.data
    assert event.repository == data["repository"]["full_name"]
    assert event.run_attempt >= 1


def test_legacy_started_action_is_in_progress_and_lacks_created_at():
    event = parse_job(load("octokit-webhooks/workflow_job/started.with-organization.payload.json").body)
    assert event.action == "in_progress"
    assert event.created_at is None
    assert event.run_attempt == 1


def test_job_fields():
    event = parse_job(load("grafana-ci-otel-collector/workflow_job/9_workflow_job_completed.json").body)
    assert isinstance(event, JobEvent)
    assert (event.repository, event.owner, event.workflow, event.job) == (
        "krzko/webhook-testing", "krzko", "Tests", "test",
    )  # fmt: skip
    assert (event.job_id, event.run_attempt, event.conclusion) == (17556741424, 10, "success")
    assert event.labels == ("ubuntu-latest",)
    assert event.runner_group == "GitHub Actions"
    assert event.completed_at is not None
    assert event.started_at is not None
    assert (event.completed_at - event.started_at).total_seconds() == 16


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://github.com/o/r/actions/runs/1/job/2", True),
        ("https://github.com/" + "r" * (512 - 19), True),  # 512 characters: the longest kept
        ("https://github.com/" + "r" * (512 - 18), False),
        ("javascript:alert(1)", False),
        (42, False),
    ],
)
def test_a_page_address_is_kept_only_when_http_and_not_too_long(url, kept):
    data = load("grafana-ci-otel-collector/workflow_job/9_workflow_job_completed.json").data
    data["workflow_job"]["html_url"] = url
    assert parse_job(json.dumps(data).encode()).html_url == (url if kept else "")


def test_old_run_without_attempt_or_run_started_at():
    event = parse_run(load("hub4j-github-api/workflow_run/workflow_run_pull_request.json").body)
    assert event.run_attempt == 1
    assert event.run_started_at is None
    assert event.created_at is not None


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "not_an_object"),
        ("[" * 100_000 + "]" * 100_000, "invalid_json"),
        ('{"action": "completed"}', "missing_field"),
        ('{"action": "completed", "repository": {"full_name": 5}, "workflow_job": {}}', "wrong_type"),
        ('{"action": 1, "repository": {}, "workflow_job": {}}', "wrong_type"),
        ('{"action": "completed", "repository": {"full_name": "o/r"}, "workflow_job": {"id": "x"}}',
         "wrong_type"),
        ('{"action": "completed", "repository": {"full_name": "o/r"}, "workflow_job": {"id": true}}',
         "wrong_type"),
        ('{"action": "x", "repository": {"full_name": "o/r"}, "workflow_job": {"id": 1, "name": "j",'
         ' "created_at": "yesterday"}}', "bad_timestamp"),
        ('{"action": "x", "repository": {"full_name": "o/r"}, "workflow_job": {"id": 1, "name": "j",'
         ' "labels": [1]}}', "wrong_type"),
        ('{"action": "x", "repository": {"full_name": "o/r"}, "workflow_job": {"id": ' + "9" * 5000 + "}}",
         "invalid_json"),
        ('{"a": "\udcff"}', "invalid_utf8"),
    ],
)  # fmt: skip
def test_unusable_payloads_give_a_reason(body, reason):
    with pytest.raises(PayloadError) as error:
        parse("workflow_job", body.encode("utf-8", "surrogateescape"))  # \udcff: the byte 0xff
    assert error.value.reason == reason


def test_unknown_values_pass_through():
    data = json.loads(
        load("octokit-webhooks/workflow_job/completed.success.with-organization.payload.json").body
    )
    data["workflow_job"]["conclusion"] = "brand_new_conclusion"
    data["action"] = "brand_new_action"
    event = parse_job(json.dumps(data).encode())
    assert (event.conclusion, event.action) == ("brand_new_conclusion", "brand_new_action")
