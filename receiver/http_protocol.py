"""The receiver's HTTP/1.1 connections: uvicorn's own protocol, with a hard cap on each request's
head (request line and headers) and every request uvicorn refuses by itself counted.

httptools puts no limit on a head: it gathers a header however long it grows, on the event loop,
so one client sending a 96 MB header stalled every other connection for seconds. Here the bytes
are handed to the parser in slices, and once more than ``limit`` bytes of one head have arrived
without its end the connection is answered 431 and closed, before the rest is even read. Exact for
one request per connection; with pipelined requests a head can reach twice the limit (the part
that shares a slice with the end of the previous request is not counted). h11, the parser uvicorn
falls back to when httptools is not installed, enforces the same limit itself
(``max_incomplete_event_size``); here its refusal is answered 431 as well.

Requests the parser refuses (a NUL or ESC in a header, bad framing) are answered 400 by uvicorn
as before, and now counted too. Neither kind reaches a route, so they are counted under
``webhook_rejections_total`` only, with no event.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Any

from loguru import logger
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADERS_TOO_LARGE = "headers_too_large"
MALFORMED_REQUEST = "malformed_request"
Refused = Callable[[str], None]  # the rejection reason, for the counter

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


def refuse_head(transport: asyncio.Transport, limit: int, refused: Refused) -> None:
    refused(HEADERS_TOO_LARGE)
    logger.info("refused a request whose head passed {} bytes (431)", limit)
    transport.write(TOO_LARGE_RESPONSE)
    transport.close()


def httptools_protocol(limit: int, refused: Refused) -> type[asyncio.Protocol]:
    # imported here: the module needs httptools, which may be absent (http_options then takes h11)
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol  # noqa: PLC0415

    class BoundedHttpTools(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_bytes = 0  # of the head being received, while _in_head
            self._in_head = True  # a connection starts with a head

        def data_received(self, data: bytes) -> None:
            while data:
                if self._in_head:
                    room = limit - self._head_bytes
                    if room <= 0:
                        refuse_head(self.transport, limit, refused)
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
            super().on_message_complete()

        def send_400_response(self, msg: str) -> None:
            refused(MALFORMED_REQUEST)
            super().send_400_response(msg)

    return BoundedHttpTools


def h11_protocol(limit: int, refused: Refused) -> type[asyncio.Protocol]:
    class BoundedH11(H11Protocol):
        def send_400_response(self, msg: str) -> None:
            # h11 refuses a head past max_incomplete_event_size with "Receive buffer too long";
            # what it holds then (more than the limit, no end of head) tells it from a malformed one.
            held = self.conn.trailing_data[0]
            if len(held) > limit and b"\r\n\r\n" not in held[: limit + 4]:
                refuse_head(self.transport, limit, refused)
                return
            refused(MALFORMED_REQUEST)
            super().send_400_response(msg)

    return BoundedH11


def http_options(limit: int, refused: Refused) -> dict[str, Any]:
    """The ``uvicorn.Config`` arguments: httptools when installed (as uvicorn's ``auto`` picks),
    else h11; never a protocol this module has not bounded."""
    if importlib.util.find_spec("httptools") is None:
        protocol = h11_protocol(limit, refused)
    else:
        protocol = httptools_protocol(limit, refused)
    return {"http": protocol, "h11_max_incomplete_event_size": limit}
