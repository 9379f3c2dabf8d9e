"""The HTTP transport of the worker's outbound calls (the reconciler's GitHub client, the traces'
export), bounded by what it reads: an answer is read whole within its timeout (httpx's own timeout
is per read: an answer trickling a byte a second never ends), at most ``max_bytes`` of it (one
answer of 200 MB took the worker to 1.3 GB), and no request starts past the deadline (the
reconciliation pass's, ``github.pass_timeout_seconds``).

Imported only when reconciliation or traces are on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from shared.digits import ascii_digits


class ResponseTooLarge(httpx.TransportError):
    """An answer longer than the bound: not read further."""


class PassOver(httpx.TransportError):
    """The pass's deadline passed: no further request."""


@dataclass
class Bounds:
    max_bytes: int
    request_seconds: float
    deadline: float  # time.monotonic() when the pass must stop


class BoundedTransport(httpx.BaseTransport):
    def __init__(self, bounds: Bounds, inner: httpx.BaseTransport | None = None) -> None:
        self._bounds = bounds
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        bounds = self._bounds
        now = time.monotonic()
        if now >= bounds.deadline:
            raise PassOver("the pass's deadline passed", request=request)
        until = min(now + bounds.request_seconds, bounds.deadline)
        response = self._inner.handle_request(request)
        declared = response.headers.get("content-length", "")
        # as many digits as int() reads (4,300); anything else is left to the stream's count
        if ascii_digits(declared, 4300) and int(declared) > bounds.max_bytes:
            response.close()
            raise ResponseTooLarge(
                f"an answer of {declared} bytes (at most {bounds.max_bytes})", request=request
            )
        stream = _BoundedStream(response.stream, bounds.max_bytes, until, request)  # type: ignore[arg-type]
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=stream,
            extensions=response.extensions,
            request=request,
        )

    def close(self) -> None:
        self._inner.close()


class _BoundedStream(httpx.SyncByteStream):
    def __init__(
        self, inner: httpx.SyncByteStream, max_bytes: int, until: float, request: httpx.Request
    ) -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self._until = until
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        size = 0
        for chunk in self._inner:
            size += len(chunk)
            if size > self._max_bytes:
                raise ResponseTooLarge(f"an answer past {self._max_bytes} bytes", request=self._request)
            if time.monotonic() > self._until:
                raise httpx.ReadTimeout("the answer was not read whole in time", request=self._request)
            yield chunk

    def close(self) -> None:
        self._inner.close()
