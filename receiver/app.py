"""The receiver's ASGI application: ``POST /webhook``, ``GET /health``, ``GET /ready``, ``GET /metrics``.

``/webhook`` reads the raw body up to the size limit, verifies the signature, checks the delivery
headers, and hands the delivery to the group commit; it never parses the JSON payload. It is plain
ASGI: under a burst it is the receiver's whole job, and Starlette's middleware and routing took
about a fifth of its time. The other routes, and the lifespan, are Starlette's.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from receiver.group_commit import GroupCommit
from receiver.intake import Accepted, AsyncIntake, Outcome
from receiver.metrics import ReceiverMetrics
from receiver.signature import rejection_reason
from shared.envelope import Envelope
from shared.queueing import QUEUED_EVENTS
from shared.reloading import SettingsHolder

MAX_HEADER_VALUE = 200

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Mapping[bytes, bytes]  # lower-case names; the first of repeated headers wins


class Rejected(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Services:
    """What the handlers need, built by the caller and swappable in tests."""

    holder: SettingsHolder
    intake: AsyncIntake
    metrics: ReceiverMetrics
    registry: CollectorRegistry
    max_batch: int = 100

    def secrets(self) -> tuple[bytes, ...]:
        return encoded(self.holder.current.webhook.secrets)


@functools.lru_cache(maxsize=4)
def encoded(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    """Secrets as bytes, computed once per configuration (reloads bring a new tuple)."""
    return tuple(s.encode("utf-8") for s in secrets)


def header(headers: Headers, name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")


async def read_body(receive: Receive, headers: Headers, limit: int) -> bytes:
    """The raw body, refusing (413) past ``limit`` without reading the rest."""
    declared = header(headers, b"content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Rejected(400, "bad_content_length")
        if int(declared) > limit:
            raise Rejected(413, "too_large")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Rejected(400, "incomplete_body")  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Rejected(413, "too_large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def delivery_header(headers: Headers, name: bytes, reason: str) -> str:
    value = (header(headers, name) or "").strip()
    if not value:
        raise Rejected(400, reason)
    if len(value) > MAX_HEADER_VALUE or not value.isprintable() or not value.isascii():
        raise Rejected(400, "bad_header")
    return value


def json_payload(headers: Headers, body: bytes) -> bytes:
    """The JSON text: the body itself, or the ``payload`` field of a form body."""
    content_type = (header(headers, b"content-type") or "application/json").split(";")[0].strip().lower()
    if content_type == "application/json":
        return body
    if content_type == "application/x-www-form-urlencoded":
        try:
            fields = parse_qs(body.decode("ascii"), strict_parsing=True, max_num_fields=50)
        except (UnicodeDecodeError, ValueError):
            raise Rejected(400, "malformed_form") from None
        payload = fields.get("payload")
        if not payload or len(payload) != 1:
            raise Rejected(400, "malformed_form")
        return payload[0].encode("utf-8")
    raise Rejected(400, "unsupported_content_type")


def json_body(content: dict[str, str]) -> bytes:
    return json.dumps(content, separators=(",", ":")).encode()


QUEUED = json_body({"status": "queued"})
DUPLICATE = json_body({"status": "duplicate"})
PONG = json_body({"status": "pong"})
UNAVAILABLE = json_body({"status": "unavailable", "reason": "queue unavailable"})
FAILED = json_body({"status": "error"})
METHOD_NOT_ALLOWED = json_body({"status": "method not allowed"})


async def respond(send: Send, status: int, body: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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
        headers = dict(reversed(scope["headers"]))
        event = header(headers, b"x-github-event")
        try:
            status, body, outcome = await self._handle(receive, headers)
        except Rejected as rejected:
            self._services.metrics.record(event, "rejected", time.perf_counter() - started, rejected.reason)
            logger.info(
                "refused delivery {}: {} ({})",
                (header(headers, b"x-github-delivery") or "-")[:MAX_HEADER_VALUE],
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

    async def _handle(self, receive: Receive, headers: Headers) -> tuple[int, bytes, str]:
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
        hook_id = (header(headers, b"x-github-hook-id") or "").strip()[:MAX_HEADER_VALUE]
        if event == "ping":
            return 200, PONG, "pong"
        if event not in QUEUED_EVENTS:
            return 202, json_body({"status": "ignored", "event": event}), "ignored"
        envelope = Envelope(event, delivery_id, hook_id, time.time(), None)
        try:
            outcome = await self._commit.submit(Accepted(envelope, json_payload(headers, body)))
        except RedisError as exc:
            logger.error("cannot queue delivery {}: {}: {}", delivery_id, type(exc).__name__, exc)
            return 503, UNAVAILABLE, "unavailable"
        if outcome is Outcome.DUPLICATE:
            return 200, DUPLICATE, "duplicate"
        return 202, QUEUED, "queued"


def build_app(services: Services, metrics_route: bool = True) -> ASGIApp:
    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def ready(_request: Request) -> Response:
        try:
            await services.intake.ping()
        except RedisError as exc:
            return PlainTextResponse(f"redis unavailable: {type(exc).__name__}", 503)
        return PlainTextResponse("ready")

    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(services.registry), headers={"content-type": content_type})

    commit = GroupCommit(services.intake.submit, services.max_batch, services.metrics.batch_size.observe)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        commit.start()
        logger.info("receiver ready")
        yield
        await commit.stop()
        await services.intake.close()
        logger.info("receiver stopped")

    routes = [Route("/health", health, methods=["GET"]), Route("/ready", ready, methods=["GET"])]
    if metrics_route:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    others = Starlette(routes=routes, lifespan=lifespan)
    webhook = Webhook(services, commit)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/webhook":
            await webhook(scope, receive, send)
        else:
            await others(scope, receive, send)

    return app
