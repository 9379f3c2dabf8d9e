"""Spans in OTLP's protobuf wire format, written directly: the fields of ``opentelemetry-proto``'s
``Span``, ``ScopeSpans``, ``ResourceSpans`` and ``ExportTraceServiceRequest`` that the exporter
sets, by their field numbers in ``opentelemetry/proto/trace/v1/trace.proto``.

Written by hand for speed: through the SDK's span objects and its encoder a span took 66 us, as
``opentelemetry-proto`` messages 50 us (a message per attribute and value, each copied into its
parent), which cost the worker a quarter of its drain rate; here about 8 us. The tests decode every
request with ``opentelemetry-proto`` (the official schema).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SERVER = 2  # Span.SpanKind.SPAN_KIND_SERVER
INTERNAL = 1  # Span.SpanKind.SPAN_KIND_INTERNAL
STATUS_ERROR = 2  # Status.StatusCode.STATUS_CODE_ERROR


@dataclass(frozen=True)
class SpanData:
    trace_id: bytes  # 16 bytes
    span_id: bytes  # 8 bytes
    parent_span_id: bytes  # 8 bytes, or empty for a root
    name: str
    kind: int
    start: int  # nanoseconds since the epoch
    end: int
    attributes: Mapping[str, Any]  # text, whole number, bool, or list of text; None and "" left out
    links: Sequence[tuple[bytes, bytes]] = ()  # (trace id, span id)
    error: bool = False


_ONE_BYTE = [bytes((value,)) for value in range(128)]
_KEYS: dict[str, bytes] = {}  # an attribute's key, written (the same few dozen keys over and over)
# an attribute written, by (field, key, value): workflows, repositories, results, runners and
# labels repeat from span to span; forgotten all at once past MAX_KEPT
_WRITTEN: dict[tuple[int, str, Any], bytes] = {}
MAX_KEPT = 20_000


def _varint(value: int) -> bytes:
    if 0 <= value < 128:  # nearly every length and tag
        return _ONE_BYTE[value]
    value &= 0xFFFFFFFFFFFFFFFF  # int64 as protobuf writes it: two's complement
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tag(field: int, wire_type: int) -> bytes:
    return _ONE_BYTE[field << 3 | wire_type]  # fields 1 to 15


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _tag(field, 2) + _varint(len(payload)) + payload


def _any_value(value: Any) -> bytes:
    """An AnyValue: string_value (1), bool_value (2), int_value (3), array_value (5)."""
    if isinstance(value, bool):
        return _tag(2, 0) + (b"\x01" if value else b"\x00")
    if isinstance(value, int):
        return _tag(3, 0) + _varint(value)
    if isinstance(value, list):
        return _length_delimited(5, b"".join(_length_delimited(1, _any_value(item)) for item in value))
    return _length_delimited(1, str(value).encode())


def _key(key: str) -> bytes:
    written = _KEYS.get(key)
    if written is None:
        written = _KEYS[key] = _length_delimited(1, key.encode())
    return written


def _attribute(field: int, key: str, value: Any) -> bytes:
    kept = (field, key, tuple(value) if isinstance(value, list) else value)
    written = _WRITTEN.get(kept)
    if written is None:
        if len(_WRITTEN) >= MAX_KEPT:
            _WRITTEN.clear()
        written = _WRITTEN[kept] = _length_delimited(
            field, _key(key) + _length_delimited(2, _any_value(value))
        )
    return written


def attributes(found: Mapping[str, Any], field: int) -> bytes:
    """KeyValue entries (key 1, value 2) as repeated ``field``; None, "" and [] are left out."""
    return b"".join(
        _attribute(field, key, value)
        for key, value in found.items()
        if value is not None and value not in ("", [])
    )


def span(data: SpanData) -> bytes:
    """A Span message: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, start 7, end 8
    (fixed64), attributes 9, links 13 (trace_id 1, span_id 2), status 15 (code 3)."""
    parts = [_length_delimited(1, data.trace_id), _length_delimited(2, data.span_id)]
    if data.parent_span_id:
        parts.append(_length_delimited(4, data.parent_span_id))
    parts += [
        _length_delimited(5, data.name.encode()),
        _tag(6, 0) + _varint(data.kind),
        _tag(7, 1) + struct.pack("<Q", data.start),
        _tag(8, 1) + struct.pack("<Q", data.end),
        attributes(data.attributes, 9),
    ]
    parts += [_length_delimited(13, _length_delimited(1, trace) + _length_delimited(2, linked))
              for trace, linked in data.links]  # fmt: skip
    if data.error:
        parts.append(_length_delimited(15, _tag(3, 0) + _varint(STATUS_ERROR)))
    return b"".join(parts)


def request(resource: Mapping[str, Any], scope: str, spans: Iterable[bytes]) -> bytes:
    """An ExportTraceServiceRequest (resource_spans 1) of one ResourceSpans (resource 1 with its
    attributes 1, scope_spans 2) of one ScopeSpans (scope 1 with its name 1, spans 2)."""
    scope_spans = _length_delimited(1, _length_delimited(1, scope.encode()))
    scope_spans += b"".join(_length_delimited(2, each) for each in spans)
    resource_spans = _length_delimited(1, attributes(resource, 1)) + _length_delimited(2, scope_spans)
    return _length_delimited(1, resource_spans)
