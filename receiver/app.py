"""The receiver's ASGI application: ``POST /webhook`` (:mod:`receiver.webhook`, plain ASGI), and
``GET /health``, ``GET /ready``, ``GET /metrics`` and the lifespan, which are Starlette's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from loguru import logger
from prometheus_client.exposition import choose_encoder
from redis.exceptions import RedisError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from receiver.asgi import ASGIApp, Receive, Scope, Send
from receiver.group_commit import GroupCommit
from receiver.webhook import Services, Webhook

READY_SECONDS = 2.0
DATASET_SECONDS = 2.0


def build_app(services: Services, metrics_route: bool = True) -> ASGIApp:
    async def health(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def redis_problem() -> Exception | None:
        """Why Redis did not answer a PING, or None. Bounded: a partitioned Redis is a problem
        within READY_SECONDS."""
        try:
            await asyncio.wait_for(services.intake.ping(), READY_SECONDS)
        except (RedisError, TimeoutError) as exc:
            return exc
        return None

    async def ready(_request: Request) -> Response:
        if problem := await redis_problem():
            return PlainTextResponse(f"redis unavailable: {type(problem).__name__}", 503)
        headroom = services.intake.headroom
        if headroom is not None and (full := headroom.problem()):
            return PlainTextResponse(f"redis full: {full}", 503)
        return PlainTextResponse("ready")

    async def metrics(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        return Response(encoder(services.registry), headers={"content-type": content_type})

    commit = GroupCommit(services.intake.submit, services.max_batch, services.metrics.batch_size.observe)

    async def watch_dataset() -> None:
        """Redis's dataset epoch (shared.dataset), looked at every DATASET_SECONDS."""
        if services.dataset is None:
            return
        while True:
            with contextlib.suppress(RedisError, TimeoutError):  # unreachable: /ready and the 503s say so
                await asyncio.wait_for(services.dataset.acheck(services.intake.connection), READY_SECONDS)
            await asyncio.sleep(DATASET_SECONDS)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        commit.start()
        if services.intake.headroom is not None:
            services.intake.headroom.start()
        dataset = asyncio.get_running_loop().create_task(watch_dataset(), name="dataset-epoch")
        if problem := await redis_problem():
            reason = f"{type(problem).__name__}: {problem}".rstrip(": ")
            logger.warning("Redis not reachable yet ({}); the receiver answers 503 until it is", reason)
        logger.info("receiver ready")
        yield
        dataset.cancel()
        await asyncio.gather(dataset, return_exceptions=True)
        if services.intake.headroom is not None:
            await services.intake.headroom.stop()
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
