"""``python -m bench api_load``: the in-flight API of the real worker process under load. 20,000 jobs
queued and 20,000 runs in progress, with long labels (repository, workflow and job names of
about 200 characters); then 20 clients asking what the page asks (``limit=500``) and 8 asking
``limit=1000``, each in a loop for 20 s, while deliveries arrive at 50 a second through a receiver.

Figures: the worker's RSS (before, peak), the answers by status (429: past
``worker.api_concurrency``) and the slowest, and the delivery lag meanwhile, from the worker's
``webhook_processing_lag_seconds`` (its mean, and the bucket the slowest fell in), beside the same
lag with no API load. Before the bounds (issue 24): 20 concurrent default requests took the worker
to 581 MB, 8 of ``limit=10000`` to 980 MB, and loops of requests raised the lag to 3.25 s.
"""

from __future__ import annotations

import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from bench.cluster import Cluster
from bench.load import LoadGenerator, sends
from bench.workload import deliveries, intake_entries, sample_variants
from shared.settings_loader import load_settings

ATTEMPTS = 20_000  # of jobs, and of runs
LONG = "l" * 180
SECONDS = 20.0
RATE = 50.0  # deliveries a second meanwhile
CLIENTS = {"limit=500": 20, "limit=1000": 8}


def job(data: dict[str, Any], i: int) -> None:
    data["workflow_job"].update(
        id=30_000_000 + i, name=f"{LONG}-job-{i}", workflow_name=f"{LONG}-wf-{i % 50}"
    )
    data["workflow_job"]["labels"] = [f"pool-{i % 50}"]
    data["action"] = "queued"  # a queue of 20,000: no duration observed yet, the gauges and the API only
    data["repository"]["full_name"] = f"org/{LONG}-{i % 500}"


def run(data: dict[str, Any], i: int) -> None:
    data["workflow_run"].update(id=40_000_000 + i, name=f"{LONG}-wf-{i % 50}", head_branch=f"{LONG}-{i}")
    data["repository"]["full_name"] = f"org/{LONG}-{i % 500}"


def fill(cluster: Cluster) -> None:
    """The attempts, applied by a processor of this process on the cluster's Redis."""
    from worker.__main__ import build_processor  # noqa: PLC0415 - the worker's own wiring

    settings = load_settings(environ=cluster.env())
    connection = cluster.connection()
    built = build_processor(connection, settings, CollectorRegistry())
    items = sample_variants("1-workflow_job-queued.json", ATTEMPTS, "api-job", job)
    items += sample_variants("2-workflow_run-in_progress.json", ATTEMPTS, "api-run", run, "workflow_run")
    for start in range(0, len(items), 500):
        built.processor.process_batch(intake_entries(connection, settings.queue, items[start : start + 500]))
    connection.close()


def lag(port: int) -> tuple[float, float]:
    """The worker's lag histogram as one scrape shows it: its sum and count."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == "github_actions_webhook_processing_lag_seconds":
            values = {(s.name, s.labels.get("le")): s.value for s in family.samples}
            return values[(family.name + "_sum", None)], values[(family.name + "_count", None)]
    raise AssertionError("no lag histogram")


def mean_lag(port: int, during: Any) -> tuple[float, int]:
    """Run ``during()``; the mean lag of the deliveries applied meanwhile, and how many."""
    total_before, count_before = lag(port)
    during()
    total_after, count_after = lag(port)
    count = int(count_after - count_before)
    return (total_after - total_before) / max(1, count), count


def play(cluster: Cluster, prefix: str) -> None:
    load = LoadGenerator(cluster.receiver_ports, threads=4, rate=RATE)
    load.play(sends(deliveries(int(RATE * SECONDS / 9)), prefix))
    time.sleep(2.0)  # the last deliveries applied (the lag of a delivery is observed when applied)


def ask(url: str, until: float, answers: Counter[str], slowest: list[float]) -> None:
    while time.monotonic() < until:
        started = time.monotonic()
        try:
            with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - loopback
                answer.read()
                status = str(answer.status)
        except urllib.error.HTTPError as error:
            with error:
                status = str(error.code)
        except OSError:
            status = "connection error"
        answers[status] += 1
        slowest[0] = max(slowest[0], time.monotonic() - started)


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), receivers=1, workers=1).start()
        try:
            fill(cluster)
            port = cluster.port_of("worker-0")
            quiet_lag, _ = mean_lag(port, lambda: play(cluster, "quiet"))
            before = cluster.rss_mb("worker-0")
            answers: Counter[str] = Counter()
            slowest = [0.0]
            peak = [before]
            until = time.monotonic() + SECONDS
            threads = [
                threading.Thread(
                    target=ask,
                    args=(f"http://127.0.0.1:{port}/api/v1/inflight?{query}", until, answers, slowest),
                )
                for query, count in CLIENTS.items()
                for _ in range(count)
            ]

            def watch() -> None:
                while time.monotonic() < until:
                    peak[0] = max(peak[0], cluster.rss_mb("worker-0"))
                    time.sleep(0.1)

            threads.append(threading.Thread(target=watch))

            def loaded() -> None:
                for thread in threads:
                    thread.start()
                play(cluster, "loaded")
                for thread in threads:
                    thread.join()

            loaded_lag, applied = mean_lag(port, loaded)
        finally:
            cluster.shutdown()
    result = {
        "attempts_in_flight": 2 * ATTEMPTS,
        "worker_rss_mb": round(before),
        "worker_peak_rss_mb": round(peak[0]),
        "answers": dict(answers),
        "slowest_answer_s": round(slowest[0], 2),
        "mean_lag_s_without_api_load": round(quiet_lag, 3),
        "mean_lag_s_with_api_load": round(loaded_lag, 3),
        "deliveries_applied_under_load": applied,
    }
    print(f"api_load {result}")  # noqa: T201 - a benchmark prints its figures
    return result


if __name__ == "__main__":
    main()
