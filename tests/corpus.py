"""The payload corpus in tests/payloads, as GitHub would send each file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent / "payloads"


@dataclass(frozen=True)
class Delivery:
    path: Path
    event: str
    body: bytes

    @property
    def data(self) -> Any:
        return json.loads(self.body)

    @property
    def name(self) -> str:
        return str(self.path.relative_to(PAYLOADS))


def load(relative: str) -> Delivery:
    path = PAYLOADS / relative
    raw = path.read_bytes()
    data = json.loads(raw)
    event = path.parent.name
    if isinstance(data, dict) and set(data) == {"event", "payload"}:  # {event, payload} envelope upstream
        return Delivery(path, data["event"], json.dumps(data["payload"]).encode())
    return Delivery(path, event, raw)


def deliveries(event: str | None = None) -> list[Delivery]:
    found = [load(str(p.relative_to(PAYLOADS))) for p in sorted(PAYLOADS.glob("*/*/*.json"))]
    return [d for d in found if event is None or d.event == event]
