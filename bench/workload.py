"""Real-shaped deliveries for the benchmarks: copies of a real run (a workflow_run and two jobs,
nine deliveries), each copy with its own ids and one of ten repositories."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from receiver.intake import Accepted
from shared.envelope import Envelope

SAMPLES = Path(__file__).resolve().parent.parent / "stack" / "samples"


def originals() -> list[tuple[str, dict[str, Any]]]:
    paths = sorted(SAMPLES.glob("*.json"), key=lambda p: int(p.name.split("-")[0]))
    return [(path.name.split("-")[1], json.loads(path.read_text())) for path in paths]


def deliveries(runs: int, repositories: int = 10) -> list[tuple[str, bytes]]:
    """``runs`` copies of the real run, in GitHub's order: (event, body) pairs."""
    base = originals()
    out = []
    for index in range(runs):
        for event, original in base:
            data = json.loads(json.dumps(original))
            data["repository"]["full_name"] = f"bench-org/repo-{index % repositories}"
            obj = data.get("workflow_job") or data["workflow_run"]
            obj["id"] = obj["id"] * 1_000_000 + index
            if "run_id" in obj:
                obj["run_id"] = obj["run_id"] * 1_000_000 + index
            out.append((event, json.dumps(data).encode()))
    return out


def envelopes(runs: int, prefix: str = "bench") -> list[Envelope]:
    now = time.time()
    return [
        Envelope.from_bytes(event, f"{prefix}-{i}", "bench", now, body)
        for i, (event, body) in enumerate(deliveries(runs))
    ]


def accepted(runs: int, prefix: str = "bench") -> list[Accepted]:
    """As the receiver hands them to its intake: bodiless envelopes, the bodies for the marks."""
    now = time.time()
    return [
        Accepted(Envelope(event, f"{prefix}-{i}", "bench", now, None), body)
        for i, (event, body) in enumerate(deliveries(runs))
    ]
