"""What the receiver queues for each accepted delivery, and how it travels as JSON.

A delivery's body is kept as text exactly as signed. Bytes that are not UTF-8 survive the JSON
round trip through ``surrogateescape``; the worker reports such a body as unreadable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class EnvelopeError(ValueError):
    """A queued item that is not an envelope."""


@dataclass(frozen=True)
class Envelope:
    event: str
    delivery_id: str
    hook_id: str
    received_at: float  # Unix time at the receiver
    body: str  # the JSON payload as received

    @classmethod
    def from_bytes(
        cls, event: str, delivery_id: str, hook_id: str, received_at: float, body: bytes
    ) -> Envelope:
        return cls(event, delivery_id, hook_id, received_at, body.decode("utf-8", "surrogateescape"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "delivery_id": self.delivery_id,
            "hook_id": self.hook_id,
            "received_at": self.received_at,
            "body": self.body,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        if not isinstance(data, dict):
            raise EnvelopeError(f"envelope must be an object, got {type(data).__name__}")
        try:
            event, delivery_id, hook_id = data["event"], data["delivery_id"], data["hook_id"]
            received_at, body = data["received_at"], data["body"]
        except KeyError as exc:
            raise EnvelopeError(f"envelope lacks {exc.args[0]!r}") from None
        if not all(isinstance(v, str) for v in (event, delivery_id, hook_id, body)):
            raise EnvelopeError("envelope fields event, delivery_id, hook_id and body must be strings")
        if isinstance(received_at, bool) or not isinstance(received_at, int | float):
            raise EnvelopeError("envelope field received_at must be a number")
        return cls(event, delivery_id, hook_id, float(received_at), body)

    def body_bytes(self) -> bytes:
        return self.body.encode("utf-8", "surrogateescape")
