"""HTTP/1.1 connections under uvicorn, bounded against slow and greedy clients: uvicorn's own
protocol (httptools, or h11 when httptools is absent) with three bounds uvicorn lacks, and every
request refused before a route counted. Both processes serve through it: the receiver's
``/webhook`` and the worker's ``/metrics``, ``/health``, page and API.

- **A head's size.** httptools puts no limit on a head: it gathers a header however long it grows,
  on the event loop, so one client sending a 96 MB header stalled every other connection for
  seconds. The bytes are handed to the parser in slices, and once more than ``max_header_bytes`` of
  one head have arrived without its end the connection is answered 431 and closed, before the rest
  is even read. Exact for one request per connection; with pipelined requests a head can reach
  twice the limit (the part that shares a slice with the end of the previous request is not
  counted). h11 enforces the same limit itself (``max_incomplete_event_size``); its refusal is
  answered 431 as well.
- **A request's time.** uvicorn waits for a head, and for a body, as long as a client trickles it,
  and for a connection that sends nothing at all: 25 connections announcing 1,000 bytes and sending
  2 held the receiver's slots for good. Here a request must arrive whole (head and body) within
  ``request_seconds`` of its first byte (of the connection, for its first request); past it the
  connection is closed (``slow_request``). GitHub sends a delivery at once; Prometheus sends a head.
- **Connections.** Each connection holds a descriptor; 3,000 slowloris connections against a
  300-descriptor limit left none for ``/health``. At most ``max_connections`` are kept (never more
  than the descriptor limit, less a reserve): a new connection past it closes the connection that
  has waited longest without a request in progress (a head or body still arriving, or idle between
  requests) (``shed``). A request being answered is never shed; when every connection is answering
  one, uvicorn answers the new request 503.

Requests the parser refuses (a NUL or ESC in a header, bad framing) are answered 400 by uvicorn
as before, and counted (``malformed_request``).
"""

from __future__ import annotations

import asyncio
import importlib.util
import resource
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import h11
from loguru import logger
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADERS_TOO_LARGE = "headers_too_large"
MALFORMED_REQUEST = "malformed_request"
SLOW_REQUEST = "slow_request"
SHED = "shed"
REASONS = (HEADERS_TOO_LARGE, MALFORMED_REQUEST, SLOW_REQUEST, SHED)
Refused = Callable[[str], None]  # the refusal's reason, for a counter

DESCRIPTOR_RESERVE = 32  # kept for Redis, logs and the listening socket when the limit is low

TOO_LARGE_MESSAGE = b"Request header fields too large."
TOO_LARGE_RESPONSE = b"".join(
    [
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        b"content-type: text/plain; charset=utf-8\r\n",
        b"content-length: " + str(len(TOO_LARGE_MESSAGE)).encode() + b"\r\n",
        b"connection: close\r\n\r\n",
        TOO_LARGE_MESSAGE,
    ]
)


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 16 * 1024
    request_seconds: float = 10.0  # from a request's first byte to its body's last
    max_connections: int = 1000


