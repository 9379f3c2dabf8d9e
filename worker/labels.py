"""Label values of a job or run: every field a family may carry, bounded where it must be.

``branch`` is normalised (``metrics.branches`` globs, else ``default``/``other``); ``runs_on`` is the
job's labels sorted and joined by ``,``; ``attempt`` is ``first`` or ``rerun``. Runner names, run
ids and SHAs are never labels.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from shared.settings import MetricsSettings
from worker.cost import CostModel
from worker.payloads import JobEvent, RunEvent

OTHER = "other"


class LabelMaker:
    def __init__(self, settings: MetricsSettings, cost: CostModel) -> None:
        self._branches = settings.branches
        self._cost = cost

    def branch(self, branch: str, default_branch: str) -> str:
        if self._branches:
            return branch if any(fnmatchcase(branch, glob) for glob in self._branches) else OTHER
        return "default" if branch and branch == default_branch else OTHER

    @staticmethod
    def attempt(run_attempt: int) -> str:
        return "first" if run_attempt <= 1 else "rerun"

    def job(self, event: JobEvent) -> dict[str, str]:
        return {
            "repository": event.repository,
            "owner": event.owner,
            "workflow": event.workflow,
            "job": event.job,
            "branch": self.branch(event.branch, event.default_branch),
            "conclusion": event.conclusion or "unknown",
            "runner_group": event.runner_group,
            "runs_on": ",".join(sorted(event.labels)),
            "runner_class": self._cost.runner_class(event.labels, event.runner_group),
            "attempt": self.attempt(event.run_attempt),
        }

    def run(self, event: RunEvent) -> dict[str, str]:
        return {
            "repository": event.repository,
            "owner": event.owner,
            "workflow": event.workflow,
            "event": event.event,
            "branch": self.branch(event.branch, event.default_branch),
            "conclusion": event.conclusion or "unknown",
            "attempt": self.attempt(event.run_attempt),
        }
