"""The receiver's own metrics, on its own registry.

Sample exposition (default prefix)::

    github_actions_webhook_deliveries_total{event="workflow_job",outcome="queued"} 12.0
    github_actions_webhook_rejections_total{reason="bad_signature"} 1.0
    github_actions_webhook_enqueue_failures_total 0.0
    github_actions_webhook_request_duration_seconds_bucket{outcome="queued",le="0.005"} 11.0
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared import http_protocol, http_server

KNOWN_EVENTS = ("workflow_run", "workflow_job", "ping")
REJECTION_REASONS = (
    "missing_signature",
    "sha1_only",
    "malformed_signature",
    "bad_signature",
    "too_large",
    "bad_content_length",
    "missing_event_header",
    "missing_delivery_header",
    "bad_header",
    "unsupported_content_type",
    "malformed_form",
    "incomplete_body",
    *http_protocol.REASONS,  # refused by the HTTP layer, before any route (shared.http_protocol)
    *http_server.ROUTE_REASONS,  # the same, on the metrics port (receiver.metrics_port)
)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def event_label(event: str | None) -> str:
    """Bounded label values: the events we know, else ``other`` (headers are attacker-controlled)."""
    if not event:
        return "unknown"
    return event if event in KNOWN_EVENTS else "other"


class ReceiverMetrics:
    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.deliveries = Counter(
            f"{prefix}webhook_deliveries",
            "Webhook requests by event and outcome"
            " (queued, duplicate, ignored, pong, rejected, unavailable).",
            ["event", "outcome"],
            registry=registry,
        )
        self.rejections = Counter(
            f"{prefix}webhook_rejections",
            "Refused requests by reason (401, 400, 413 and 431 answers, and connections closed:"
            " slow_request past receiver.body_timeout_seconds, shed past receiver.limit_concurrency);"
            " headers_too_large, malformed_request, slow_request and shed are refused before any route.",
            ["reason"],
            registry=registry,
        )
        self.enqueue_failures = Counter(
            f"{prefix}webhook_enqueue_failures",
            "Deliveries answered 503 because Redis was unreachable or refused the write.",
            registry=registry,
        )
        self.paused = Gauge(
            f"{prefix}webhook_intake_paused",
            "1 while this receiver answers 503 because Redis is above its memory high-water mark"
            " (redis.memory_high_water of maxmemory).",
            registry=registry,
        )
        self.latency = Histogram(
            f"{prefix}webhook_request_duration_seconds",
            "Time from request start to answer, by outcome.",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            f"{prefix}webhook_batch_size",
            "Deliveries written to Redis together (group commit): 1 at low load, more under a burst.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=registry,
        )
        for reason in REJECTION_REASONS:
            self.rejections.labels(reason)
        self.enqueue_failures.inc(0)
        # each request moves two series: their children looked up once (labels() takes a lock)
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def refused(self, reason: str) -> None:
        """A request the HTTP layer refused before it reached a route."""
        self.rejections.labels(reason).inc()

    def record(self, event: str | None, outcome: str, seconds: float, reason: str | None = None) -> None:
        key = (event_label(event), outcome)
        children = self._children.get(key)
        if children is None:  # bounded: known events by the outcomes
            children = self._children[key] = (self.deliveries.labels(*key), self.latency.labels(outcome))
        children[0].inc()
        children[1].observe(seconds)
        if reason is not None:
            self.rejections.labels(reason).inc()
        if outcome == "unavailable":
            self.enqueue_failures.inc()
