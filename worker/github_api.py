"""GitHub's REST API as the reconciler uses it: a hook's delivery log, one delivery, a redelivery.

Built on githubkit (typed models, App JWT and installation tokens, a base URL for GitHub
Enterprise Server) through :mod:`worker.github_calls`, which keeps each call within the pass's
bounds and raises every failure as :class:`~worker.github_calls.ApiError` with a short ``status``
for the error counter (``403``, ``429``, ``timeout``, ``connection``, ``budget``, ``deadline``,
``too_large``, ``redirect``, ``invalid_answer``, ``error``). Here: the log read page by page, a
delivery whose GUID is not a UUID left out and counted, ``app/hook``'s id learnt from a delivery.

A log longer than one pass can read is read in part: reading stops at :data:`LISTING_SHARE` of the
pass's budget or time (the rest is for the redeliveries), :meth:`deliveries` returns where it
stopped, and the reconciler resumes there in the next pass.

A hook is named by its API path (``repos/OWNER/REPO/hooks/ID``, ``orgs/ORG/hooks/ID``, ``app/hook``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.digits import MAX_HOOK_ID_DIGITS, ascii_digits
from shared.settings_outbound import GithubSettings
from worker.github_calls import ApiError, GitHubCalls, HookPath
from worker.reconcile_plan import Attempt

if TYPE_CHECKING:
    pass

NEXT_CURSOR = re.compile(r'<[^>]*[?&]cursor=([^&>]{1,512})[^>]*>;\s*rel="next"')
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PER_PAGE = 100
LARGE_RESPONSE_BYTES = 32 * 2**20  # one delivery with its payload (GitHub caps payloads at 25 MB)
LISTING_SHARE = 0.8  # of a pass's budget and time that reading logs may take; the rest: redeliveries


@dataclass
class Log:
    """A hook's log as read: its attempts (newest first), and, when the reading stopped before
    ``since`` (the pass's budget or deadline), the cursor of the next older page and why."""

    attempts: list[Attempt]
    resume: str | None = None
    stopped: str | None = None


class GitHubHooks:
    def __init__(self, settings: GithubSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._settings = settings
        self._calls = GitHubCalls(settings, clock=clock)
        self.usage = self._calls.usage
        self._listing_deadline = time.monotonic() + settings.pass_timeout_seconds * LISTING_SHARE

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
            response = self._calls.call(path, "list_webhook_deliveries", per_page=PER_PAGE, **_cursor(cursor))
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
        self._calls.call(HookPath.parse(hook), "redeliver_webhook_delivery", delivery_id=delivery_id)

    def hook_id(self, hook: str, delivery_id: int | None) -> int | None:
        """The hook's id: from its path, or (``app/hook``) from the ``X-GitHub-Hook-ID`` a delivery
        carried (GitHub's list does not say it): ``delivery_id`` is any delivery of the log."""
        path = HookPath.parse(hook)
        if path.hook_id is not None or delivery_id is None:
            return path.hook_id
        with self._calls.larger_answers(LARGE_RESPONSE_BYTES):  # the one call whose answer holds a payload
            delivery = self._calls.call(path, "get_webhook_delivery", delivery_id=delivery_id).parsed_data
        raw = delivery.request.headers
        stored = raw.model_dump() if hasattr(raw, "model_dump") else dict(raw or {})  # a model of any fields
        headers = {str(k).lower(): v for k, v in stored.items()}
        value = headers.get("x-github-hook-id")
        text = str(value) if isinstance(value, str | int) else ""
        return int(text) if ascii_digits(text, MAX_HOOK_ID_DIGITS) else None


def _cursor(cursor: str | None) -> dict[str, str]:
    return {} if cursor is None else {"cursor": cursor}
