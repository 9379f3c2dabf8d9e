"""The fault suite's deliveries and its per-scenario accounting. The cluster of real processes and
the load generator that plays GitHub are :mod:`bench.cluster` and :mod:`bench.load`, shared with the
benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.load import Send, sends
from tests.corpus import Delivery, run_copies

P = "github_actions_"


def stream(runs: int, prefix: str = "g") -> list[Send]:
    """``runs`` copies of the corpus's real run, in GitHub's order."""
    return as_sends(run_copies(runs), prefix)


def as_sends(deliveries: list[Delivery], prefix: str) -> list[Send]:
    return sends(((d.event, d.body) for d in deliveries), prefix)


@dataclass
class Accounting:
    """One scenario's line: what was sent, acknowledged and counted, and what was lost."""

    scenario: str
    sent: int
    attempts: int
    acknowledged: int
    counted: float
    duplicates: int
    errors: float
    lost: int
    statuses: dict[str, int]
    notes: str = ""

    def line(self) -> str:
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(self.statuses.items()))
        return (
            f"{self.scenario:<34} sent {self.sent:>6}  attempts {self.attempts:>6}"
            f"  acknowledged {self.acknowledged:>6}  counted {int(self.counted):>6}"
            f"  duplicates {self.duplicates:>5}  errors {int(self.errors):>3}"
            f"  lost {self.lost:>3}  [{statuses}] {self.notes}"
        )
