"""How a queued body is kept in its delivery mark: LZ4-compressed (frame format), or as signed.

A backlog waits in Redis: a queued real-shaped delivery of about 12 KB took 12.8 KB of Redis as
signed (1.28 GB per 100,000), 3.2 KB compressed with LZ4, which takes about 10 us of the receiver's
CPU per body (zlib at its fastest: 64-85 us for a sixth of the size). Sending a fifth of the bytes
to Redis more than pays for it: the receiver answered more deliveries per second at 64 connections
with compression than without (README, Benchmarks, "Backlog"). The receiver packs when
``queue.compress_bodies`` is on (the default); the worker unpacks whatever it finds, so receivers
of either setting, or of a version before it, can share a queue: an LZ4 frame starts with its magic
number, which no JSON or form body does.
"""

from __future__ import annotations

import lz4.frame  # type: ignore[import-untyped]

LZ4_MAGIC = b"\x04\x22\x4d\x18"


class UnreadableBody(ValueError):
    """A stored body that says it is an LZ4 frame but does not decompress."""


def pack(body: bytes) -> bytes:
    return bytes(lz4.frame.compress(body))


def unpack(stored: bytes) -> bytes:
    """The body as signed, from what a mark holds."""
    if not stored.startswith(LZ4_MAGIC):
        return stored
    try:
        return bytes(lz4.frame.decompress(stored))
    except RuntimeError as exc:
        raise UnreadableBody(str(exc)) from exc
