"""The reconciler's GitHub client against the fake GitHub API on loopback: pagination, token and
App authentication, redelivery, the request budget, rate limits and failures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from bench.fake_github import FakeGitHub, Refusal, app_key_pair, github_settings
from worker.github_api import GitHubHooks
from worker.github_calls import ApiError

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


def guid(i: int) -> str:
    """The ``i``-th delivery's GUID: a UUID, as GitHub's are."""
    return f"00000000-0000-4000-8000-{i:012d}"


def fill(fake: FakeGitHub, hook: str, count: int, start: float = 1_800_000_000.0) -> None:
    for i in range(count):
        fake.deliver(hook, "workflow_job", PAYLOAD, guid=guid(i), at=start + i)


def test_the_log_is_read_page_by_page_back_to_since(github):
    fill(github, REPO_HOOK, 250)
    client = GitHubHooks(github_settings(github.url, token=TOKEN))
    log = client.deliveries(REPO_HOOK, since=0.0)
    attempts = log.attempts
    assert (log.resume, log.stopped) == (None, None)  # read to its start
    assert [a.guid for a in attempts] == [guid(i) for i in reversed(range(250))]
    assert client.usage.requests == 3  # 100 + 100 + 50
    assert attempts[0].status == "failed to connect to host"
    assert client.usage.rate_remaining is not None
    # a later pass stops at the page that reaches back to its start
    client = GitHubHooks(github_settings(github.url, token=TOKEN))
    recent = client.deliveries(REPO_HOOK, since=1_800_000_000.0 + 240).attempts
    assert [a.guid for a in recent] == [guid(i) for i in reversed(range(240, 250))]
    assert client.usage.requests == 1


def test_redelivery_with_a_token_reaches_the_hook_again(github):
    fill(github, ORG_HOOK, 1)
    client = GitHubHooks(github_settings(github.url, token=TOKEN))
    [attempt] = client.deliveries(ORG_HOOK, since=0.0).attempts
    client.redeliver(ORG_HOOK, attempt.id)
    assert github.redelivered == [guid(0)]
    assert [r.redelivery for r in github.hooks[ORG_HOOK].log] == [False, True]


def test_a_github_app_uses_its_jwt_for_app_hook_and_an_installation_token_elsewhere(github, app_key):
    fill(github, "app/hook", 2)
    fill(github, REPO_HOOK, 1)
    client = GitHubHooks(github_settings(github.url, app_id=str(APP_ID), app_private_key=app_key[0]))
    app_attempts = client.deliveries("app/hook", since=0.0).attempts
    assert len(app_attempts) == 2
    assert client.hook_id("app/hook", app_attempts[0].id) == 19  # from the delivery's headers
    assert client.hook_id(REPO_HOOK, None) == 17
    assert len(client.deliveries(REPO_HOOK, since=0.0).attempts) == 1
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
    client = GitHubHooks(github_settings(github.url, token=TOKEN, max_requests_per_pass=3))
    log = client.deliveries(REPO_HOOK, since=0.0)  # reading stops at 80 % of the budget: 2 pages
    assert (len(log.attempts), log.stopped, client.usage.requests) == (200, "budget", 2)
    rest = GitHubHooks(github_settings(github.url, token=TOKEN)).deliveries(REPO_HOOK, 0.0, log.resume)
    assert len(rest.attempts) == 101  # the next pass goes on from the cursor (301: the earlier one too)
    assert rest.resume is None
    client.redeliver(REPO_HOOK, log.attempts[0].id)  # the share left for acting on what was read
    with pytest.raises(ApiError) as budget:
        client.redeliver(REPO_HOOK, log.attempts[1].id)
    assert budget.value.status == "budget"


def test_an_unreachable_github_is_a_connection_error():
    client = GitHubHooks(github_settings("http://127.0.0.1:9", token=TOKEN))
    with pytest.raises(ApiError) as down:
        client.deliveries(REPO_HOOK, since=0.0)
    assert down.value.status == "connection"


def test_a_hostile_api_is_read_within_bounds(github):
    """A 5 MB page, a page trickled a byte every 0.3 s, a redirect to another host, an error text
    with a forged log line: each an ApiError of its own status, read no further than the bounds."""
    fill(github, REPO_HOOK, 1)
    settings = github_settings(github.url, token=TOKEN, timeout_seconds=1.0, max_response_bytes=65536)
    huge = b"[" + b'{"id": 1},' * 500_000 + b"{}]"
    github.refusals.append(Refusal(200, 1, body=huge))
    with pytest.raises(ApiError) as large:
        GitHubHooks(settings).deliveries(REPO_HOOK, since=0.0)
    assert large.value.status == "too_large"

    github.refusals.append(Refusal(200, 1, body=b"[" + b" " * 100 + b"]", trickle=0.3))
    started = time.monotonic()
    with pytest.raises(ApiError) as slow:
        GitHubHooks(settings).deliveries(REPO_HOOK, since=0.0)
    assert slow.value.status == "timeout"
    taken = time.monotonic() - started  # not asserted: a guard that it stopped, reported on failure
    assert taken < 30, taken

    with FakeGitHub(tokens=(TOKEN,)) as elsewhere:
        elsewhere.add_hook(REPO_HOOK, 17, "http://127.0.0.1:9/webhook", "secret")
        target = f"{elsewhere.url}/repos/octo-org/app/hooks/17/deliveries"
        github.refusals.append(Refusal(302, 1, headers={"Location": target}, body=b""))
        with pytest.raises(ApiError) as moved:
            GitHubHooks(settings).deliveries(REPO_HOOK, since=0.0)
        assert moved.value.status == "redirect"
        assert elsewhere.requests == []  # the token never went to the other host

    forged = {"message": "no\n2026-12-03 10:00:00 | ERROR | forged line\x1b[31m"}
    github.refusals.append(Refusal(422, 1, body=json.dumps(forged).encode()))
    with pytest.raises(ApiError) as refused:
        GitHubHooks(settings).deliveries(REPO_HOOK, since=0.0)
    assert refused.value.status == "422"
    assert "\n" not in str(refused.value)
    assert "\x1b" not in str(refused.value)


def test_a_delivery_whose_guid_is_no_uuid_is_left_out_and_counted(github):
    fill(github, REPO_HOOK, 2)
    github.deliver(REPO_HOOK, "workflow_job", PAYLOAD, guid="x" * 100_000, at=1_800_000_010.0)
    github.deliver(REPO_HOOK, "workflow_job", PAYLOAD, guid="evil\n| ERROR | forged", at=1_800_000_011.0)
    client = GitHubHooks(github_settings(github.url, token=TOKEN))
    attempts = client.deliveries(REPO_HOOK, since=0.0).attempts
    assert [a.guid for a in attempts] == [guid(1), guid(0)]
    assert client.usage.invalid_guids == 2


def test_no_request_starts_past_the_pass_deadline(github):
    fill(github, REPO_HOOK, 250)
    client = GitHubHooks(github_settings(github.url, token=TOKEN, pass_timeout_seconds=0.001))
    time.sleep(0.01)  # the pass's time is over before it asks anything
    with pytest.raises(ApiError) as over:
        client.deliveries(REPO_HOOK, since=0.0)
    assert over.value.status == "deadline"
    assert github.requests == []
