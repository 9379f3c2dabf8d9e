"""Reconciliation with GitHub's delivery log: every ``github.reconcile_interval_seconds``, one worker
(of any number of replicas) reads each hook's recent deliveries and asks GitHub to redeliver those
Redis has no mark of (:mod:`worker.reconcile_plan` decides which).

What it keeps in Redis: :mod:`worker.reconcile_store`; ``lock:reconcile`` is held by the worker
running a pass (a lease, renewed while it runs).

A pass reads each hook back to its last successful pass, less an overlap (the first pass:
``github.reconcile_lookback_seconds``), and acts on what it read. A log longer than the pass's budget
(``github.max_requests_per_pass``) or deadline (``github.pass_timeout_seconds``) is read in part: the
next pass resumes at the page where it stopped, and the hook succeeds once a reading reached its
start (a hook with more than 50,000 deliveries in the window used to start over every pass and
never finish). An API error ends the hook's part of the pass (logged without the token, counted by
status); a rate limit ends the whole pass and puts the next one after GitHub's reset. Nothing here
stops the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger
from redis import Redis
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from shared import keys
from shared.logs import loggable
from shared.marks import DeliveryMarks, MarkState
from shared.settings_outbound import GithubSettings
from worker.github_api import GitHubHooks, Log
from worker.github_calls import MAX_WAIT_SECONDS, ApiError
from worker.leased import LeasedWork
from worker.metrics import ReconcileMetrics
from worker.reconcile_plan import Attempt, Decision, plan
from worker.reconcile_store import Checkpoint, ReconcileStore

MIN_OVERLAP_SECONDS = 600.0
TICK_SECONDS = 5.0


@dataclass
class HookReport:
    """What one pass found and did for one hook."""

    hook: str
    since: float
    began: float  # when the reading of this log began (an earlier pass's start, when resumed)
    attempts: int = 0
    decisions: list[Decision] = field(default_factory=list)
    error: str | None = None
    resumed: bool = False  # read on from where an earlier pass stopped

    def count(self, action: str, reason: str | None = None) -> int:
        return sum(1 for d in self.decisions if d.action == action and reason in (None, d.reason))


@dataclass
class PassReport:
    hooks: list[HookReport] = field(default_factory=list)
    dry_run: bool = False

    @property
    def result(self) -> str:
        failed = [h for h in self.hooks if h.error is not None]
        if not failed:
            return "ok"
        return "failed" if len(failed) == len(self.hooks) else "partial"


ClientFactory = Callable[[GithubSettings], GitHubHooks]


def reading_start(settings: GithubSettings, last_success: str | None, now: float) -> float:
    """Where a hook's reading goes back to: its last successful pass less an overlap, at most
    ``github.reconcile_lookback_seconds`` back (the first pass: that far)."""
    if last_success is None:
        return now - settings.reconcile_lookback_seconds
    overlap = max(MIN_OVERLAP_SECONDS, 2.0 * settings.reconcile_interval_seconds)
    return max(float(last_success) - overlap, now - settings.reconcile_lookback_seconds)


def pass_due(next_pass: bytes | None, now: float, interval: float) -> bool:
    """A pass is due at ``next_pass``; one that is not a time, or further away than any interval
    and wait allow (written from a hostile answer before waits were bounded), is due now."""
    try:
        due = float(next_pass) if next_pass is not None else 0.0
    except ValueError:
        return True
    return not due <= now + interval + MAX_WAIT_SECONDS or now >= due


class Reconciler:
    def __init__(
        self,
        connection: Redis,
        marks: DeliveryMarks,
        settings: Callable[[], GithubSettings],
        metrics: ReconcileMetrics,
        *,
        clock: Callable[[], float] = time.time,
        client: ClientFactory = GitHubHooks,
    ) -> None:
        self._store = ReconcileStore(connection)
        self._marks = marks
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._client = client

    def run_pass(self, since: float | None = None, dry_run: bool = False) -> PassReport:
        """Reconcile every hook once; ``since`` overrides where each hook's reading starts."""
        settings = self._settings()
        report = PassReport(dry_run=dry_run)
        client = self._client(settings)
        started = self._clock()
        status = self._store.status()
        wait: float | None = None
        for hook in settings.hooks:
            start = (
                since
                if since is not None
                else reading_start(settings, status.get(f"last_success:{hook}"), started)
            )
            hook_report = HookReport(hook, start, started)
            report.hooks.append(hook_report)
            if wait is not None:
                hook_report.error = "rate limited"
                continue
            try:
                self._reconcile(client, settings, status, hook_report, started, dry_run)
            except ApiError as exc:
                hook_report.error = str(exc)
                self._metrics.api_errors.labels(exc.status).inc()
                logger.warning("reconcile {}: {}", hook, exc)
                if exc.retry_after is not None:
                    wait = exc.retry_after
            except RedisError:
                raise  # not GitHub's: the loop logs it and tries at the next tick
            except Exception as exc:  # an answer githubkit could not read, a bad key: logged, counted
                hook_report.error = f"{type(exc).__name__}: {loggable(str(exc), 200)}"
                self._metrics.api_errors.labels("unexpected").inc()
                logger.warning("reconcile {}: {}", hook, hook_report.error)
        updates: dict[FieldT, EncodableT] = {}
        self._store.note_github(client.usage, wait, started)
        if not dry_run:
            wait = min(wait or 0.0, MAX_WAIT_SECONDS)
            updates["next_pass"] = repr(started + max(settings.reconcile_interval_seconds, wait))
            for hook_report in report.hooks:
                if hook_report.error is None:
                    updates[f"last_success:{hook_report.hook}"] = repr(hook_report.began)
            self._metrics.passes.labels(report.result).inc()
        self._store.save(updates)
        if client.usage.invalid_guids:
            self._metrics.api_errors.labels("invalid_guid").inc(client.usage.invalid_guids)
            logger.warning(
                "reconcile: {} deliveries in GitHub's answers had a GUID that is no UUID: left out",
                client.usage.invalid_guids,
            )
        return report

    def _reconcile(  # noqa: PLR0917 - one hook's step of the pass
        self,
        client: GitHubHooks,
        settings: GithubSettings,
        status: dict[str, str],
        report: HookReport,
        now: float,
        dry_run: bool,
    ) -> None:
        resume = None if dry_run else self._store.checkpoint(status, report.hook)
        if resume is not None:  # go on from where an earlier pass stopped
            report.since, report.began, report.resumed = resume.since, resume.began, True
        try:
            log = client.deliveries(report.hook, report.since, None if resume is None else resume.cursor)
        except ApiError as exc:
            if resume is not None and exc.status in ("400", "404", "410", "422"):
                # a cursor GitHub no longer takes: the next pass reads from the newest
                self._store.keep_checkpoint(report.hook, None)
            raise
        attempts = log.attempts
        report.attempts = len(attempts)
        hook_id = self._hook_id(client, status, report.hook, attempts)
        if hook_id is None:
            self._keep_checkpoint(report, log, dry_run)
            return  # an empty log: nothing to reconcile
        guids = sorted({a.guid for a in attempts})
        states = self._marks.states([keys.mark(str(hook_id), guid) for guid in guids])
        marked = {guid for guid, state in zip(guids, states, strict=True) if state is not MarkState.MISSING}
        counts = self._store.redelivered(hook_id, [g for g in guids if g not in marked])
        report.decisions = plan(
            attempts,
            marked,
            counts,
            now=now,
            window=settings.redelivery_window_seconds,
            max_redeliveries=settings.max_redeliveries,
        )
        for decision in report.decisions:
            if dry_run:
                continue
            if decision.action != "redeliver":
                # counted once per delivery, however many passes see it again
                window = settings.redelivery_window_seconds
                if self._store.first_unrecoverable(hook_id, decision.guid, decision.action, window):
                    self._metrics.unrecoverable.labels(report.hook, decision.action).inc()
                continue
            client.redeliver(report.hook, decision.attempt_id)
            self._store.count_redelivery(hook_id, decision.guid, settings.redelivery_window_seconds)
            self._metrics.redeliveries.labels(report.hook, decision.reason).inc()
            logger.info(
                "reconcile {}: redelivery of {} requested ({})", report.hook, decision.guid, decision.reason
            )
        # only once what was read was acted on: a pass that could not is read again by the next
        self._keep_checkpoint(report, log, dry_run)

    def _keep_checkpoint(self, report: HookReport, log: Log, dry_run: bool) -> None:
        """A log read in part: where the next pass resumes; read to its start: nothing kept."""
        if dry_run:
            return
        if log.resume is None:
            self._store.keep_checkpoint(report.hook, None)
            return
        self._store.keep_checkpoint(report.hook, Checkpoint(log.resume, report.since, report.began))
        report.error = f"read in part ({log.stopped}): the next pass resumes where this one stopped"
        self._metrics.api_errors.labels(log.stopped or "budget").inc()

    def _hook_id(
        self, client: GitHubHooks, status: dict[str, str], hook: str, attempts: list[Attempt]
    ) -> int | None:
        known = status.get(f"hook_id:{hook}")
        if known is not None:
            return int(known)
        found = client.hook_id(hook, attempts[0].id if attempts else None)
        if found is not None and hook == "app/hook":
            self._store.keep_hook_id(status, hook, found)
        return found

    def due(self) -> bool:
        now = self._clock()
        interval = self._settings().reconcile_interval_seconds
        return pass_due(self._store.next_pass(), now, interval) and not self._store.github_waits(now)


def reconcile_loop(
    connection: Redis, reconciler: Reconciler, enabled: Callable[[], bool]
) -> LeasedWork[PassReport]:
    """:meth:`Reconciler.run_pass` when reconciliation is on, a pass is due and no other worker
    holds the lease."""
    return LeasedWork(
        connection,
        keys.RECONCILE_LOCK,
        "reconcile",
        lambda: enabled() and reconciler.due(),
        reconciler.run_pass,
        TICK_SECONDS,
    )
