"""GitHub's REST API as the reconciler uses it: a hook's delivery log, one delivery, a redelivery.

Built on githubkit (typed models, App JWT and installation tokens, a base URL for GitHub
Enterprise Server), imported only when reconciliation is on. What this module adds is the
discipline one pass keeps: at most ``github.max_requests_per_pass`` requests, each read whole within
its timeout and byte bound and none past the pass's deadline (:mod:`worker.github_transport`), no
redirect followed, GitHub's rate-limit headers read on every answer (``x-ratelimit-remaining``,
``x-ratelimit-reset``, ``retry-after``) as bounded numbers, a delivery whose GUID is not a UUID left
out and counted, and every failure raised as :class:`ApiError` with a short ``status`` for the error
counter (``403``, ``429``, ``timeout``, ``connection``, ``budget``, ``deadline``, ``too_large``,
``redirect``, ``invalid_answer``, ``error``: githubkit could not make the call, e.g. an App key it
cannot read), never with the token, and with any text GitHub sent made fit for a log line.

A log longer than one pass can read is read in part: reading stops at :data:`LISTING_SHARE` of the
pass's budget or time (the rest is for the redeliveries), :meth:`deliveries` returns where it
stopped, and the reconciler resumes there in the next pass.

A hook is named by its API path (``repos/OWNER/REPO/hooks/ID``, ``orgs/ORG/hooks/ID``, ``app/hook``).
With a token, every call uses it. With a GitHub App, ``app/hook`` calls use the App's JWT, and a
repository's or organization's hook uses the token of the App's installation there (looked up
once per client).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.digits import MAX_HOOK_ID_DIGITS, ascii_digits
from shared.logs import loggable
from shared.settings import GithubSettings
from worker.reconcile_plan import Attempt

if TYPE_CHECKING:
    from githubkit import GitHub, Response

NEXT_CURSOR = re.compile(r'<[^>]*[?&]cursor=([^&>]{1,512})[^>]*>;\s*rel="next"')
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PER_PAGE = 100
LARGE_RESPONSE_BYTES = 32 * 2**20  # one delivery with its payload (GitHub caps payloads at 25 MB)
LISTING_SHARE = 0.8  # of a pass's budget and time that reading logs may take; the rest: redeliveries
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


@dataclass
class Log:
    """A hook's log as read: its attempts (newest first), and, when the reading stopped before
    ``since`` (the pass's budget or deadline), the cursor of the next older page and why."""

    attempts: list[Attempt]
    resume: str | None = None
    stopped: str | None = None


@dataclass(frozen=True)
class HookPath:
    kind: str  # repos, orgs or app
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


class GitHubHooks:
    def __init__(self, settings: GithubSettings, *, clock: Callable[[], float] = time.time) -> None:
        from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy  # noqa: PLC0415 - only when on

        from worker.github_transport import BoundedTransport, Bounds  # noqa: PLC0415 - with githubkit

        self._settings = settings
        self._clock = clock
        self.usage = Usage()
        started = time.monotonic()
        self._bounds = Bounds(
            settings.max_response_bytes, settings.timeout_seconds, started + settings.pass_timeout_seconds
        )
        self._listing_deadline = started + settings.pass_timeout_seconds * LISTING_SHARE
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

    # -- calls ------------------------------------------------------------------------------------
    def deliveries(self, hook: str, since: float, cursor: str | None = None) -> Log:
        """The hook's log back to ``since`` (epoch seconds), newest first, page by page, from
        ``cursor`` (a page a stopped reading returned) or the newest. A page the pass's budget or
        deadline refuses ends the reading there (the first page: raised)."""
        path = HookPath.parse(hook)
        found: list[Attempt] = []
        first = True
        while True:
            stop = None if first else self._listing_over()
            if stop is not None and cursor is not None:
                return Log([a for a in found if a.delivered_at >= since], cursor, stop)
            first = False
            response = self._call(path, "list_webhook_deliveries", per_page=PER_PAGE, **_cursor(cursor))
            items = response.parsed_data
            for item in items:
                if not isinstance(item.guid, str) or GUID.fullmatch(item.guid) is None:
                    self.usage.invalid_guids += 1  # never a mark, a Redis key or a log line
                    continue
                at = item.delivered_at.timestamp()
                found.append(Attempt(item.id, item.guid, at, item.status, item.event, bool(item.redelivery)))
            link = response.headers.get("link", "")
            match = NEXT_CURSOR.search(link)
            if not items or items[-1].delivered_at.timestamp() < since or 'rel="next"' not in link:
                return Log([a for a in found if a.delivered_at >= since])
            if match is None:
                raise ApiError("invalid_answer", "a next page without a cursor of at most 512 characters")
            cursor = match.group(1)

    def _listing_over(self) -> str | None:
        """Why reading a log stops here, so that a share of the pass (LISTING_SHARE of its budget and
        time) is left to act on what was read: ``budget``, ``deadline`` or None."""
        if self.usage.requests >= int(self._settings.max_requests_per_pass * LISTING_SHARE):
            return "budget"
        if time.monotonic() >= self._listing_deadline:
            return "deadline"
        return None

    def redeliver(self, hook: str, delivery_id: int) -> None:
        self._call(HookPath.parse(hook), "redeliver_webhook_delivery", delivery_id=delivery_id)

    def hook_id(self, hook: str, delivery_id: int | None) -> int | None:
        """The hook's id: from its path, or (``app/hook``) from the ``X-GitHub-Hook-ID`` a delivery
        carried (GitHub's list does not say it): ``delivery_id`` is any delivery of the log."""
        path = HookPath.parse(hook)
        if path.hook_id is not None or delivery_id is None:
            return path.hook_id
        usual, self._bounds.max_bytes = (
            self._bounds.max_bytes,
            max(LARGE_RESPONSE_BYTES, self._bounds.max_bytes),
        )
        try:  # the one call whose answer holds a payload
            delivery = self._call(path, "get_webhook_delivery", delivery_id=delivery_id).parsed_data
        finally:
            self._bounds.max_bytes = usual
        raw = delivery.request.headers
        stored = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw or {})  # a model of any fields
        headers = {str(k).lower(): v for k, v in stored.items()}
        value = headers.get("x-github-hook-id")
        text = str(value) if isinstance(value, str | int) else ""
        return int(text) if ascii_digits(text, MAX_HOOK_ID_DIGITS) else None

    # -- plumbing ---------------------------------------------------------------------------------
    def _client(self, path: HookPath) -> GitHub[Any]:
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
            found = self._send(
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

    def _call(self, path: HookPath, operation: str, **arguments: Any) -> Response[Any, Any]:
        client = self._client(path)
        api: Any
        if path.kind == "app":
            api, where = client.rest.apps, {}
        elif path.kind == "repos":
            api, where = client.rest.repos, {"owner": path.owner, "repo": path.repo, "hook_id": path.hook_id}
        else:
            api, where = client.rest.orgs, {"org": path.owner, "hook_id": path.hook_id}
        method = getattr(api, operation)
        return self._send(lambda: method(**where, **arguments))

    def _send(self, call: Callable[[], Response[Any, Any]]) -> Response[Any, Any]:
        import httpx  # noqa: PLC0415 - githubkit's HTTP client, imported with it
        from githubkit.exception import (  # noqa: PLC0415 - githubkit is imported only when on
            RateLimitExceeded,
            RequestError,
            RequestFailed,
            RequestTimeout,
        )

        from worker.github_transport import PassOver, ResponseTooLarge  # noqa: PLC0415 - with githubkit

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


def _cursor(cursor: str | None) -> dict[str, str]:
    return {} if cursor is None else {"cursor": cursor}


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
