"""Label values of a job or run: every field a family may carry, bounded where it must be.

``branch`` is normalised (``metrics.branches`` globs, else ``default``/``other``); ``runs_on`` is the
job's labels sorted and joined by ``,``; ``attempt`` is ``first`` or ``rerun``. Runner names, run
ids and SHAs are never labels.

Every value is at most ``metrics.max_label_value_bytes`` bytes of UTF-8 (:func:`bounded`): one
signed job named with a megabyte added 13.6 MB to Redis and 42 MB to every scrape, and a Prometheus
with ``label_value_length_limit`` drops the whole target. The values are bounded here, before
anything reaches Redis (series, in-flight set members and run states are all built from them).
"""

from __future__ import annotations

import hashlib
from fnmatch import fnmatchcase

from shared.settings import MetricsSettings
from worker.cost import CostModel
from worker.payloads import JobEvent, RunEvent

OTHER = "other"
CUT = "…"  # then [8 hex digits of the whole value's SHA-256]: cut values stay apart, visibly


def bounded(value: str, limit: int) -> str:
    """``value`` if its UTF-8 is at most ``limit`` bytes, else its start (cut at a character) and
    ``…[hash]``, ``limit`` bytes at most (limit >= 32)."""
    if len(value) * 4 <= limit:  # no character takes more than 4 bytes
        return value
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return value
    marker = f"{CUT}[{hashlib.sha256(encoded).hexdigest()[:8]}]"
    keep = encoded[: limit - len(marker.encode())].decode("utf-8", "ignore")
    return keep + marker


def bound_all(values: dict[str, str], limit: int) -> list[str]:
    """Bound every value of ``values`` in place; the names of those that were cut."""
    cut = []
    short = limit // 4  # bounded()'s own first test, here: it runs for every label of every delivery
    for name, value in values.items():
        if len(value) <= short:
            continue
        kept = bounded(value, limit)
        if kept is not value:
            values[name] = kept
            cut.append(name)
    return cut


class LabelMaker:
    def __init__(self, settings: MetricsSettings, cost: CostModel) -> None:
        self._branches = settings.branches
        self._cost = cost
        self.limit = settings.max_label_value_bytes

    def branch(self, branch: str, default_branch: str) -> str:
        if self._branches:
            return branch if any(fnmatchcase(branch, glob) for glob in self._branches) else OTHER
        return "default" if branch and branch == default_branch else OTHER

    @staticmethod
    def attempt(run_attempt: int) -> str:
        return "first" if run_attempt <= 1 else "rerun"

    def job(self, event: JobEvent) -> tuple[dict[str, str], list[str]]:
        """The job's label values, bounded, and the names of those that were cut."""
        values = {
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
        return values, bound_all(values, self.limit)

    def run(self, event: RunEvent) -> tuple[dict[str, str], list[str]]:
        values = {
            "repository": event.repository,
            "owner": event.owner,
            "workflow": event.workflow,
            "event": event.event,
            "branch": self.branch(event.branch, event.default_branch),
            "conclusion": event.conclusion or "unknown",
            "attempt": self.attempt(event.run_attempt),
        }
        return values, bound_all(values, self.limit)
