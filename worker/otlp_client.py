"""One OTLP/HTTP export request and what its answer means for the outbox.

The OpenTelemetry exporter (``opentelemetry-exporter-otlp-proto-http``) retries inside one call and
answers only success or failure; the outbox must know each answer's status, its ``Retry-After``,
and the spans a collector rejected, and must bound each call under its lease. So the request is
made here, with the bounded transport of the worker's other outbound calls: at most
``traces.timeout_seconds`` for the whole answer, at most 1 MiB of it read. Header values are never
logged.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from shared.digits import ascii_digits
from shared.settings_outbound import TracesSettings, header_pairs
from worker.bounded_transport import BoundedTransport, Bounds

MAX_ANSWER_BYTES = 1024 * 1024
SPLIT = (400, 413)  # the request itself is refused: sent again in halves; any other failure waits


@dataclass(frozen=True)
class Answer:
    status: str  # "200", "503", ..., "timeout" or "connection"
    retry_after: float | None = None  # seconds, when the collector said
    rejected: int = 0  # spans a 2xx answer said it rejected (partial success)

    @property
    def ok(self) -> bool:
        return self.status.startswith("2")

    @property
    def refused(self) -> bool:
        """The request itself is refused (bad data or too large): sending it again will not help."""
        return self.status.isdigit() and int(self.status) in SPLIT


def retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now``: a number of seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if ascii_digits(value, 10):
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError):
        return None


def rejected_spans(content: bytes) -> int:
    """The spans an ExportTraceServiceResponse says were rejected (0 when it cannot be read)."""
    response = ExportTraceServiceResponse()
    try:
        response.ParseFromString(content)
    except Exception:
        return 0
    return int(response.partial_success.rejected_spans)


class OtlpClient:
    def __init__(self, settings: TracesSettings, inner: httpx.BaseTransport | None = None) -> None:
        if settings.otlp_endpoint is None:
            raise ValueError("traces.otlp_endpoint is not set")
        self._endpoint = settings.otlp_endpoint
        self._timeout = settings.timeout_seconds
        self._bounds = Bounds(MAX_ANSWER_BYTES, settings.timeout_seconds, deadline=0.0)
        verify: ssl.SSLContext | bool = True
        if settings.tls_ca_file:
            verify = ssl.create_default_context(cafile=settings.tls_ca_file)
        transport = BoundedTransport(self._bounds, inner or httpx.HTTPTransport(verify=verify))
        headers = {
            **(header_pairs(settings.headers) if settings.headers else {}),
            "Content-Type": "application/x-protobuf",
            "User-Agent": "gha-exporter",
        }
        self._client = httpx.Client(
            transport=transport, headers=headers, timeout=settings.timeout_seconds, follow_redirects=False
        )

    def send(self, body: bytes) -> Answer:
        """POST one ExportTraceServiceRequest; never raises for what the network or collector does."""
        self._bounds.deadline = time.monotonic() + self._timeout
        try:
            response = self._client.post(self._endpoint, content=body)
            content = response.read()
        except httpx.TimeoutException:
            return Answer("timeout")
        except httpx.HTTPError:
            return Answer("connection")
        status = str(response.status_code)
        if response.is_success:
            return Answer(status, rejected=rejected_spans(content))
        return Answer(status, retry_after(response.headers.get("retry-after"), time.time()))
