"""The reconciler's GitHub client against the fake GitHub API on loopback: pagination, token and
App authentication, redelivery, the request budget, rate limits and failures."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.fake_github import FakeGitHub, Refusal, app_key_pair, github_settings
from worker.github_api import ApiError, GitHubHooks

pytestmark = pytest.mark.integration
TOKEN = "ghp_test-token-0123456789"
REPO_HOOK = "repos/octo-org/app/hooks/17"
ORG_HOOK = "orgs/octo-org/hooks/18"
APP_ID = 4242
PAYLOAD = json.dumps({"action": "queued", "workflow_job": {"id": 1}}).encode()


@pytest.fixture(name="app_key", scope="module")
def _app_key() -> tuple[str, str]:
    return app_key_pair()


@pytest.fixture(name="github")
def _github(app_key) -> Iterator[FakeGitHub]:
    with FakeGitHub(tokens=(TOKEN,), app_id=APP_ID, public_key=app_key[1]) as fake:
        # deliveries to a closed port: logged as failed, as a receiver that was down
        for path, hook_id in ((REPO_HOOK, 17), (ORG_HOOK, 18), ("app/hook", 19)):
            fake.add_hook(path, hook_id, "http://127.0.0.1:9/webhook", "secret")
        yield fake


def fill(fake: FakeGitHub, hook: str, count: int, start: float = 1_800_000_000.0) -> None:
    for i in range(count):
        fake.deliver(hook, "workflow_job", PAYLOAD, guid=f"guid-{i}", at=start + i)


def test_the_log_is_read_page_by_page_back_to_since(github):
    fill(github, REPO_HOOK, 250)
    client = GitHubHooks(github_settings(github.url, token=TOKEN))
    attempts = client.deliveries(REPO_HOOK, since=0.0)
    assert [a.guid for a in attempts] == [f"guid-{i}" for i in reversed(range(250))]
    assert client.usage.requests == 3  # 100 + 100 + 50
    assert attempts[0].status == "failed to connect to host"
    assert client.usage.rate_remaining is not None
    # a later pass stops at the page that reaches back to its start
    client = GitHubHooks(github_settings(github.url, token=TOKEN))
    recent = client.deliveries(REPO_HOOK, since=1_800_000_000.0 + 240)
    assert [a.guid for a in recent] == [f"guid-{i}" for i in reversed(range(240, 250))]
    assert client.usage.requests == 1


def test_redelivery_with_a_token_reaches_the_hook_again(github):
    fill(github, ORG_HOOK, 1)
    client = GitHubHooks(github_settings(github.url, token=TOKEN))
    [attempt] = client.deliveries(ORG_HOOK, since=0.0)
    client.redeliver(ORG_HOOK, attempt.id)
    assert github.redelivered == ["guid-0"]
    assert [r.redelivery for r in github.hooks[ORG_HOOK].log] == [False, True]


def test_a_github_app_uses_its_jwt_for_app_hook_and_an_installation_token_elsewhere(github, app_key):
    fill(github, "app/hook", 2)
    fill(github, REPO_HOOK, 1)
    client = GitHubHooks(github_settings(github.url, app_id=str(APP_ID), app_private_key=app_key[0]))
    app_attempts = client.deliveries("app/hook", since=0.0)
    assert len(app_attempts) == 2
    assert client.hook_id("app/hook", app_attempts[0].id) == 19  # from the delivery's headers
    assert client.hook_id(REPO_HOOK, None) == 17
    assert len(client.deliveries(REPO_HOOK, since=0.0)) == 1
    paths = [path for _method, path in github.requests]
    assert "/repos/octo-org/app/installation" in paths
    assert "/app/installations/42/access_tokens" in paths


def test_wrong_credentials_rate_limits_and_the_budget_are_api_errors(github):
    fill(github, REPO_HOOK, 1)
    with pytest.raises(ApiError) as bad:
        GitHubHooks(github_settings(github.url, token="ghp_wrong")).deliveries(REPO_HOOK, since=0.0)
    assert bad.value.status == "401"
    assert "ghp_wrong" not in str(bad.value)

    github.refusals.append(Refusal(429, 1, retry_after=7))
    with pytest.raises(ApiError) as limited:
        GitHubHooks(github_settings(github.url, token=TOKEN)).deliveries(REPO_HOOK, since=0.0)
    assert limited.value.status == "429"
    assert limited.value.retry_after == 7

    github.refusals.append(Refusal(403, 1, retry_after=30))
    with pytest.raises(ApiError) as exhausted:
        GitHubHooks(github_settings(github.url, token=TOKEN)).deliveries(REPO_HOOK, since=0.0)
    assert exhausted.value.status == "403"
    assert 0 < (exhausted.value.retry_after or 0) <= 30

    fill(github, REPO_HOOK, 300)
    client = GitHubHooks(github_settings(github.url, token=TOKEN, max_requests_per_pass=2))
    with pytest.raises(ApiError) as budget:
        client.deliveries(REPO_HOOK, since=0.0)
    assert budget.value.status == "budget"
    assert client.usage.requests == 2


def test_an_unreachable_github_is_a_connection_error():
    client = GitHubHooks(github_settings("http://127.0.0.1:9", token=TOKEN))
    with pytest.raises(ApiError) as down:
        client.deliveries(REPO_HOOK, since=0.0)
    assert down.value.status == "connection"
