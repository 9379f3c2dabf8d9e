"""The read-only HTTP server of both processes' metrics port: ``/metrics`` (Prometheus text, or
OpenMetrics when asked; gzipped when the scraper accepts it), ``/health`` and further GET routes
(the worker's page and API): Starlette under uvicorn, in a thread of its own. The worker's, and
the receiver's when its metrics are served apart from ``/webhook`` (``receiver.metrics_port``).

Its connections are bounded like the receiver's (:mod:`shared.http_protocol`: head size, request
time, connection cap); it answers GET and HEAD only (405 otherwise), only the ``Host`` names it is
given when it is given any (400 otherwise: a page cannot read the API through DNS rebinding), and
every answer says ``X-Content-Type-Options: nosniff``. A refusal is counted by reason.

The body of ``/metrics`` is sent as it is made, chunk by chunk (and compressed that way), made in
a thread of the pool so a scrape waiting for Redis holds no other request.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route as Path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http_protocol import HttpLimits, Refused, http_options

Render = Callable[[str], tuple[Iterable[bytes], str]]  # Accept header -> body in chunks, content type
# more paths a component serves (the worker's API): query parameters -> status, body, headers
Route = Callable[[Mapping[str, str]], tuple[int, bytes, Mapping[str, str]]]

METHOD_NOT_ALLOWED = "method_not_allowed"
HOST_NOT_ALLOWED = "host_not_allowed"
ROUTE_REASONS = (METHOD_NOT_ALLOWED, HOST_NOT_ALLOWED)
METHODS = ("GET", "HEAD")
KEEP_ALIVE_SECONDS = 5
STOP_SECONDS = 2  # requests in flight when the server stops get this long
DEFAULT_LIMITS = HttpLimits(max_connections=100)


def registry_render(registry: CollectorRegistry) -> Render:
    """prometheus_client's own exposition of a registry, in the format the scraper asks for."""

    def render(accept: str) -> tuple[Iterable[bytes], str]:
        encoder, content_type = choose_encoder(accept)
        return [encoder(registry)], content_type

    return render


def refusal_counter(registry: CollectorRegistry, prefix: str, reasons: Sequence[str]) -> Refused:
    """``http_refusals_total{reason}`` on ``registry`` (every reason at 0 from the start)."""
    counter = Counter(
        f"{prefix}http_refusals",
        "Requests and connections the HTTP server refused before a route, by reason.",
        ["reason"],
        registry=registry,
    )
    for reason in reasons:
        counter.labels(reason)
    return lambda reason: counter.labels(reason).inc()


def gzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` compressed as one gzip stream, as they come (level 1: 100k series are 18 MB)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    for chunk in chunks:
        if out := compressor.compress(chunk):
            yield out
    yield compressor.flush()


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header takes gzip: named (or ``*``) with a quality above 0
    (``gzip;q=0`` refuses it)."""
    for part in accept_encoding.lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() not in ("gzip", "*"):
            continue
        quality = params.strip().removeprefix("q=")
        try:
            return not params.strip() or float(quality) > 0
        except ValueError:
            return False
    return False


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether a ``Host`` header names one of ``allowed`` (``name`` matches it on any port), or is
    an IP address: DNS rebinding sends the attacker's name, never an address, and Prometheus and
    the kubelet reach a pod by its address."""
    host = host.strip().lower()
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    try:
        ipaddress.ip_address(name.removeprefix("[").removesuffix("]"))
    except ValueError:
        return any(entry.lower() in (host, name) for entry in allowed)
    return True


class Guard:
    """Before any route: GET and HEAD only, the allowed hosts only; nosniff on every answer."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str], refused: Refused) -> None:
        self._app = app
        self._allowed = tuple(allowed_hosts)
        self._refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-content-type-options"
                ]
                message = {**message, "headers": [*headers, (b"x-content-type-options", b"nosniff")]}
            await send(message)

        refusal: Response | None = None
        if scope["method"] not in METHODS:
            self._refused(METHOD_NOT_ALLOWED)
            refusal = PlainTextResponse("method not allowed", 405, {"Allow": ", ".join(METHODS)})
        elif self._allowed:
            host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
            if not host_allowed(host, self._allowed):
                self._refused(HOST_NOT_ALLOWED)
                refusal = PlainTextResponse("host not allowed", 400)
        if refusal is not None:
            await refusal(scope, receive, send_nosniff)
            return
        await self._app(scope, receive, send_nosniff)


def make_app(
    render: Render,
    healthy: Callable[[], bool],
    routes: Mapping[str, Route] | None = None,
    *,
    allowed_hosts: Sequence[str] = (),
    refused: Refused = lambda _reason: None,
) -> ASGIApp:
    async def metrics(request: Request) -> Response:
        body, content_type = render(request.headers.get("accept", ""))
        headers = {}
        if accepts_gzip(request.headers.get("accept-encoding", "")):
            body, headers["Content-Encoding"] = gzipped(body), "gzip"
        return StreamingResponse(iter(body), headers=headers, media_type=content_type)

    async def health(_request: Request) -> Response:
        ok = healthy()
        return PlainTextResponse("ok" if ok else "stopping", 200 if ok else 503)

    async def not_found(_request: Request, _exc: Exception) -> Response:
        return PlainTextResponse("not found: try /metrics or /health", 404)

    def serve(route: Route) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            query = dict(request.query_params.multi_items())  # a repeated parameter: its last value
            status, body, headers = await run_in_threadpool(route, query)
            return Response(body, status, dict(headers))

        return endpoint

    paths = [Path(path, serve(route), methods=list(METHODS)) for path, route in (routes or {}).items()]
    paths += [
        Path("/metrics", metrics, methods=list(METHODS)),
        Path("/health", health, methods=list(METHODS)),
    ]
    app = Starlette(routes=paths, exception_handlers={404: not_found})
    return Guard(app, allowed_hosts, refused)


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (``OSError`` if it cannot): connections wait in its
    backlog until the server's loop accepts them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


class HttpServer:
    def __init__(
        self,
        host: str,
        port: int,
        render: Render,
        healthy: Callable[[], bool],
        routes: Mapping[str, Route] | None = None,
        *,
        limits: HttpLimits = DEFAULT_LIMITS,
        allowed_hosts: Sequence[str] = (),
        refused: Refused = lambda _reason: None,
    ) -> None:
        backlog = max(128, limits.max_connections * 2)
        self._socket = listening_socket(host, port, backlog)
        config = uvicorn.Config(
            make_app(render, healthy, routes, allowed_hosts=allowed_hosts, refused=refused),
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            lifespan="off",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=STOP_SECONDS,
            backlog=backlog,
            **http_options(limits, refused),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="metrics-http", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=STOP_SECONDS + 3)
        self._socket.close()
