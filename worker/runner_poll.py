"""The runners' poll: every ``github.runners_interval_seconds``, one worker (of any number of
replicas, :mod:`worker.leased`) lists the runners of each scope of ``github.runners`` and keeps each
complete reading in Redis (:mod:`worker.runner_inventory`).

It shares GitHub with reconciliation, which comes first: one token, one rate limit. A poll makes at
most ``github.max_requests_per_pass`` requests; it does not start while GitHub asked either of them
to wait (a rate limit's ``Retry-After`` or reset), nor, with ``github.hooks`` set, while GitHub's
last word leaves fewer requests before its reset than one reconciliation pass may make. A scope
whose reading fails keeps its last complete reading (its age is exposed); a rate limit ends the
poll and delays the next. Nothing here stops the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from loguru import logger
from redis import Redis
from redis.exceptions import RedisError

from shared import keys
from shared.logs import loggable
from shared.settings_outbound import GithubSettings
from worker.github_calls import MAX_RATE_LIMIT, ApiError, GitHubCalls, header_number
from worker.github_runners import GitHubRunners
from worker.leased import LeasedWork
from worker.metrics import PollMetrics, ReconcileMetrics
from worker.reconcile import pass_due
from worker.reconcile_store import WAIT_UNTIL, ReconcileStore, waiting
from worker.runner_inventory import Inventory

TICK_SECONDS = 5.0


@dataclass
class PollReport:
    """What one poll read: runners per scope, the scopes that failed and why, requests made."""

    runners: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    stored_bytes: int = 0

    @property
    def result(self) -> str:
        if not self.errors:
            return "ok"
        return "failed" if not self.runners else "partial"


class RunnerPoller:
    def __init__(
        self,
        connection: Redis,
        settings: Callable[[], GithubSettings],
        metrics: PollMetrics,
        errors: ReconcileMetrics,
        *,
        clock: Callable[[], float] = time.time,
        calls: Callable[[GithubSettings], GitHubCalls] = GitHubCalls,
    ) -> None:
        self._inventory = Inventory(connection)
        self._github = ReconcileStore(connection)
        self._settings = settings
        self._metrics = metrics
        self._errors = errors
        self._clock = clock
        self._calls = calls

    def due(self) -> bool:
        settings = self._settings()
        if not settings.runners:
            return False
        now = self._clock()
        if not pass_due(self._inventory.next_poll(), now, settings.runners_interval_seconds):
            return False
        status = self._github.status()  # GitHub's last word, read once for both checks
        return not waiting(status.get(WAIT_UNTIL), now) and not self._reserved(settings, status, now)

    @staticmethod
    def _reserved(settings: GithubSettings, status: Mapping[str, str], now: float) -> bool:
        """Whether what GitHub still allows before its reset is kept for a reconciliation pass."""
        if not settings.hooks:
            return False
        remaining = header_number(status.get("rate_limit_remaining"), MAX_RATE_LIMIT)
        reset = header_number(status.get("rate_limit_reset"), 1e12)
        if remaining is None or (reset is not None and reset <= now):
            return False
        return remaining < settings.max_requests_per_pass

    def run_pass(self) -> PollReport:
        """Read every scope once; keep what was read whole."""
        settings = self._settings()
        calls = self._calls(settings)
        github = GitHubRunners(calls)
        report = PollReport()
        started = self._clock()
        wait: float | None = None
        for scope in settings.runners:
            if wait is not None:
                report.errors[scope] = "rate limited"
                continue
            try:
                found = github.scope(scope)
            except ApiError as exc:
                report.errors[scope] = str(exc)
                self._errors.api_errors.labels(exc.status).inc()
                logger.warning("runners of {}: {}", scope, exc)
                wait = exc.retry_after
                continue
            except RedisError:
                raise
            except Exception as exc:  # an answer that could not be read, a bad key: logged, counted
                report.errors[scope] = f"{type(exc).__name__}: {loggable(str(exc), 200)}"
                self._errors.api_errors.labels("unexpected").inc()
                logger.warning("runners of {}: {}", scope, report.errors[scope])
                continue
            report.runners[scope] = len(found.runners)
            report.stored_bytes += self._inventory.save(scope, found.runners, self._clock())
            if found.invalid:
                self._errors.api_errors.labels("invalid_runner").inc(found.invalid)
                logger.warning(
                    "runners of {}: {} not as GitHub documents them, left out", scope, found.invalid
                )
        report.requests = calls.usage.requests
        self._inventory.forget_others(settings.runners)
        self._inventory.plan_next(started + max(settings.runners_interval_seconds, wait or 0.0))
        self._github.note_github(calls.usage, wait, started)
        self._metrics.polls.labels(report.result).inc()
        return report


def runner_poll_loop(connection: Redis, poller: RunnerPoller) -> LeasedWork[PollReport]:
    """:meth:`RunnerPoller.run_pass` when a poll is due and no other worker holds the lease."""
    return LeasedWork(connection, keys.RUNNERS_LOCK, "runner poll", poller.due, poller.run_pass, TICK_SECONDS)
