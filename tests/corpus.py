"""The payload corpus in tests/payloads, as GitHub would send each file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from receiver.intake import Accepted
from shared.envelope import Envelope

PAYLOADS = Path(__file__).parent / "payloads"
KRZKO = "grafana-ci-otel-collector/workflow_{}/{}.json"
SEQUENCE = [  # one real run (attempt 10), in the order GitHub delivered it
    KRZKO.format("job", "1_workflow_job_queued"),
    KRZKO.format("run", "2_workflow_run_in_progress"),
    KRZKO.format("job", "3_workflow_job_in_progress"),
    KRZKO.format("job", "4_workflow_job_queued"),
    KRZKO.format("job", "5_workflow_job_completed"),
    KRZKO.format("job", "6_workflow_job_in_progress"),
    KRZKO.format("run", "7_workflow_run_in_progress"),
    KRZKO.format("run", "8_workflow_run_completed"),
    KRZKO.format("job", "9_workflow_job_completed"),
]


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

    def accepted(self, delivery_id: str, hook_id: str = "hook", received_at: float = 1000.0) -> Accepted:
        """This payload as the receiver hands it to its intake, under ``delivery_id``."""
        return accepted(self.event, delivery_id, self.body, hook_id, received_at)


def accepted(
    event: str, delivery_id: str, body: bytes, hook_id: str = "hook", received_at: float = 1000.0
) -> Accepted:
    """A delivery as the receiver hands it to its intake: its envelope, its body for the mark."""
    return Accepted(Envelope(event, delivery_id, hook_id, received_at), body)


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


def run_copies(count: int) -> list[Delivery]:
    """``count`` copies of the real run ``SEQUENCE``, each with its own run and job ids, in order."""
    originals = [load(path) for path in SEQUENCE]
    copies = []
    for index in range(count):
        for original in originals:
            data = original.data
            if "workflow_job" in data:
                job = data["workflow_job"]
                job["id"] = job["id"] * 10_000 + index
                job["run_id"] = job["run_id"] * 10_000 + index
            else:
                data["workflow_run"]["id"] = data["workflow_run"]["id"] * 10_000 + index
            copies.append(Delivery(original.path, original.event, json.dumps(data).encode()))
    return copies
