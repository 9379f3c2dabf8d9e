"""What the runners cost: a poll of 5,000 runners (an organization's, 50 pages of 100, its runner
groups and larger runners) from a GitHub REST API on loopback (the tests' fake, which follows GitHub's
documentation: ``bench/fake_github.py``): its time, requests and the Redis bytes of the inventory;
the worker's scrape with them beside 2,000 queued jobs over 200 label sets, against the same scrape
without the inventory; and ``worker_drain`` of jobs on 600 self-hosted runners (each delivery from
``in_progress`` on moves its runner's state too) beside the ``distinct`` workload, whose hosted jobs
move none. To compare with the version before, run the same in its worktree (``docs/benchmarks.md``).
``BENCH_RUNNERS`` (5,000) sets the inventory's size."""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

from bench.fake_github import FakeGitHub, hosted_runner, runner, runner_group
from bench.fresh_worker import apply_through_intake, worker_on_fresh_redis
from bench.scrape import best_of
from bench.worker_drain import drain
from bench.workload import sample_variants
from shared import keys

RUNNERS = int(os.environ.get("BENCH_RUNNERS", "5000"))
TOKEN = "ghp_bench"
ORG = "orgs/bench-org"
LABEL_SETS = 200
QUEUED = 2000


def inventory(github: FakeGitHub) -> None:
    """``RUNNERS`` runners over 5 groups and 20 label sets; a third busy, one in twenty offline."""
    groups = [runner_group(g, f"group-{g}", github.url, ORG) for g in range(1, 6)]
    runners = [
        runner(
            i, f"runner-{i:05d}", ("self-hosted", "Linux", "X64", f"pool-{i % 20}"),
            status="offline" if i % 20 == 0 else "online", busy=i % 3 == 0, group_id=1 + i % 5,
        )
        for i in range(1, RUNNERS + 1)
    ]  # fmt: skip
    github.set_runners(ORG, runners, groups=groups, hosted=[hosted_runner(1, "ubuntu-16core")])


def queued_jobs() -> list[Any]:
    """``QUEUED`` queued jobs of the bench organization over ``LABEL_SETS`` label sets: one in ten
    asks for labels no runner has."""

    def change(data: dict[str, Any], i: int) -> None:
        data["repository"]["full_name"] = "bench-org/repo"
        job = data["workflow_job"]
        job["id"] = 1_000_000 + i
        pool = f"pool-{i % 20}" if i % 10 else f"missing-{i % 20}"
        job["labels"] = ["self-hosted", pool, f"size-{i % (LABEL_SETS // 20)}"]

    return sample_variants("1-workflow_job-queued.json", QUEUED, "bench-queued", change)


def poll_and_scrape() -> dict[str, Any]:
    result: dict[str, Any] = {"runners": RUNNERS}
    with FakeGitHub(tokens=(TOKEN,)) as github:
        inventory(github)
        environ = {"GHA_EXPORTER_GITHUB__API_URL": github.url, "GHA_EXPORTER_GITHUB__TOKEN": TOKEN,
                   "GHA_EXPORTER_GITHUB__RUNNERS": json.dumps([ORG]),
                   "GHA_EXPORTER_WORKER__API_CACHE_SECONDS": "0"}  # fmt: skip
        with worker_on_fresh_redis(**environ) as (connection, built):
            timings = []
            for _ in range(5):
                before = len(github.requests)
                started = time.perf_counter()
                report = built.poller.run_pass()
                timings.append(time.perf_counter() - started)
                result["requests"] = len(github.requests) - before
            result["poll_seconds_median"] = round(statistics.median(timings), 3)
            result["poll_seconds_range"] = f"{min(timings):.3f}-{max(timings):.3f}"
            result["redis_bytes"] = int(connection.memory_usage(keys.RUNNERS, samples=0) or 0)
            result["stored_bytes"] = report.stored_bytes
            apply_through_intake(connection, built, queued_jobs(), 100)
            with_runners, (body, _) = best_of(built.exposition.render)
            result["scrape_ms"] = round(with_runners * 1000, 1)
            result["scrape_bytes"] = len(body)
    with worker_on_fresh_redis() as (connection, built):
        apply_through_intake(connection, built, queued_jobs(), 100)
        without, (body, _) = best_of(built.exposition.render)
        result["scrape_ms_without_runners"] = round(without * 1000, 1)
        result["scrape_bytes_without_runners"] = len(body)
    print(f"runners {result}")  # noqa: T201 - a benchmark prints its figures
    return result


def main() -> list[dict[str, Any]]:
    results = [poll_and_scrape()]
    for workload in ("self_hosted", "distinct"):
        results.append(drain(1, workload=workload))  # prints its figures
    return results


if __name__ == "__main__":
    main()
