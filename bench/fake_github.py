"""A fake of GitHub's REST API on loopback, as GitHub documents it.

No machine here reaches GitHub, so the reconciler and the runners' poll are tested (and the runners'
benchmark measured) against this:
the delivery lists of repository, organization and App hooks (newest first, ``per_page`` up to
100, cursor pagination with a ``Link`` header), one delivery, redelivery (``POST .../attempts``:
202, and like GitHub it then performs the delivery again: the stored payload POSTed to the hook's
URL with the same ``X-GitHub-Delivery``, ``X-GitHub-Hook-ID`` and event, signed with the hook's
secret, recorded as a new attempt), the self-hosted runners of organizations, repositories and
enterprises with their runner groups and an organization's larger runners (``page``
pagination), the installation lookups and installation tokens of a GitHub App, authentication (a
token, or an App JWT verified with the App's public key), rate-limit headers, and answers of 403 or
429 on demand. The shapes follow GitHub's OpenAPI description (``tests/test_fake_github_openapi``
checks them against it).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.settings import OPTIONS
from shared.settings_outbound import GithubSettings
from shared.signing import sign

DELIVERIES = re.compile(r"/(repos/[^/]+/[^/]+/hooks/\d+|orgs/[^/]+/hooks/\d+|app/hook)/deliveries")
ONE = re.compile(DELIVERIES.pattern + r"/(\d+)")
ATTEMPTS = re.compile(ONE.pattern + r"/attempts")
REPO_INSTALLATION = re.compile(r"/repos/([^/]+)/([^/]+)/installation")
ORG_INSTALLATION = re.compile(r"/orgs/([^/]+)/installation")
ACCESS_TOKENS = re.compile(r"/app/installations/(\d+)/access_tokens")
RUNNER_LISTS = re.compile(
    r"/(orgs/[^/]+|repos/[^/]+/[^/]+|enterprises/[^/]+)/actions/(runners|runner-groups|hosted-runners)"
)
LIST_FIELDS = {"runners": "runners", "runner-groups": "runner_groups", "hosted-runners": "runners"}


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Record:
    """One attempt of a delivery, as GitHub's log keeps it."""

    id: int
    guid: str
    delivered_at: float
    redelivery: bool
    status: str
    status_code: int
    event: str
    action: str | None
    payload: bytes
    hook_id: int
    request_headers: dict[str, str]

    def item(self) -> dict[str, Any]:
        """GitHub's ``hook-delivery-item``."""
        return {
            "id": self.id, "guid": self.guid, "delivered_at": iso(self.delivered_at),
            "redelivery": self.redelivery, "duration": 0.03, "status": self.status,
            "status_code": self.status_code, "event": self.event, "action": self.action,
            "installation_id": None, "repository_id": None, "throttled_at": None,
        }  # fmt: skip

    def full(self, url: str) -> dict[str, Any]:
        """GitHub's ``hook-delivery``."""
        return {
            **self.item(),
            "url": url,
            "request": {"headers": self.request_headers, "payload": json.loads(self.payload)},
            "response": {"headers": {}, "payload": None},
        }


@dataclass
class Hook:
    path: str  # repos/o/r/hooks/1, orgs/o/hooks/2, app/hook
    id: int
    url: str  # where deliveries go: the receiver's /webhook
    secret: str
    log: list[Record] = field(default_factory=list)


@dataclass
class Refusal:
    """Answer the next ``count`` API requests with ``status`` (403 rate limit, or 429), or, for a
    hostile API, with ``body`` as given (no Content-Length), a byte every ``trickle`` seconds."""

    status: int
    count: int
    retry_after: int = 1
    headers: dict[str, str] = field(default_factory=dict)  # sent instead of the usual ones (hostile values)
    body: bytes | None = None
    trickle: float = 0.0


