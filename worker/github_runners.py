"""GitHub's REST API as the runners' inventory reads it: the self-hosted runners of an
organization, a repository or an enterprise, their runner groups, and an organization's
GitHub-hosted larger runners.

The calls go through :class:`~worker.github_calls.GitHubCalls` (the reconciler's bounds: requests
per pass, each answer's time and bytes, the pass's deadline, rate limits, no redirect). Every
answer is read as plain JSON and each runner checked alone: a runner with a value of the wrong
type or size is left out and counted (``invalid_runners``), never the whole list. A list is read
page by page (``per_page`` 100) until a page is short or has no ``rel="next"``, at most
:data:`MAX_RUNNERS` runners a scope.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.github_calls import ApiError, GitHubCalls, HookPath

PER_PAGE = 100
MAX_RUNNERS = 50_000  # a scope's runners read at most (GitHub's own limit for a group is 10,000)
MAX_TEXT = 200  # a runner's name, a label, a group's name: GitHub allows far less
MAX_LABELS = 100
API_VERSION = "2022-11-28"  # GitHub.com, GitHub Enterprise Cloud and Server all answer it
HOSTED = "hosted"
SELF_HOSTED = "self-hosted"
DEFAULT_GROUP = "Default"  # a repository's runners: GitHub puts them in its Default group


@dataclass(frozen=True)
class Runner:
    """One runner as the inventory keeps it."""

    id: int
    name: str
    os: str  # linux, windows, macos (self-hosted: as the runner reports it; hosted: its platform's)
    state: str  # idle, busy or offline
    group: str
    labels: tuple[str, ...]
    kind: str = SELF_HOSTED  # or HOSTED: a GitHub-hosted larger runner (its name is its label)


@dataclass
class ScopeRunners:
    """What one scope's reading found: its runners, and how many were left out."""

    runners: list[Runner]
    invalid: int = 0


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= MAX_TEXT else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _group(item: dict[str, Any], groups: dict[int, str]) -> str:
    """A runner's group's name (its number when the groups did not name it; none: ``Default``)."""
    group_id = _whole(item.get("runner_group_id"))
    return groups.get(group_id, str(group_id)) if group_id is not None else DEFAULT_GROUP


def self_hosted(item: Any, groups: dict[int, str]) -> Runner | None:
    """A ``runner`` object as GitHub documents it, or None when a value is not as documented."""
    if not isinstance(item, dict):
        return None
    runner_id, name, busy = _whole(item.get("id")), _text(item.get("name")), item.get("busy")
    os, status, raw_labels = _text(item.get("os")) or "", _text(item.get("status")), item.get("labels")
    if runner_id is None or name is None or not isinstance(busy, bool) or status is None:
        return None
    if not isinstance(raw_labels, list) or len(raw_labels) > MAX_LABELS:
        return None
    labels = [_text(label.get("name")) if isinstance(label, dict) else None for label in raw_labels]
    if any(label is None for label in labels):
        return None
    state = "offline" if status != "online" else ("busy" if busy else "idle")
    labelled = tuple(label for label in labels if label)
    return Runner(runner_id, name, os.lower(), state, _group(item, groups), labelled)


def hosted(item: Any, groups: dict[int, str]) -> Runner | None:
    """An ``actions-hosted-runner`` (a pool of larger runners GitHub starts on demand): ``Ready``
    is idle (it takes jobs up to its ``maximum_runners``), any other status offline."""
    if not isinstance(item, dict):
        return None
    runner_id, name, status = _whole(item.get("id")), _text(item.get("name")), _text(item.get("status"))
    platform = _text(item.get("platform")) or ""
    if runner_id is None or name is None or status is None:
        return None
    os = platform.split("-", 1)[0].lower()
    state = "idle" if status == "Ready" else "offline"
    return Runner(runner_id, name, os, state, _group(item, groups), (name,), HOSTED)


class GitHubRunners:
    def __init__(self, calls: GitHubCalls) -> None:
        self._calls = calls

    def scope(self, scope: str) -> ScopeRunners:
        """Every runner of ``scope`` (``orgs/O``, ``repos/O/R``, ``enterprises/E``); an
        :class:`ApiError` when a list could not be read whole."""
        kind = scope.partition("/")[0]
        groups = {} if kind == "repos" else self._groups(scope)
        found = ScopeRunners([])
        self._read(scope, f"/{scope}/actions/runners", "runners", groups, self_hosted, found)
        if kind == "orgs":
            try:
                self._read(scope, f"/{scope}/actions/hosted-runners", "runners", groups, hosted, found)
            except ApiError as exc:
                if exc.status != "404":  # an organization without larger runners' access
                    raise
        return found

    def _groups(self, scope: str) -> dict[int, str]:
        names: dict[int, str] = {}
        for item in self._pages(scope, f"/{scope}/actions/runner-groups", "runner_groups"):
            group_id = item.get("id") if isinstance(item, dict) else None
            name = _text(item.get("name")) if isinstance(item, dict) else None
            # GitHub documents the id as a number: 1.0 is 1; inf or 1.5 is no id
            if isinstance(group_id, float) and group_id.is_integer():
                group_id = int(group_id)
            number = _whole(group_id)
            if number is not None and name is not None:
                names[number] = name
        return names

    def _read(  # noqa: PLR0917 - one list of one scope
        self,
        scope: str,
        url: str,
        field: str,
        groups: dict[int, str],
        make: Callable[[Any, dict[int, str]], Runner | None],
        found: ScopeRunners,
    ) -> None:
        for item in self._pages(scope, url, field):
            runner = make(item, groups)
            if runner is None:
                found.invalid += 1
            else:
                found.runners.append(runner)

    def _pages(self, scope: str, url: str, field: str) -> list[Any]:
        items: list[Any] = []
        page = 1
        while True:
            params = {"per_page": PER_PAGE, "page": page}
            response = self._calls.get(HookPath.of_scope(scope), url, params, API_VERSION)
            try:
                body = response.json()
            except ValueError:
                raise ApiError("invalid_answer", f"{url}: not JSON") from None
            listed = body.get(field) if isinstance(body, dict) else None
            if not isinstance(listed, list):
                raise ApiError("invalid_answer", f"{url}: no {field} list")
            items += listed
            if len(items) > MAX_RUNNERS:
                raise ApiError("too_large", f"{url}: more than {MAX_RUNNERS} entries")
            if len(listed) < PER_PAGE or 'rel="next"' not in response.headers.get("link", ""):
                return items
            page += 1
