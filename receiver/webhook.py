"""``POST /webhook``: read the raw body up to the size limit, verify the signature, check the delivery
headers, and hand the delivery to the group commit. It never parses the JSON payload.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from dataclasses import dataclass
from urllib.parse import parse_qs

from loguru import logger
from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from receiver.asgi import Headers, Receive, Rejected, Scope, Send, header, headers_of, read_body, respond
from receiver.group_commit import GroupCommit
from receiver.headroom import RedisFull
from receiver.intake import Accepted, Admission, AsyncIntake
from receiver.metrics import ReceiverMetrics
from receiver.signature import rejection_reason
from shared.dataset import DatasetWatch
from shared.digits import MAX_HOOK_ID_DIGITS, ascii_digits
from shared.envelope import Envelope
from shared.logs import loggable
from shared.queueing import QUEUED_EVENTS
from shared.reloading import SettingsHolder

MAX_HEADER_VALUE = 200


@dataclass
class Services:
    """What the handlers need, built by the caller and swappable in tests."""

    holder: SettingsHolder
    intake: AsyncIntake
    metrics: ReceiverMetrics
    registry: CollectorRegistry
    max_batch: int = 100
    dataset: DatasetWatch | None = None  # Redis's dataset epoch, looked at every DATASET_SECONDS

    def secrets(self) -> tuple[bytes, ...]:
        return encoded(self.holder.current.webhook.secrets)


@functools.lru_cache(maxsize=4)
def encoded(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    """Secrets as bytes, computed once per configuration (reloads bring a new tuple)."""
    return tuple(s.encode("utf-8") for s in secrets)


def delivery_header(headers: Headers, name: bytes, reason: str) -> str:
    value = (header(headers, name) or "").strip()
    if not value:
        raise Rejected(400, reason)
    if len(value) > MAX_HEADER_VALUE or not value.isprintable() or not value.isascii():
        raise Rejected(400, "bad_header")
    return value


def hook_header(headers: Headers) -> str:
    """``X-GitHub-Hook-ID``: a number (GitHub's are), or absent. Taken as sent, never trimmed or cut,
    so that two different hooks can never share a delivery mark (:func:`shared.keys.mark`
    relies on it: a hook id holds no ``:``)."""
    value = header(headers, b"x-github-hook-id")
    if value is None or value == "":
        return ""
    if not ascii_digits(value, MAX_HOOK_ID_DIGITS):
        raise Rejected(400, "bad_header")
    return value


def json_payload(headers: Headers, body: bytes) -> bytes:
    """The JSON text: the body itself, or the ``payload`` field of a form body."""
    content_type = (header(headers, b"content-type") or "application/json").split(";")[0].strip().lower()
    if content_type == "application/json":
        return body
    if content_type == "application/x-www-form-urlencoded":
        # latin-1 maps each %XX to its byte: the payload's bytes reach the worker as sent, so invalid
        # UTF-8 is refused there as invalid_utf8, as the same bytes sent as JSON are
        try:
            text = body.decode("ascii")
            fields = parse_qs(text, strict_parsing=True, max_num_fields=50, encoding="latin-1")
        except (UnicodeDecodeError, ValueError):
            raise Rejected(400, "malformed_form") from None
        payload = fields.get("payload")
        if not payload or len(payload) != 1:
            raise Rejected(400, "malformed_form")
        return payload[0].encode("latin-1")
    raise Rejected(400, "unsupported_content_type")


def json_body(content: dict[str, str]) -> bytes:
    return json.dumps(content, separators=(",", ":")).encode()


QUEUED = json_body({"status": "queued"})
DUPLICATE = json_body({"status": "duplicate"})
PONG = json_body({"status": "pong"})
UNAVAILABLE = json_body({"status": "unavailable", "reason": "queue unavailable"})
FULL = json_body({"status": "unavailable", "reason": "queue full"})
FAILED = json_body({"status": "error"})
METHOD_NOT_ALLOWED = json_body({"status": "method not allowed"})


class Webhook:
    """``/webhook`` as plain ASGI."""

    def __init__(self, services: Services, commit: GroupCommit) -> None:
        self._services = services
        self._commit = commit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await respond(send, 405, METHOD_NOT_ALLOWED, ((b"allow", b"POST"),))
            return
        started = time.perf_counter()
        headers = headers_of(scope)
        event = header(headers, b"x-github-event")
        try:
            status, body, outcome = await self._handle(receive, headers, started)
        except Rejected as rejected:
            self._services.metrics.record(event, "rejected", time.perf_counter() - started, rejected.reason)
            logger.info(
                "refused delivery {}: {} ({})",
                loggable(header(headers, b"x-github-delivery")),
                rejected.reason,
                rejected.status,
            )
            await respond(send, rejected.status, json_body({"status": "rejected", "reason": rejected.reason}))
            return
        except Exception:  # a bug: answer 500 like any server, keep serving
            logger.exception("webhook handler failed")
            await respond(send, 500, FAILED)
            return
        self._services.metrics.record(event, outcome, time.perf_counter() - started)
        await respond(send, status, body)

    async def _handle(self, receive: Receive, headers: Headers, started: float) -> tuple[int, bytes, str]:
        services = self._services
        body = await read_body(receive, headers, services.holder.current.webhook.max_body_bytes)
        reason = rejection_reason(
            body,
            header(headers, b"x-hub-signature-256"),
            header(headers, b"x-hub-signature"),
            services.secrets(),
        )
        if reason is not None:
            raise Rejected(401, reason)
        event = delivery_header(headers, b"x-github-event", "missing_event_header")
        delivery_id = delivery_header(headers, b"x-github-delivery", "missing_delivery_header")
        hook_id = hook_header(headers)
        if event == "ping":
            return 200, PONG, "pong"
        if event not in QUEUED_EVENTS:
            return 202, json_body({"status": "ignored", "event": event}), "ignored"
        envelope = Envelope(event, delivery_id, hook_id, time.time())
        accepted = Accepted(envelope, json_payload(headers, body))
        left = services.holder.current.receiver.deadline_seconds - (time.perf_counter() - started)
        deadline = asyncio.get_running_loop().time() + left
        try:  # past the deadline the delivery is answered 503 (it may still reach Redis: see README)
            outcome = await self._commit.submit(accepted, deadline)
        except RedisFull:  # logged once when it began (receiver.headroom)
            return 503, FULL, "unavailable"
        except (RedisError, TimeoutError) as exc:
            logger.error("cannot queue delivery {}: {}: {}", delivery_id, type(exc).__name__, exc)
            return 503, UNAVAILABLE, "unavailable"
        if outcome is Admission.DUPLICATE:
            return 200, DUPLICATE, "duplicate"
        return 202, QUEUED, "queued"