def connection_cap(wanted: int) -> int:
    """``wanted``, or fewer when the process may not open that many descriptors (with the slack
    of :func:`busy_limit` on top)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, (soft - DESCRIPTOR_RESERVE) * 20 // 21))


def busy_limit(cap: int) -> int:
    """uvicorn's own concurrency limit for a connection cap: past it uvicorn answers 503. A little
    above the cap: a shed connection's request, and one just answered, stay counted among uvicorn's
    tasks for a moment after their connection is gone (at the cap itself, 1 delivery in 90 beside
    1,200 slow bodies was answered 503)."""
    return cap + max(8, cap // 20)


class Bounded:
    """What every connection of one server shares: the limits, the refusal counter, and the
    connections without a request in progress, longest waiting first."""

    def __init__(self, limits: HttpLimits, refused: Refused) -> None:
        self.limits = limits
        self.refused = refused
        self.cap = connection_cap(limits.max_connections)
        self.waiting: dict[Any, None] = {}  # insertion order: the longest waiting first

    def refuse_head(self, transport: asyncio.Transport) -> None:
        self.refused(HEADERS_TOO_LARGE)
        logger.info("refused a request whose head passed {} bytes (431)", self.limits.max_header_bytes)
        transport.write(TOO_LARGE_RESPONSE)
        transport.close()


class _Bounds(asyncio.Protocol):
    """The request deadline and the connection cap, mixed into uvicorn's two protocols. The
    protocol calls :meth:`_arrived` for each piece of data, :meth:`_received` once a request arrived
    whole, :meth:`_answered` once it was answered; the connection's start and end are seen here."""

    bounds: Bounded
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    connections: set[Any]
    _deadline: asyncio.TimerHandle | None = None
    _in_request = False  # received whole and being answered

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._opened()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed()
        super().connection_lost(exc)

    def _opened(self) -> None:
        self._arm()
        self.bounds.waiting[self] = None
        if len(self.connections) > self.bounds.cap:
            victim = next(iter(self.bounds.waiting))
            if victim is not self:  # else every other one is being answered: uvicorn answers 503
                victim._drop(SHED)

    def _arrived(self) -> None:
        if self._deadline is None and not self._in_request:
            self._arm()  # the first byte of a head after an idle keep-alive

    def _received(self) -> None:
        self._in_request = True
        self.bounds.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _answered(self) -> None:
        if not self.transport.is_closing():
            self._in_request = False
            self.bounds.waiting[self] = None

    def _closed(self) -> None:
        self.bounds.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.bounds.limits.request_seconds, self._drop, SLOW_REQUEST)

    def _drop(self, reason: str) -> None:
        self._closed()
        self.connections.discard(self)  # no longer counted against the cap (uvicorn's own set)
        if not self.transport.is_closing():
            self.bounds.refused(reason)
            self.transport.close()


def httptools_protocol(limits: HttpLimits, refused: Refused) -> type[asyncio.Protocol]:
    # imported here: the module needs httptools, which may be absent (http_options then takes h11)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415

    shared = Bounded(limits, refused)
    limit = limits.max_header_bytes

    class BoundedHttpTools(_Bounds, HttpToolsProtocol):
        bounds = shared

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_bytes = 0  # of the head being received, while _in_head
            self._in_head = True  # a connection starts with a head

        def data_received(self, data: bytes) -> None:
            self._arrived()
            while data:
                if self._in_head:
                    room = limit - self._head_bytes
                    if room <= 0:
                        self._closed()
                        shared.refuse_head(self.transport)
                        return
                    self._head_bytes += min(room, len(data))
                else:
                    room = limit  # a body: the slice bounds what a pipelined head can add unseen
                piece, data = data[:room], data[room:]
                super().data_received(piece)
                if self.transport.is_closing():
                    return

        def on_headers_complete(self) -> None:
            self._in_head, self._head_bytes = False, 0
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._in_head = True
            self._received()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._answered()

        def send_400_response(self, msg: str) -> None:
            refused(MALFORMED_REQUEST)
            super().send_400_response(msg)

    return BoundedHttpTools


def h11_protocol(limits: HttpLimits, refused: Refused) -> type[asyncio.Protocol]:
    shared = Bounded(limits, refused)
    limit = limits.max_header_bytes

    class BoundedH11(_Bounds, H11Protocol):
        bounds = shared

        def data_received(self, data: bytes) -> None:
            self._arrived()
            super().data_received(data)

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY) and not self._in_request:
                self._received()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._answered()

        def send_400_response(self, msg: str) -> None:
            # h11 refuses a head past max_incomplete_event_size with "Receive buffer too long";
            # what it holds then (more than the limit, no end of head) tells it from a malformed one.
            held = self.conn.trailing_data[0]
            if len(held) > limit and b"\r\n\r\n" not in held[: limit + 4]:
                self._closed()
                shared.refuse_head(self.transport)
                return
            refused(MALFORMED_REQUEST)
            super().send_400_response(msg)

    return BoundedH11


def http_options(limits: HttpLimits, refused: Refused) -> dict[str, Any]:
    """The ``uvicorn.Config`` arguments: httptools when installed (as uvicorn's ``auto`` picks),
    else h11; never a protocol this module has not bounded. uvicorn's own concurrency limit is a
    little past the connection cap (:func:`busy_limit`): it answers 503 only when no connection
    could be shed."""
    if importlib.util.find_spec("httptools") is None:
        protocol = h11_protocol(limits, refused)
    else:
        protocol = httptools_protocol(limits, refused)
    return {
        "http": protocol,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        "limit_concurrency": busy_limit(connection_cap(limits.max_connections)),
    }
