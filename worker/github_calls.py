"""One pass's calls to GitHub's REST API, within the pass's bounds: at most
``github.max_requests_per_pass`` requests, each read whole within its timeout and byte bound and none
past the pass's deadline (:mod:`worker.bounded_transport`), no redirect followed, GitHub's rate-limit
headers read on every answer as bounded numbers, and every failure raised as :class:`ApiError` with a
short ``status`` for the error counter, never with the token.

With a token, every call uses it. With a GitHub App, ``app/hook`` calls use the App's JWT, and a
repository's or organization's hook uses the token of the App's installation there (looked up once
per pass). githubkit is imported only when reconciliation is on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.digits import ascii_digits
from shared.logs import loggable
from shared.settings_outbound import GithubSettings

if TYPE_CHECKING:
    from githubkit import GitHub, Response

MAX_WAIT_SECONDS = 3600.0  # the longest wait GitHub's headers may ask for (a day's would stop the passes)
MAX_RATE_LIMIT = 1_000_000  # GitHub's hourly limits are at most 15,000 requests
MAX_HEADER_DIGITS = 12  # epoch seconds have 10


def header_number(value: Any, most: float) -> float | None:
    """A number GitHub sent in a header (:func:`ascii_digits`, at most :data:`MAX_HEADER_DIGITS`),
    clamped to ``most``; None when it is not such a number."""
    text = str(value) if isinstance(value, str | int) else ""
    return min(float(text), most) if ascii_digits(text, MAX_HEADER_DIGITS) else None


class ApiError(Exception):
    """A GitHub API call that failed; ``status`` labels the error counter, ``retry_after`` (seconds)
    says when GitHub allows the next call, when it said so."""

    def __init__(self, status: str, detail: str, retry_after: float | None = None) -> None:
        super().__init__(f"GitHub API {status}: {detail}")
        self.status = status
        self.retry_after = retry_after


@dataclass
class Usage:
    """What one client did: requests made, deliveries left out for a GUID that is no UUID, and
    GitHub's last word on the rate limit."""

    requests: int = 0
    invalid_guids: int = 0
    rate_remaining: int | None = None
    rate_reset: float | None = None


@dataclass(frozen=True)
class HookPath:
    kind: str  # repos, orgs or app (enterprises: a runners' scope, with the token)
    owner: str
    repo: str
    hook_id: int | None  # None for app/hook: learnt from a delivery

    @classmethod
    def parse(cls, path: str) -> HookPath:
        parts = path.split("/")
        if parts[0] == "repos":
            return cls("repos", parts[1], parts[2], int(parts[4]))
        if parts[0] == "orgs":
            return cls("orgs", parts[1], "", int(parts[3]))
        return cls("app", "", "", None)

    @classmethod
    def of_scope(cls, scope: str) -> HookPath:
        """A runners' scope (``orgs/O``, ``repos/O/R``, ``enterprises/E``) as the client's credentials
        see it: an organization's or a repository's App installation; an enterprise: the token."""
        parts = scope.split("/")
        return cls(parts[0], parts[1], parts[2] if parts[0] == "repos" else "", None)


