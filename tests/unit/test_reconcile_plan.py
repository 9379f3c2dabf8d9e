"""The reconciliation's decision: which GUIDs of a hook's delivery log to redeliver, and why."""

from __future__ import annotations

from worker.reconcile_plan import Attempt, Decision, plan

NOW = 1_800_000_000.0
DAY = 86_400.0


def attempt(n: int, guid: str, status: str = "OK", age: float = 60.0, event: str = "workflow_job") -> Attempt:
    return Attempt(n, guid, NOW - age, status, event)


def decide(attempts, marked=(), redelivered=None, max_redeliveries=3):
    return plan(
        attempts, set(marked), redelivered or {}, now=NOW, window=3 * DAY, max_redeliveries=max_redeliveries
    )


def test_a_guid_with_a_mark_is_left_alone_whatever_its_attempts_say():
    assert decide([attempt(1, "a", "Invalid HTTP Response: 503"), attempt(2, "b")], marked={"a", "b"}) == []


def test_failed_and_missing_guids_are_redelivered_from_their_latest_attempt():
    decisions = decide(
        [
            attempt(1, "failed", "Invalid HTTP Response: 503", age=300),
            attempt(3, "failed", "timed out", age=200),  # a redelivery that failed too
            attempt(2, "missing", "OK", age=250),  # acknowledged, then lost with Redis
        ]
    )
    assert decisions == [
        Decision("failed", "failed", "redeliver", 3, NOW - 300),
        Decision("missing", "missing", "redeliver", 2, NOW - 250),
    ]


def test_one_success_among_failures_makes_it_missing_not_failed():
    [decision] = decide(
        [attempt(1, "g", "Invalid HTTP Response: 503", age=100), attempt(2, "g", "OK", age=50)]
    )
    assert decision.reason == "missing"
    assert decision.attempt_id == 2


def test_other_events_are_not_reconciled():
    assert (
        decide([attempt(1, "p", "timed out", event="ping"), attempt(2, "q", "timed out", event="push")]) == []
    )


def test_past_the_window_or_the_redelivery_limit_only_counted():
    decisions = decide(
        [attempt(1, "old", "timed out", age=3 * DAY + 1), attempt(2, "tried", "timed out")],
        redelivered={"tried": 3},
    )
    assert [(d.guid, d.action) for d in decisions] == [("old", "too_old"), ("tried", "exhausted")]
    assert decide([attempt(2, "tried", "timed out")], redelivered={"tried": 2})[0].action == "redeliver"
