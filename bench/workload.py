"""Real-shaped deliveries for the benchmarks: copies of a real run (a workflow_run and two jobs,
nine deliveries), each copy with its own ids and one of ten repositories; in GitHub's order, shuffled,
or as a storm of deliveries of one job followed by many distinct jobs (:data:`WORKLOADS`)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis import Redis

from receiver.intake import Accepted, Intake
from shared.envelope import Envelope
from shared.marks import DeliveryMarks
from shared.queueing import make_queue
from shared.settings import Settings

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


def shuffled(runs: int, seed: int = 15) -> list[tuple[str, bytes]]:
    """The copies' deliveries in a random order (seeded): every job queued, in progress and
    completed, with its run's deliveries, arriving as unordered as GitHub may send them."""
    items = deliveries(runs)
    random.Random(seed).shuffle(items)  # noqa: S311 - a reproducible order, not a secret
    return items


def repetitive(runs: int) -> list[tuple[str, bytes]]:
    """As many deliveries as ``runs`` copies have, but seven in nine of them belong to one job
    (its queued, in_progress and completed deliveries over and over: redeliveries and replays, each
    with a new delivery id), then distinct jobs that complete, one delivery each."""
    base = dict(zip(_NAMES, originals(), strict=True))
    total = runs * len(_NAMES)
    storm = total * 7 // 9
    one_job = [("workflow_job", json.dumps(base[name][1]).encode()) for name in ("1", "3", "5")]
    items = [one_job[i % 3] for i in range(storm)]
    completed = base["5"][1]
    for index in range(total - storm):
        data = json.loads(json.dumps(completed))
        data["repository"]["full_name"] = f"bench-org/repo-{index % 10}"
        data["workflow_job"]["id"] = data["workflow_job"]["id"] * 1_000_000 + index
        data["workflow_job"]["run_id"] = data["workflow_job"]["run_id"] * 1_000_000 + index
        items.append(("workflow_job", json.dumps(data).encode()))
    return items


_NAMES = [str(n) for n in range(1, 10)]  # the samples' numbers, in GitHub's order
WORKLOADS: dict[str, Callable[[int], list[tuple[str, bytes]]]] = {
    "distinct": deliveries,
    "lifecycles": shuffled,
    "repetition": repetitive,
}


def sample_variants(
    sample: str,
    count: int,
    prefix: str,
    change: Callable[[dict[str, Any], int], None],
    event: str = "workflow_job",
) -> list[dict[str, Any]]:
    """``count`` queued envelopes (bodies inline) of one bundled sample (``stack/samples/<sample>``),
    the ``i``-th changed by ``change(data, i)``."""
    data = json.loads((SAMPLES / sample).read_text())
    data = data.get("payload", data)
    items = []
    for i in range(count):
        change(data, i)
        body = json.dumps(data).encode()
        items.append(Envelope.from_bytes(event, f"{prefix}-{i}", "1", time.time(), body).to_dict())
    return items


def envelopes(runs: int, prefix: str = "bench") -> list[Envelope]:
    now = time.time()
    return [
        Envelope.from_bytes(event, f"{prefix}-{i}", "bench", now, body)
        for i, (event, body) in enumerate(deliveries(runs))
    ]


def accepted(runs: int, prefix: str = "bench", workload: str = "distinct") -> list[Accepted]:
    """As the receiver hands them to its intake: bodiless envelopes, the bodies for the marks."""
    now = time.time()
    return [
        Accepted(Envelope(event, f"{prefix}-{i}", "bench", now, None), body)
        for i, (event, body) in enumerate(WORKLOADS[workload](runs))
    ]


def queue_through_intake(connection: Redis, settings: Settings, items: list[Accepted], job_size: int) -> None:
    """Queue ``items`` as the receivers do, in RQ jobs of ``job_size`` deliveries (marks kept an
    hour, bodies compressed as ``queue.compress_bodies`` says)."""
    queue = make_queue(connection, settings.queue)
    marks = DeliveryMarks(connection, lambda: 3600, compress=settings.queue.compress_bodies)
    intake = Intake(marks, queue, settings.queue)
    for start in range(0, len(items), job_size):
        intake.submit(items[start : start + job_size])
