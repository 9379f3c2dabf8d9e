"""What a completed job cost at list price: GitHub's rounding, runner classes, what is free.

- Billable minutes: each job's ``completed_at - started_at`` rounded **up** to the whole minute.
- Runner class from the job's labels: ``self-hosted`` (or a configured self-hosted runner group)
  -> ``self_hosted`` at ``cost.self_hosted_rate``; a label in ``cost.label_skus`` (larger runners,
  whose labels their admins chose) -> that SKU; GitHub's standard labels (``ubuntu-*``,
  ``ubuntu-slim``, ``*-arm``, ``windows-*``, ``macos-*``, ``macos-*-large``/``-xlarge``) -> their SKU;
  anything else -> ``unknown`` at rate 0.
- Free: standard runners on public repositories; never larger runners.
This is a list-price estimate, not the invoice: included minutes and discounts are unknown here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from shared.settings import CostSettings

# Standard GitHub-hosted runners: free on public repositories.
STANDARD_SKUS = frozenset(
    {"linux_slim", "linux", "windows", "macos", "linux_2_core_arm", "windows_2_core_arm"}
)
HOSTED_PATTERNS = (
    (re.compile(r"^ubuntu-slim$"), "linux_slim"),
    (re.compile(r"^ubuntu-.*-arm$"), "linux_2_core_arm"),
    (re.compile(r"^ubuntu-"), "linux"),
    (re.compile(r"^windows-.*-arm$"), "windows_2_core_arm"),
    (re.compile(r"^windows-"), "windows"),
    (re.compile(r"^macos-.*-xlarge$"), "macos_xl"),
    (re.compile(r"^macos-.*-large$"), "macos_l"),
    (re.compile(r"^macos-"), "macos"),
)
SELF_HOSTED = "self_hosted"
UNKNOWN = "unknown"
NO_RUNNER = "none"


@dataclass(frozen=True)
class JobCost:
    runner_class: str
    minutes: int  # billable minutes (0 when free)
    usd: float


class CostModel:
    def __init__(self, settings: CostSettings) -> None:
        self._settings = settings
        self._label_skus = {label.lower(): sku.lower() for label, sku in settings.label_skus.items()}
        self._self_hosted_groups = frozenset(settings.self_hosted_groups)

    def runner_class(self, labels: tuple[str, ...], runner_group: str) -> str:
        lowered = [label.lower() for label in labels]
        if "self-hosted" in lowered or (runner_group and runner_group in self._self_hosted_groups):
            return SELF_HOSTED
        for label in lowered:
            if label in self._label_skus:
                return self._label_skus[label]
        for label in lowered:
            for pattern, sku in HOSTED_PATTERNS:
                if pattern.match(label):
                    return sku
        return UNKNOWN if lowered else NO_RUNNER

    def rate(self, runner_class: str) -> float:
        if runner_class == SELF_HOSTED:
            return self._settings.self_hosted_rate
        return self._settings.rates.get(runner_class, 0.0)

    def job_cost(self, runner_class: str, seconds: float, public: bool | None) -> JobCost:
        if public and runner_class in STANDARD_SKUS:
            return JobCost(runner_class, 0, 0.0)
        minutes = math.ceil(max(0.0, seconds) / 60)
        return JobCost(runner_class, minutes, round(minutes * self.rate(runner_class), 6))
