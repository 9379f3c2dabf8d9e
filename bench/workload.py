"""Real-shaped deliveries for the benchmarks: copies of a real run (a workflow_run and two jobs,
nine deliveries), each copy with its own ids and one of ten repositories; in GitHub's order, shuffled,
as a storm of deliveries of one job followed by many distinct jobs, or in order on self-hosted
runners (:data:`WORKLOADS`)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis

from receiver.intake import Accepted, Admission, AsyncIntake
from shared.envelope import Envelope
from shared.marks import AsyncDeliveryMarks
from shared.queueing import make_queue
from shared.settings import QueueSettings

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


RUNNERS = 600  # self-hosted runners the self_hosted workload's jobs run on


def self_hosted(runs: int) -> list[tuple[str, bytes]]:
    """The copies of :func:`deliveries`, their jobs on :data:`RUNNERS` self-hosted runners (each copy
    100 s after the one before, each job on a runner of its own for that copy), so every delivery from
    ``in_progress`` on moves a runner's state too."""
    out = []
    for index, (event, original) in enumerate(deliveries(runs)):
        body = original
        data = json.loads(body)
        job = data.get("workflow_job")
        if job is not None:
            copy = index // len(_NAMES)
            for field in ("created_at", "started_at", "completed_at"):
                if job.get(field):
                    moment = datetime.fromisoformat(job[field]).timestamp() + copy * 100
                    job[field] = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            job["labels"] = ["self-hosted", "linux"]
            if job.get("runner_name"):
                runner = (copy * 2 + job["name"].endswith("test")) % RUNNERS
                job.update(runner_id=runner, runner_name=f"runner-{runner}", runner_group_name="pool")
            body = json.dumps(data).encode()
        out.append((event, body))
    return out


_NAMES = [str(n) for n in range(1, 10)]  # the samples' numbers, in GitHub's order
WORKLOADS: dict[str, Callable[[int], list[tuple[str, bytes]]]] = {
    "distinct": deliveries,
    "lifecycles": shuffled,
    "repetition": repetitive,
    "self_hosted": self_hosted,
}


MARKS_TTL = 3600  # seconds the marks the benchmarks and tests queue are kept


def sample_variants(
    sample: str,
    count: int,
    prefix: str,
    change: Callable[[dict[str, Any], int], None],
    event: str = "workflow_job",
) -> list[Accepted]:
    """``count`` deliveries of one bundled sample (``stack/samples/<sample>``), the ``i``-th changed
    by ``change(data, i)``, as the receiver hands them to its intake."""
    data = json.loads((SAMPLES / sample).read_text())
    data = data.get("payload", data)
    items = []
    for i in range(count):
        change(data, i)
        items.append(Accepted(Envelope(event, f"{prefix}-{i}", "1", time.time()), json.dumps(data).encode()))
    return items


def accepted(runs: int, prefix: str = "bench", workload: str = "distinct") -> list[Accepted]:
    """As the receiver hands them to its intake: bodiless envelopes, the bodies for the marks."""
    now = time.time()
    return [
        Accepted(Envelope(event, f"{prefix}-{i}", "bench", now), body)
        for i, (event, body) in enumerate(WORKLOADS[workload](runs))
    ]


def queue_through_intake(
    connection: Redis, settings: QueueSettings, items: Sequence[Accepted], job_size: int
) -> None:
    """Queue ``items`` through the receiver's own intake, in batches of ``job_size`` deliveries (marks
    kept :data:`MARKS_TTL`, bodies compressed as ``queue.compress_bodies`` says)."""
    batches = [items[start : start + job_size] for start in range(0, len(items), job_size)]
    asyncio.run(_submit(connection, settings, batches, MARKS_TTL))


def submit(
    connection: Redis, settings: QueueSettings, items: Sequence[Accepted], ttl: int = MARKS_TTL
) -> list[Admission]:
    """One batch through the receiver's own intake: what became of each delivery."""
    [admissions] = asyncio.run(_submit(connection, settings, [items], ttl))
    return admissions


def async_client(connection: Redis) -> AsyncRedis:
    """An asyncio client of the server ``connection`` talks to (TCP or a Unix socket)."""
    given = connection.connection_pool.connection_kwargs
    common = {k: given[k] for k in ("db", "username", "password") if k in given}
    if "path" in given:
        return AsyncRedis(unix_socket_path=given["path"], **common)
    return AsyncRedis(host=given.get("host", "localhost"), port=given.get("port", 6379), **common)


async def _submit(
    connection: Redis, settings: QueueSettings, batches: Sequence[Sequence[Accepted]], ttl: int
) -> list[list[Admission]]:
    client = async_client(connection)
    marks = AsyncDeliveryMarks(client, lambda: ttl, compress=settings.compress_bodies)
    intake = AsyncIntake(client, marks, make_queue(connection, settings), settings)
    try:
        return [await intake.submit(batch) for batch in batches]
    finally:
        await intake.close()


def intake_entries(
    connection: Redis, settings: QueueSettings, items: Sequence[Accepted]
) -> list[dict[str, Any]]:
    """The entries a worker's batch hands it for ``items``, queued through the receiver's intake (one
    batch), then taken off the queue for the caller to apply; a duplicate of a delivery already
    marked is not queued, so it has none."""
    queue = make_queue(connection, settings)
    before = set(queue.get_job_ids())
    queue_through_intake(connection, settings, items, max(1, len(items)))
    entries: list[dict[str, Any]] = []
    for job_id in queue.get_job_ids():
        if job_id in before:
            continue
        job = queue.fetch_job(job_id)
        if job is not None:
            entries += job.args[0]
            job.delete(remove_from_queue=True)
    return entries
