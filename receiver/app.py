"""The Starlette application: ``POST /webhook``, ``GET /health``, ``GET /ready``, ``GET /metrics``.

``/webhook`` reads the raw body up to the size limit, verifies the signature, checks the delivery
headers, and hands the delivery to the intake; it never parses the JSON payload.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import parse_qs

from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from receiver.group_commit import GroupCommit
from receiver.intake import AsyncIntake, Outcome
from receiver.metrics import ReceiverMetrics
from receiver.signature import rejection_reason
from shared.envelope import Envelope
from shared.queueing import QUEUED_EVENTS
from shared.reloading import SettingsHolder

MAX_HEADER_VALUE = 200


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


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) past ``limit`` without reading the rest."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Rejected(400, "bad_content_length")
        if int(declared) > limit:
            raise Rejected(413, "too_large")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Rejected(413, "too_large")
            chunks.append(chunk)
    except ClientDisconnect:
        raise Rejected(400, "incomplete_body") from None
    return b"".join(chunks)


def delivery_header(request: Request, name: str, reason: str) -> str:
    value = request.headers.get(name, "").strip()
    if not value:
        raise Rejected(400, reason)
    if len(value) > MAX_HEADER_VALUE or not value.isprintable() or not value.isascii():
        raise Rejected(400, "bad_header")
    return value


def json_payload(request: Request, body: bytes) -> bytes:
    """The JSON text: the body itself, or the ``payload`` field of a form body."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
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


def build_app(services: Services, metrics_route: bool = True) -> Starlette:
    async def webhook(request: Request) -> Response:
        started = time.perf_counter()
        event = request.headers.get("x-github-event")
        try:
            response, outcome = await handle_delivery(request)
        except Rejected as rejected:
            services.metrics.record(event, "rejected", time.perf_counter() - started, rejected.reason)
            logger.info(
                "refused delivery {}: {} ({})",
                request.headers.get("x-github-delivery", "-")[:MAX_HEADER_VALUE],
                rejected.reason,
                rejected.status,
            )
            return JSONResponse({"status": "rejected", "reason": rejected.reason}, rejected.status)
        services.metrics.record(event, outcome, time.perf_counter() - started)
        return response

    async def handle_delivery(request: Request) -> tuple[Response, str]:
        webhook_settings = services.holder.current.webhook
        body = await read_body(request, webhook_settings.max_body_bytes)
        reason = rejection_reason(
            body,
            request.headers.get("x-hub-signature-256"),
            request.headers.get("x-hub-signature"),
            services.secrets(),
        )
        if reason is not None:
            raise Rejected(401, reason)
        event = delivery_header(request, "x-github-event", "missing_event_header")
        delivery_id = delivery_header(request, "x-github-delivery", "missing_delivery_header")
        hook_id = request.headers.get("x-github-hook-id", "").strip()[:MAX_HEADER_VALUE]
        if event == "ping":
            return JSONResponse({"status": "pong"}, 200), "pong"
        if event not in QUEUED_EVENTS:
            return JSONResponse({"status": "ignored", "event": event}, 202), "ignored"
        envelope = Envelope.from_bytes(event, delivery_id, hook_id, time.time(), json_payload(request, body))
        try:
            outcome = await commit.submit(envelope)
        except RedisError as exc:
            logger.error("cannot queue delivery {}: {}: {}", delivery_id, type(exc).__name__, exc)
            return JSONResponse({"status": "unavailable", "reason": "queue unavailable"}, 503), "unavailable"
        if outcome is Outcome.DUPLICATE:
            return JSONResponse({"status": "duplicate"}, 200), "duplicate"
        return JSONResponse({"status": "queued"}, 202), "queued"

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

    routes = [
        Route("/webhook", webhook, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
    ]
    if metrics_route:
        routes.append(Route("/metrics", metrics, methods=["GET"]))
    return Starlette(routes=routes, lifespan=lifespan)
