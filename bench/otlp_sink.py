"""An OTLP/HTTP traces endpoint on loopback for the tests and benchmarks: every request is decoded with
``opentelemetry-proto`` (the official schema) and its spans kept; it can be told to answer with a
status (and ``Retry-After``), to hang, or to refuse connections (stopped)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span

PATH = "/v1/traces"


@dataclass(frozen=True)
class Received:
    span: Span
    resource: dict[str, Any]

    @property
    def attributes(self) -> dict[str, Any]:
        return {a.key: value_of(a.value) for a in self.span.attributes}


def value_of(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [value_of(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


class Collector:
    """``decode``: keep every span (the tests); off, it only answers, as a collector elsewhere would
    cost the worker nothing (the benchmarks)."""

    def __init__(self, decode: bool = True, port: int = 0) -> None:
        self.decode = decode
        self.received: list[Received] = []
        self.statuses: Counter[int] = Counter()
        self.answers: list[tuple[int, dict[str, str]]] = []  # answered in turn before 200s
        self.refusing: tuple[int, dict[str, str]] | None = None  # answered to every request while set
        self.requests: list[float] = []  # when each request arrived (time.monotonic)
        self.hang = threading.Event()  # set: requests are held until cleared or the test ends
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{PATH}"

    def __enter__(self) -> Collector:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._released.is_set():
            return  # stopped already
        self._released.set()
        self._server.shutdown()
        self._server.server_close()

    def span_ids(self) -> Counter[bytes]:
        with self._lock:
            return Counter(r.span.span_id for r in self.received)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                collector.headers.append(dict(self.headers))
                collector.requests.append(time.monotonic())
                if collector.hang.is_set():
                    collector._released.wait(120)
                    return
                with collector._lock:
                    status, extra = collector.answers.pop(0) if collector.answers else (200, {})
                    if collector.refusing is not None:
                        status, extra = collector.refusing
                    collector.statuses[status] += 1
                    if status == 200 and collector.decode:
                        request = ExportTraceServiceRequest()
                        request.ParseFromString(body)
                        for resource_spans in request.resource_spans:
                            resource = {a.key: value_of(a.value) for a in resource_spans.resource.attributes}
                            for scope_spans in resource_spans.scope_spans:
                                collector.received += [Received(s, resource) for s in scope_spans.spans]
                answer = ExportTraceServiceResponse().SerializeToString() if status == 200 else b""
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        return Handler
