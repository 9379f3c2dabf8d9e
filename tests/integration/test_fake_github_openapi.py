"""The fake GitHub cannot drift from the real API: every answer the reconciler relies on is checked
against GitHub's published OpenAPI description (``@octokit/openapi``'s ``api.github.com.json``,
which ``.ci/run`` fetches into ``.cache/octokit-openapi/``): the operation exists with that path,
method and query parameters, and the fake's body validates against its response schema."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from functools import cache
from pathlib import Path
from typing import Any

import jwt
import pytest
from jsonschema import Draft4Validator
from referencing import Registry
from referencing.jsonschema import DRAFT4

from bench.fake_github import FakeGitHub, app_key_pair, hosted_runner, runner, runner_group

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
OPENAPI = Path(
    os.environ.get("GHA_EXPORTER_GITHUB_OPENAPI", ROOT / ".cache" / "octokit-openapi" / "api.github.com.json")
)
TOKEN = "ghp_openapi-0123456789"
URI = "urn:github-openapi"


def nullable_to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0's ``nullable: true`` as JSON Schema: ``null`` allowed too."""
    if isinstance(node, list):
        return [nullable_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: nullable_to_json_schema(value) for key, value in node.items()}
    if converted.pop("nullable", False) is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


GHEC = OPENAPI.with_name("ghec.json")  # GitHub Enterprise Cloud's: the enterprises' endpoints


@cache
def description(source: Path = OPENAPI) -> dict[str, Any]:
    if not source.is_file():
        pytest.skip(f"GitHub's OpenAPI description is not at {source}: .ci/run fetches it (@octokit/openapi)")
    spec: dict[str, Any] = nullable_to_json_schema(json.loads(source.read_text()))
    return spec


def operation(path: str, method: str, source: Path = OPENAPI) -> dict[str, Any]:
    paths = description(source)["paths"]
    assert path in paths, f"GitHub has no {path}"
    assert method in paths[path], f"GitHub has no {method.upper()} {path}"
    found: dict[str, Any] = paths[path][method]
    return found


def resolve(node: dict[str, Any], source: Path = OPENAPI) -> dict[str, Any]:
    """``node``, its ``$ref`` followed (``#/components/responses/...``)."""
    while "$ref" in node:
        target: Any = description(source)
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def check(path: str, method: str, status: int, body: Any, source: Path = OPENAPI) -> None:
    """``body`` is what GitHub documents for ``status`` of ``method path``."""
    responses = operation(path, method, source)["responses"]
    assert str(status) in responses, f"GitHub documents no {status} for {method.upper()} {path}"
    response = resolve(responses[str(status)], source)
    content = response.get("content", {}).get("application/json")
    if content is None:
        return  # no body documented (202 of a redelivery: an empty object)
    registry: Registry[Any] = Registry().with_resource(URI, DRAFT4.create_resource(description(source)))
    validator = Draft4Validator(_anchored(content["schema"]), registry=registry)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert errors == [], f"{method.upper()} {path} {status}: {errors[:5]}"


def _anchored(schema: Any) -> Any:
    """Local ``#/components/...`` references made absolute, into the registered description."""
    if isinstance(schema, list):
        return [_anchored(item) for item in schema]
    if isinstance(schema, dict):
        return {k: (f"{URI}{v}" if k == "$ref" and isinstance(v, str) and v.startswith("#") else _anchored(v))
                for k, v in schema.items()}  # fmt: skip
    return schema


def call(fake: FakeGitHub, method: str, path: str, auth: str) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(f"{fake.url}{path}", method=method, headers={"Authorization": auth})  # noqa: S310
    if method == "POST":
        request.data = b"{}"
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read()), dict(exc.headers)


