"""What one reconciliation pass asks GitHub to redeliver, given a hook's delivery log and what
Redis holds: a pure function, no I/O (:func:`plan`).

GitHub never retries a failed delivery, and a delivery the receiver acknowledged is lost with a
Redis that crashed before writing it to disk. The receiver keeps a mark per (hook id, delivery
GUID) for ``webhook.dedupe_ttl_seconds`` (3.5 days, longer than the reconciler looks back and
GitHub redelivers: the settings check it), so a GUID of
``workflow_job`` or ``workflow_run`` in the log with no mark was never taken in:

- **failed**: no attempt of the GUID succeeded (``status`` other than ``OK``);
- **missing**: an attempt succeeded, yet there is no mark (acknowledged, then lost).

Such a GUID is redelivered (its latest attempt), unless GitHub no longer redelivers it (older than
``github.redelivery_window_seconds``: **too_old**) or it was redelivered
``github.max_redeliveries`` times already (**exhausted**); those two are only counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

RECONCILED_EVENTS = ("workflow_job", "workflow_run")
SUCCESS = "OK"

Reason = Literal["failed", "missing"]
Action = Literal["redeliver", "too_old", "exhausted"]


@dataclass(frozen=True)
class Attempt:
    """One entry of a hook's delivery log (GitHub's ``hook-delivery-item``)."""

    id: int
    guid: str
    delivered_at: float  # epoch seconds
    status: str  # "OK", "Invalid HTTP Response: 503", "timed out", ...
    event: str
    redelivery: bool = False


@dataclass(frozen=True)
class Decision:
    guid: str
    reason: Reason
    action: Action
    attempt_id: int  # the attempt to redeliver: the GUID's latest
    first_delivered_at: float


def plan(
    attempts: Iterable[Attempt],
    marked: set[str],
    redelivered: Mapping[str, int],
    *,
    now: float,
    window: float,
    max_redeliveries: int,
) -> list[Decision]:
    """The GUIDs of ``attempts`` that have no mark (``marked``: GUIDs with one), oldest first, each
    with what to do; ``redelivered`` counts the redeliveries already requested per GUID."""
    by_guid: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        if attempt.event in RECONCILED_EVENTS:
            by_guid[attempt.guid].append(attempt)
    decisions = []
    for guid, tries in by_guid.items():
        if guid in marked:
            continue
        first = min(tries, key=lambda a: (a.delivered_at, a.id))
        latest = max(tries, key=lambda a: (a.delivered_at, a.id))
        reason: Reason = "missing" if any(a.status == SUCCESS for a in tries) else "failed"
        action: Action = "redeliver"
        if now - first.delivered_at > window:
            action = "too_old"
        elif redelivered.get(guid, 0) >= max_redeliveries:
            action = "exhausted"
        decisions.append(Decision(guid, reason, action, latest.id, first.delivered_at))
    decisions.sort(key=lambda d: (d.first_delivered_at, d.guid))
    return decisions
