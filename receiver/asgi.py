"""The plain-ASGI plumbing of ``/webhook``: the types, reading headers and the body, answering.

``/webhook`` is plain ASGI because under a burst it is the receiver's whole job, and Starlette's
middleware and routing took about a fifth of its time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Mapping[bytes, bytes]  # lower-case names; the first of repeated headers wins


class Rejected(Exception):
    """A request refused with ``status``; ``reason`` is its label in the rejection counter."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def headers_of(scope: Scope) -> Headers:
    return dict(reversed(scope["headers"]))


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


async def respond(send: Send, status: int, body: bytes, extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
