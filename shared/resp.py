"""Redis's wire format (RESP) for the receiver's one hot command, packed in one go; a reply's text.

redis-py packs a command argument by argument (an encoder call, a type check and a growing buffer
per argument: about 80 µs for the receiver's create call with its batch); this packs the same
bytes with one join. Values are encoded as redis-py encodes them: bytes and memoryviews as they
are, text as UTF-8, integers and floats as their decimal text (``repr`` for floats).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Value = bytes | memoryview | str | int | float


def text(value: bytes | str) -> str:
    """A reply's value as text (bytes from a connection without ``decode_responses``)."""
    return value.decode() if isinstance(value, bytes) else value


def encode(value: Value) -> bytes | memoryview:
    if isinstance(value, bytes | memoryview):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):  # an int, but redis-py refuses it: so do we
        raise TypeError("a bool is not a Redis value")
    if isinstance(value, int):
        return b"%d" % value
    if isinstance(value, float):
        return repr(value).encode()
    raise TypeError(f"not a Redis value: {type(value).__name__}")


def command(args: Iterable[Any]) -> bytes:
    """One command: an array of bulk strings."""
    parts: list[bytes | memoryview] = []
    count = 0
    for value in args:
        data = value if type(value) is bytes else encode(value)
        parts += (b"$%d\r\n" % len(data), data, b"\r\n")
        count += 1
    return b"*%d\r\n" % count + b"".join(parts)
