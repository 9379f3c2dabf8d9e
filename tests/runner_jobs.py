"""Jobs on self-hosted runners, made from the corpus's real run: its job payloads with the runner,
the times and the ids put in (the corpus holds one self-hosted ``in_progress`` delivery and no
completion)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from receiver.intake import Accepted
from tests.corpus import KRZKO, accepted, load

IN_PROGRESS = KRZKO.format("job", "3_workflow_job_in_progress")
COMPLETED = KRZKO.format("job", "5_workflow_job_completed")
T0 = 1_700_000_000


def iso(offset: float) -> str:
    return datetime.fromtimestamp(T0 + offset, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def runner_job(
    job_id: int,
    action: str,
    runner: int,
    started: float,
    completed: float | None = None,
    *,
    group: str = "pool",
    name: str | None = None,
    owner: str = "krzko",
    labels: tuple[str, ...] = ("self-hosted", "linux"),
) -> dict:
    """A ``workflow_job`` payload of job ``job_id`` on runner ``runner`` (named ``runner-<n>``), with
    times in seconds after :data:`T0`."""
    data = load(COMPLETED if action == "completed" else IN_PROGRESS).data
    job = data["workflow_job"]
    data["action"] = action
    data["repository"]["full_name"] = f"{owner}/webhook-testing"
    job.update(
        id=job_id, run_id=job_id * 100, run_attempt=1, status=action, labels=list(labels),
        runner_id=runner, runner_name=name or f"runner-{runner}", runner_group_name=group,
        created_at=iso(started - 5), started_at=iso(started),
        completed_at=iso(completed) if completed is not None else None,
        conclusion="success" if action == "completed" else None,
        html_url=f"https://github.com/{owner}/webhook-testing/actions/runs/{job_id * 100}/job/{job_id}",
    )  # fmt: skip
    return data


def delivered(payloads: list[dict], prefix: str = "r") -> list[Accepted]:
    """The payloads as the receiver hands them to its intake, each its own delivery."""
    return [
        accepted("workflow_job", f"{prefix}-{index}", json.dumps(payload).encode())
        for index, payload in enumerate(payloads)
    ]


def lifecycle(job_id: int, runner: int, started: float, completed: float | None, **kwargs) -> list[dict]:
    """A job's ``in_progress`` and, when ``completed`` is given, its completion."""
    payloads = [runner_job(job_id, "in_progress", runner, started, **kwargs)]
    if completed is not None:
        payloads.append(runner_job(job_id, "completed", runner, started, completed, **kwargs))
    return payloads