class FakeGitHub:
    def __init__(
        self, *, tokens: tuple[str, ...] = (), app_id: int | None = None, public_key: str = ""
    ) -> None:
        self.tokens = set(tokens)
        self.app_id = app_id
        self.public_key = public_key
        self.hooks: dict[str, Hook] = {}
        self.requests: list[tuple[str, str]] = []  # (method, path) of every API request
        self.redelivered: list[str] = []  # GUIDs redelivered on request
        self.refusals: list[Refusal] = []
        self.rate_limit = 5000
        # scope (orgs/o, repos/o/r, enterprises/e) -> list -> objects as GitHub documents them
        self.runner_lists: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self._installation_tokens: set[str] = set()
        self._lock = threading.Lock()
        self._next_id = 1000
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- running --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what GitHub does on its own ----------------------------------------------------------
    def add_hook(self, path: str, hook_id: int, url: str, secret: str) -> Hook:
        self.hooks[path] = Hook(path, hook_id, url, secret)
        return self.hooks[path]

    def deliver(
        self, path: str, event: str, payload: bytes, guid: str | None = None, at: float | None = None
    ) -> Record:
        """Send one delivery to the hook's URL now, and log the attempt as GitHub does."""
        hook = self.hooks[path]
        return self._attempt(hook, guid or str(uuid.uuid1()), event, payload, redelivery=False, at=at)

    def _attempt(
        self, hook: Hook, guid: str, event: str, payload: bytes, *, redelivery: bool, at: float | None
    ) -> Record:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": guid,
            "X-GitHub-Hook-ID": str(hook.id),
            "X-Hub-Signature-256": sign(hook.secret, payload),
        }
        request = urllib.request.Request(hook.url, data=payload, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                code, status = response.status, "OK"
        except urllib.error.HTTPError as exc:
            exc.close()
            code, status = exc.code, f"Invalid HTTP Response: {exc.code}"
        except (OSError, ValueError):  # ValueError: a hostile GUID no header can carry (logged only)
            code, status = 0, "failed to connect to host"
        action = json.loads(payload).get("action")
        with self._lock:
            self._next_id += 1
            record = Record(
                self._next_id, guid, time.time() if at is None else at, redelivery, status, code, event,
                action, payload, hook.id, headers,
            )  # fmt: skip
            hook.log.append(record)
        return record

    # -- the API --------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        github = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                github._serve(self, "GET")

            def do_POST(self) -> None:
                github._serve(self, "POST")

        return Handler

    def _serve(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        path = parts.path.removeprefix("/api/v3")  # GitHub Enterprise Server's prefix
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        with self._lock:
            self.requests.append((method, path))
            refusal = self.refusals[0] if self.refusals else None
            if refusal is not None:
                refusal.count -= 1
                if refusal.count <= 0:
                    self.refusals.pop(0)
        if refusal is not None:
            self._refuse(handler, refusal)
            return
        status, body, extra = self._route(handler, method, path, parse_qs(parts.query))
        self._send(handler, status, body, extra)

    def _route(  # noqa: PLR0911 - one answer per endpoint
        self, handler: BaseHTTPRequestHandler, method: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        auth = handler.headers.get("Authorization", "")
        app_paths = path.startswith("/app/") or bool(
            REPO_INSTALLATION.fullmatch(path) or ORG_INSTALLATION.fullmatch(path)
        )  # the App's own endpoints take its JWT
        if app_paths and not self._is_app_jwt(auth):
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        if not app_paths and not self._is_token(auth):
            return 401, {"message": "Bad credentials"}, {}
        if method == "POST" and (match := ATTEMPTS.fullmatch(path)):
            return self._redeliver(match.group(1), int(match.group(2)))
        if method == "GET" and (match := ONE.fullmatch(path)):
            hook = self.hooks.get(match.group(1))
            record = next((r for r in hook.log if r.id == int(match.group(2))), None) if hook else None
            if record is None:
                return 404, {"message": "Not Found"}, {}
            return 200, record.full(f"{self.url}{path}"), {}
        if method == "GET" and (match := DELIVERIES.fullmatch(path)):
            return self._list(match.group(1), path, query)
        if method == "GET" and (match := RUNNER_LISTS.fullmatch(path)):
            return self._runner_list(match.group(1), match.group(2), path, query)
        if method == "GET" and (REPO_INSTALLATION.fullmatch(path) or ORG_INSTALLATION.fullmatch(path)):
            return 200, self._installation(), {}
        if method == "POST" and ACCESS_TOKENS.fullmatch(path):
            token = f"ghs_{secrets.token_hex(16)}"
            self._installation_tokens.add(token)
            return 201, {"token": token, "expires_at": iso(time.time() + 3600), "permissions": {}}, {}
        return 404, {"message": "Not Found"}, {}

    def _list(
        self, hook_path: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        hook = self.hooks.get(hook_path)
        if hook is None:
            return 404, {"message": "Not Found"}, {}
        per_page = min(100, int(query.get("per_page", ["30"])[0]))
        start = int(query.get("cursor", ["0"])[0] or 0)
        newest_first = sorted(hook.log, key=lambda r: (r.delivered_at, r.id), reverse=True)
        page = newest_first[start : start + per_page]
        extra = {}
        if start + per_page < len(newest_first):
            extra["Link"] = f'<{self.url}{path}?per_page={per_page}&cursor={start + per_page}>; rel="next"'
        return 200, [record.item() for record in page], extra

    def set_runners(
        self, scope: str, runners: list[dict[str, Any]], groups: list[dict[str, Any]] | None = None,
        hosted: list[dict[str, Any]] | None = None,
    ) -> None:  # fmt: skip
        """The runners of ``scope`` from now on (a scope never set answers 404, as a wrong name does);
        an organization's or enterprise's runner groups; an organization's larger runners."""
        lists = {"runners": runners}
        if not scope.startswith("repos/"):
            lists["runner-groups"] = (
                groups if groups is not None else [runner_group(1, "Default", self.url, scope)]
            )
        if hosted is not None:
            lists["hosted-runners"] = hosted
        with self._lock:
            self.runner_lists[scope] = lists

    def _runner_list(
        self, scope: str, kind: str, path: str, query: dict[str, list[str]]
    ) -> tuple[int, Any, dict[str, str]]:
        """GitHub's paginated lists: ``page`` from 1, ``per_page`` up to 100, ``Link`` to the next
        and the last page, ``total_count``."""
        found = self.runner_lists.get(scope, {}).get(kind)
        if found is None:
            return 404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}, {}
        per_page = max(1, min(100, int(query.get("per_page", ["30"])[0])))
        page = max(1, int(query.get("page", ["1"])[0]))
        items = found[(page - 1) * per_page : page * per_page]
        last = max(1, -(-len(found) // per_page))
        links = []
        if page < last:
            links.append(f'<{self.url}{path}?per_page={per_page}&page={page + 1}>; rel="next"')
            links.append(f'<{self.url}{path}?per_page={per_page}&page={last}>; rel="last"')
        extra = {"Link": ", ".join(links)} if links else {}
        return 200, {"total_count": len(found), LIST_FIELDS[kind]: items}, extra

    def _redeliver(self, hook_path: str, delivery_id: int) -> tuple[int, Any, dict[str, str]]:
        hook = self.hooks.get(hook_path)
        record = next((r for r in hook.log if r.id == delivery_id), None) if hook else None
        if hook is None or record is None:
            return 404, {"message": "Not Found"}, {}
        self.redelivered.append(record.guid)
        self._attempt(hook, record.guid, record.event, record.payload, redelivery=True, at=None)
        return 202, {}, {}

    def _installation(self) -> dict[str, Any]:
        return installation(self.url, self.app_id or 0)

    def _is_token(self, auth: str) -> bool:
        scheme, _, value = auth.partition(" ")
        return scheme.lower() in ("token", "bearer") and (
            value in self.tokens or value in self._installation_tokens
        )

    def _is_app_jwt(self, auth: str) -> bool:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() != "bearer" or not self.public_key:
            return False
        try:
            claims = jwt.decode(
                value, self.public_key, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]}
            )
        except jwt.PyJWTError:
            return False
        return str(claims["iss"]) == str(self.app_id)

    def _refuse(self, handler: BaseHTTPRequestHandler, refusal: Refusal) -> None:
        if refusal.body is not None:
            self._send_raw(handler, refusal)
        elif refusal.headers:
            self._send(handler, refusal.status, {"message": "API rate limit exceeded"}, refusal.headers)
        elif refusal.status == 429:
            self._send(handler, 429, {"message": "You have exceeded a secondary rate limit."},
                       {"Retry-After": str(refusal.retry_after)})  # fmt: skip
        else:
            self._send(handler, 403, {"message": "API rate limit exceeded"}, {"X-RateLimit-Remaining": "0",
                       "X-RateLimit-Reset": str(int(time.time()) + refusal.retry_after)})  # fmt: skip

    @staticmethod
    def _send_raw(handler: BaseHTTPRequestHandler, refusal: Refusal) -> None:
        """``refusal.body`` as it is, to the connection's end, trickled if asked (until the client
        gives up)."""
        handler.send_response(refusal.status)
        for name, value in {"Content-Type": "application/json", **refusal.headers}.items():
            handler.send_header(name, value)
        handler.send_header("Connection", "close")
        handler.end_headers()
        body = refusal.body or b""
        try:
            if not refusal.trickle:
                handler.wfile.write(body)
                return
            for index in range(len(body)):
                handler.wfile.write(body[index : index + 1])
                handler.wfile.flush()
                time.sleep(refusal.trickle)
        except OSError:
            return  # the client stopped reading: what a bounded client does

    def _send(self, handler: BaseHTTPRequestHandler, status: int, body: Any, extra: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        with self._lock:
            self.rate_limit = max(0, self.rate_limit - 1)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": str(len(data)),
            "X-RateLimit-Limit": "5000",
            "X-RateLimit-Remaining": str(self.rate_limit),
            "X-RateLimit-Reset": str(int(time.time()) + 3600),
            "X-RateLimit-Used": str(5000 - self.rate_limit),
            "X-RateLimit-Resource": "core",
            **extra,
        }
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


def installation(base: str, app_id: int) -> dict[str, Any]:
    """GitHub's ``installation`` object, every required field present."""
    account = {
        "login": "octo-org", "id": 1, "node_id": "MDEyOk9yZ2FuaXphdGlvbjE=",
        "avatar_url": "https://github.com/images/error/octocat_happy.gif", "gravatar_id": "",
        "url": f"{base}/users/octo-org", "html_url": "https://github.com/octo-org",
        "followers_url": f"{base}/users/octo-org/followers",
        "following_url": f"{base}/users/octo-org/following{{/other_user}}",
        "gists_url": f"{base}/users/octo-org/gists{{/gist_id}}",
        "starred_url": f"{base}/users/octo-org/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{base}/users/octo-org/subscriptions",
        "organizations_url": f"{base}/users/octo-org/orgs", "repos_url": f"{base}/users/octo-org/repos",
        "events_url": f"{base}/users/octo-org/events{{/privacy}}",
        "received_events_url": f"{base}/users/octo-org/received_events", "type": "Organization",
        "site_admin": False, "user_view_type": "public",
    }  # fmt: skip
    return {
        "id": 42, "account": account, "repository_selection": "all",
        "access_tokens_url": f"{base}/app/installations/42/access_tokens",
        "repositories_url": f"{base}/installation/repositories",
        "html_url": "https://github.com/organizations/octo-org/settings/installations/42",
        "app_id": app_id, "target_id": 1, "target_type": "Organization",
        "permissions": {"repository_hooks": "write", "organization_hooks": "write"},
        "events": [], "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        "single_file_name": None, "app_slug": "gha-exporter", "suspended_by": None, "suspended_at": None,
    }  # fmt: skip


def runner(  # noqa: PLR0917 - GitHub's runner object
    runner_id: int,
    name: str,
    labels: tuple[str, ...] = ("self-hosted", "Linux", "X64"),
    status: str = "online",
    busy: bool = False,
    group_id: int | None = 1,
    os: str = "Linux",
) -> dict[str, Any]:
    """GitHub's ``runner`` object; the default labels are ``read-only``, others ``custom``."""
    defaults = {"self-hosted", "linux", "x64", "windows", "macos", "arm64"}
    found: dict[str, Any] = {
        "id": runner_id, "name": name, "os": os, "status": status, "busy": busy, "ephemeral": False,
        "labels": [
            {"id": index + 1, "name": label, "type": "read-only" if label.lower() in defaults else "custom"}
            for index, label in enumerate(labels)
        ],
    }  # fmt: skip
    if group_id is not None:
        found["runner_group_id"] = group_id
    return found


def runner_group(group_id: int, name: str, base: str, scope: str) -> dict[str, Any]:
    """GitHub's ``runner-groups-org`` object."""
    return {
        "id": group_id, "name": name, "visibility": "all", "default": group_id == 1,
        "runners_url": f"{base}/{scope}/actions/runner-groups/{group_id}/runners",
        "inherited": False, "allows_public_repositories": True, "restricted_to_workflows": False,
        "selected_workflows": [], "workflow_restrictions_read_only": False,
    }  # fmt: skip


def hosted_runner(runner_id: int, name: str, status: str = "Ready", group_id: int = 1) -> dict[str, Any]:
    """GitHub's ``actions-hosted-runner`` object (a pool of larger runners)."""
    return {
        "id": runner_id, "name": name, "runner_group_id": group_id, "status": status,
        "platform": "linux-x64", "maximum_runners": 10, "public_ip_enabled": False, "public_ips": [],
        "last_active_on": "2026-12-01T00:00:00Z",
        "image_details": {"id": "ubuntu-latest", "size_gb": 86, "display_name": "Ubuntu Latest",
                          "source": "github", "version": "latest"},
        "machine_size_details": {"id": "4-core", "cpu_cores": 4, "memory_gb": 16, "storage_gb": 150},
    }  # fmt: skip


def github_settings(api_url: str, **changes: Any) -> GithubSettings:
    """The ``github`` settings: the defaults, this API URL, and ``changes``."""
    defaults = {o.path.split(".", 1)[1]: o.default for o in OPTIONS if o.path.startswith("github.")}
    return GithubSettings(**{**defaults, "api_url": api_url, **changes})


def app_key_pair() -> tuple[str, str]:
    """A GitHub App's private key and its public key, PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public