class GitHubCalls:
    def __init__(self, settings: GithubSettings, *, clock: Callable[[], float] = time.time) -> None:
        from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy  # noqa: PLC0415 - only when on

        from worker.bounded_transport import BoundedTransport, Bounds  # noqa: PLC0415 - with githubkit

        self._settings = settings
        self._clock = clock
        self.usage = Usage()
        started = time.monotonic()
        self._bounds = Bounds(
            settings.max_response_bytes, settings.timeout_seconds, started + settings.pass_timeout_seconds
        )
        options: dict[str, Any] = {
            "base_url": settings.api_url.rstrip("/") + "/",
            "timeout": settings.timeout_seconds,
            "auto_retry": False,  # a pass decides itself when to call again
            "http_cache": False,
            "user_agent": "gha-exporter",
            "follow_redirects": False,  # a redirect is refused (redirect): see _send
            "transport": BoundedTransport(self._bounds),
        }
        self._app: GitHub[Any] | None = None
        if settings.app_id and settings.app_private_key:
            self._app = GitHub(AppAuthStrategy(settings.app_id, settings.app_private_key), **options)
        self._token = GitHub(TokenAuthStrategy(settings.token), **options) if settings.token else None
        self._installations: dict[tuple[str, str, str], GitHub[Any]] = {}

    @contextmanager
    def larger_answers(self, max_bytes: int) -> Iterator[None]:
        """Calls inside read answers of up to ``max_bytes`` (the one call whose answer holds a payload)."""
        usual, self._bounds.max_bytes = self._bounds.max_bytes, max(max_bytes, self._bounds.max_bytes)
        try:
            yield
        finally:
            self._bounds.max_bytes = usual

    def client(self, path: HookPath) -> GitHub[Any]:
        if path.kind == "app":
            if self._app is None:
                raise ApiError("config", "app/hook needs the App's credentials")
            return self._app
        if self._token is not None:
            return self._token
        if self._app is None:  # the settings check refuses this
            raise ApiError("config", "github.token or a GitHub App is needed")
        key = (path.kind, path.owner, path.repo)
        if key not in self._installations:
            lookup = self._app.rest.apps
            found = self.send(
                lambda: (
                    lookup.get_repo_installation(path.owner, path.repo)
                    if path.kind == "repos"
                    else lookup.get_org_installation(path.owner)
                )
            )
            self._installations[key] = self._app.with_auth(
                self._app.auth.as_installation(found.parsed_data.id)
            )
        return self._installations[key]

    def call(self, path: HookPath, operation: str, **arguments: Any) -> Response[Any, Any]:
        client = self.client(path)
        api: Any
        if path.kind == "app":
            api, where = client.rest.apps, {}
        elif path.kind == "repos":
            api, where = client.rest.repos, {"owner": path.owner, "repo": path.repo, "hook_id": path.hook_id}
        else:
            api, where = client.rest.orgs, {"org": path.owner, "hook_id": path.hook_id}
        method = getattr(api, operation)
        return self.send(lambda: method(**where, **arguments))

    def get(self, path: HookPath, url: str, params: dict[str, Any], version: str) -> Response[Any, Any]:
        """``GET url`` (a path of the API) with the credentials of ``path``'s scope, read as plain JSON
        by the caller (the runners' lists: :mod:`worker.github_runners`)."""
        client = self.client(path)
        headers = {"X-GitHub-Api-Version": version}
        return self.send(lambda: client.request("GET", url, params=params, headers=headers))

    def send(self, call: Callable[[], Response[Any, Any]]) -> Response[Any, Any]:
        import httpx  # noqa: PLC0415 - githubkit's HTTP client, imported with it
        from githubkit.exception import (  # noqa: PLC0415 - githubkit is imported only when on
            RateLimitExceeded,
            RequestError,
            RequestFailed,
            RequestTimeout,
        )

        from worker.bounded_transport import PassOver, ResponseTooLarge  # noqa: PLC0415 - with githubkit

        if self.usage.requests >= self._settings.max_requests_per_pass:
            raise ApiError(
                "budget", f"{self.usage.requests} requests this pass (github.max_requests_per_pass)"
            )
        self.usage.requests += 1
        try:
            response = call()
        except RateLimitExceeded as exc:
            self._note(exc.response.headers)
            limited = str(exc.response.status_code)
            raise ApiError(limited, "rate limit", exc.retry_after.total_seconds()) from None
        except RequestFailed as exc:
            self._note(exc.response.headers)
            code = exc.response.status_code
            retry = _retry_after(exc.response.headers, self._clock()) if code in (403, 429) else None
            raise ApiError(str(code), _message(exc.response), retry) from None
        except RequestTimeout:
            raise ApiError("timeout", f"no answer within {self._settings.timeout_seconds} s") from None
        except RequestError as exc:  # no answer (connection), or githubkit could not make the call
            if isinstance(exc.exc, PassOver | ResponseTooLarge):
                status = "deadline" if isinstance(exc.exc, PassOver) else "too_large"
                raise ApiError(status, str(exc.exc)) from None
            status = "connection" if isinstance(exc.exc, httpx.TransportError) else "error"
            raise ApiError(status, type(exc.exc).__name__) from None
        self._note(response.headers)
        if 300 <= response.status_code < 400:  # not followed: the token stays with api_url's host
            where = loggable(response.headers.get("location", ""), 100)
            raise ApiError("redirect", f"HTTP {response.status_code} to {where}")
        return response

    def _note(self, headers: Any) -> None:
        remaining = header_number(headers.get("x-ratelimit-remaining"), MAX_RATE_LIMIT)
        reset = header_number(headers.get("x-ratelimit-reset"), self._clock() + MAX_WAIT_SECONDS)
        if remaining is not None:
            self.usage.rate_remaining = int(remaining)
        if reset is not None:
            self.usage.rate_reset = reset


def _retry_after(headers: Any, now: float) -> float | None:
    """Seconds until GitHub allows the next call: ``retry-after``, else the rate limit's reset when
    none is left, else a minute (GitHub's advice for a secondary limit without a header); at most
    :data:`MAX_WAIT_SECONDS`, whatever the headers say."""
    after = header_number(headers.get("retry-after"), MAX_WAIT_SECONDS)
    if after is not None:
        return after
    reset = header_number(headers.get("x-ratelimit-reset"), now + MAX_WAIT_SECONDS)
    if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
        return max(0.0, reset - now)
    return 60.0


def _message(response: Response[Any, Any]) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    message = body.get("message") if isinstance(body, dict) else None
    return loggable(str(message), 200) if message else f"HTTP {response.status_code}"