def test_every_answer_the_reconciler_reads_is_shaped_as_github_documents():
    description()  # skips when the description was not fetched
    private, public = app_key_pair()
    now = int(time.time())
    app_jwt = jwt.encode({"iat": now - 60, "exp": now + 600, "iss": "7"}, private, algorithm="RS256")
    with FakeGitHub(tokens=(TOKEN,), app_id=7, public_key=public) as fake:
        hooks = {"repos/o/r/hooks/1": "/repos/{owner}/{repo}/hooks/{hook_id}",
                 "orgs/o/hooks/2": "/orgs/{org}/hooks/{hook_id}", "app/hook": "/app/hook"}  # fmt: skip
        for number, (hook, template) in enumerate(hooks.items(), start=1):
            fake.add_hook(hook, number, "http://127.0.0.1:9/webhook", "s")
            for i in range(3):
                fake.deliver(hook, "workflow_job", json.dumps({"action": "queued", "n": i}).encode())
            auth = f"Bearer {app_jwt}" if hook == "app/hook" else f"token {TOKEN}"
            for parameter in ("per-page", "cursor"):
                names = [p.get("$ref", "") for p in operation(f"{template}/deliveries", "get")["parameters"]]
                assert f"#/components/parameters/{parameter}" in names
            status, items, headers = call(fake, "GET", f"/{hook}/deliveries?per_page=2", auth)
            check(f"{template}/deliveries", "get", status, items)
            assert 'rel="next"' in headers["Link"]
            assert "cursor=" in headers["Link"]
            status, one, _ = call(fake, "GET", f"/{hook}/deliveries/{items[0]['id']}", auth)
            check(f"{template}/deliveries/{{delivery_id}}", "get", status, one)
            status, accepted, _ = call(fake, "POST", f"/{hook}/deliveries/{items[0]['id']}/attempts", auth)
            check(f"{template}/deliveries/{{delivery_id}}/attempts", "post", status, accepted)
            assert status == 202
        status, installation, _ = call(fake, "GET", "/repos/o/r/installation", f"Bearer {app_jwt}")
        check("/repos/{owner}/{repo}/installation", "get", status, installation)
        status, installation, _ = call(fake, "GET", "/orgs/o/installation", f"Bearer {app_jwt}")
        check("/orgs/{org}/installation", "get", status, installation)
        status, token, _ = call(
            fake, "POST", f"/app/installations/{installation['id']}/access_tokens", f"Bearer {app_jwt}"
        )
        check("/app/installations/{installation_id}/access_tokens", "post", status, token)


def test_every_runners_answer_the_poll_reads_is_shaped_as_github_documents():
    """The lists of runners, runner groups and larger runners, with their page parameters and
    ``Link`` header; the enterprise's against GitHub Enterprise Cloud's description."""
    description()  # skips when the description was not fetched
    with FakeGitHub(tokens=(TOKEN,)) as fake:
        pool = [runner(i, f"r-{i}", busy=i % 2 == 0, group_id=2) for i in range(1, 4)]
        groups = [runner_group(1, "Default", fake.url, "orgs/o"), runner_group(2, "gpu", fake.url, "orgs/o")]
        fake.set_runners("orgs/o", pool, groups=groups, hosted=[hosted_runner(5, "ubuntu-16core")])
        fake.set_runners("repos/o/r", pool[:2])
        fake.set_runners(
            "enterprises/e", pool, groups=[runner_group(1, "Default", fake.url, "enterprises/e")]
        )
        lists = [
            ("/orgs/o/actions/runners", "/orgs/{org}/actions/runners", OPENAPI),
            ("/orgs/o/actions/runner-groups", "/orgs/{org}/actions/runner-groups", OPENAPI),
            ("/orgs/o/actions/hosted-runners", "/orgs/{org}/actions/hosted-runners", OPENAPI),
            ("/repos/o/r/actions/runners", "/repos/{owner}/{repo}/actions/runners", OPENAPI),
            ("/enterprises/e/actions/runners", "/enterprises/{enterprise}/actions/runners", GHEC),
            ("/enterprises/e/actions/runner-groups", "/enterprises/{enterprise}/actions/runner-groups", GHEC),
        ]
        for path, template, source in lists:
            names = [p.get("$ref", p.get("name")) for p in operation(template, "get", source)["parameters"]]
            assert "#/components/parameters/per-page" in names, template
            assert "#/components/parameters/page" in names, template
            status, body, headers = call(fake, "GET", f"{path}?per_page=2&page=1", f"token {TOKEN}")
            check(template, "get", status, body, source)
            if body["total_count"] > 2:
                assert 'rel="next"' in headers["Link"], template
                assert "page=2" in headers["Link"], template
        status, _body, _ = call(fake, "GET", "/repos/o/other/actions/runners", f"token {TOKEN}")
        assert status == 404  # a scope it does not know
