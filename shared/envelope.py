"""What the receiver queues for each accepted delivery, and how it travels as JSON in a batch.

The envelope says which delivery it is and when the receiver took it; the body, exactly as signed,
is in the delivery's mark (:mod:`shared.marks`), written in the same script as the batch, so the job
stays small (RQ compresses and JSON-encodes its data, which cost the receiver a fifth of its time
with 12 KB bodies when the bodies travelled in it).
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

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "delivery_id": self.delivery_id,
            "hook_id": self.hook_id,
            "received_at": self.received_at,
        }

    @classmethod
    def from_dict(cls, data: Any) -> Envelope:
        if not isinstance(data, dict):
            raise EnvelopeError(f"envelope must be an object, got {type(data).__name__}")
        try:
            event, delivery_id, hook_id = data["event"], data["delivery_id"], data["hook_id"]
            received_at = data["received_at"]
        except KeyError as exc:
            raise EnvelopeError(f"envelope lacks {exc.args[0]!r}") from None
        if not all(isinstance(v, str) for v in (event, delivery_id, hook_id)):
            raise EnvelopeError("envelope fields event, delivery_id and hook_id must be strings")
        if isinstance(received_at, bool) or not isinstance(received_at, int | float):
            raise EnvelopeError("envelope field received_at must be a number")
        return cls(event, delivery_id, hook_id, float(received_at))
