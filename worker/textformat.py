"""Prometheus text exposition (format 0.0.4, or OpenMetrics 1.0 when the scraper asks), written directly.

The Redis-backed families can hold 100,000 series; prometheus_client formats one sample at a time
through several function calls, which took seconds at that size. The aggregates are stored with
their label text already escaped (:mod:`worker.codec`), so a scrape only joins strings.
"""

from __future__ import annotations

import math


def number(value: float) -> str:
    """As prometheus_client writes a value: ``1.0``, ``0.25``, ``+Inf``, ``NaN``."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def header(name: str, doc: str, kind: str, openmetrics: bool) -> str:
    """HELP and TYPE; OpenMetrics names a counter family without the ``_total`` of its samples."""
    if openmetrics and kind == "counter":
        name = name.removesuffix("_total")
    doc = doc.replace("\\", r"\\").replace("\n", r"\n")
    if openmetrics:
        doc = doc.replace('"', r"\"")
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"


def sample(name: str, labels: str, value: str) -> str:
    return f"{name}{{{labels}}} {value}\n" if labels else f"{name} {value}\n"
