"""A small HTTP server for ``/metrics`` (Prometheus text, or OpenMetrics when asked; gzipped when
the scraper accepts it) and ``/health``, in a background thread: the worker's, and the receiver's
when its metrics are served apart from ``/webhook`` (``receiver.metrics_port``).

The body is sent as it is made, chunk by chunk (and compressed that way), with no Content-Length:
the connection's end marks the body's (HTTP/1.0, as Prometheus expects of a simple exporter).
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder

StartResponse = Callable[..., Any]
Render = Callable[[str], tuple[Iterable[bytes], str]]  # Accept header -> body in chunks, content type
# more paths a component serves (the worker's API): query parameters -> status, body, headers
Route = Callable[[Mapping[str, str]], tuple[int, bytes, Mapping[str, str]]]


def registry_render(registry: CollectorRegistry) -> Render:
    """prometheus_client's own exposition of a registry, in the format the scraper asks for."""

    def render(accept: str) -> tuple[Iterable[bytes], str]:
        encoder, content_type = choose_encoder(accept)
        return [encoder(registry)], content_type

    return render


def gzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """``chunks`` compressed as one gzip stream, as they come (level 1: 100k series are 18 MB)."""
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip header and trailer
    for chunk in chunks:
        if out := compressor.compress(chunk):
            yield out
    yield compressor.flush()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not worth a log line each."""


def make_app(
    render: Render, healthy: Callable[[], bool], routes: Mapping[str, Route] | None = None
) -> Callable[..., Iterable[bytes]]:
    routes = routes or {}

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path in routes:
            query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
            status, answer, answer_headers = routes[path](query)
            start_response(f"{status} {HTTPStatus(status).phrase}", list(answer_headers.items()))
            return [answer]
        if path == "/metrics":
            body, content_type = render(environ.get("HTTP_ACCEPT", ""))
            headers = [("Content-Type", content_type)]
            if "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
                body = gzipped(body)
                headers.append(("Content-Encoding", "gzip"))
            start_response("200 OK", headers)
            return body
        if path == "/health":
            ok = healthy()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok" if ok else b"stopping"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found: try /metrics or /health"]

    return app


class MetricsServer:
    def __init__(
        self,
        host: str,
        port: int,
        render: Render,
        healthy: Callable[[], bool],
        routes: Mapping[str, Route] | None = None,
    ) -> None:
        self._server = make_server(
            host, port, make_app(render, healthy, routes), ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
