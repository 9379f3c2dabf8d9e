"""Queue depth, read from Redis at scrape time (so every worker replica shows the same figure).

Sample exposition::

    github_actions_queue_jobs{state="queued"} 3.0
    github_actions_queue_jobs{state="started"} 1.0
    github_actions_queue_jobs{state="failed"} 0.0
    github_actions_queue_redis_up 1.0
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Queue


class QueueCollector(Collector):
    def __init__(self, queue: Queue, prefix: str) -> None:
        self._queue = queue
        self._prefix = prefix

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            f"{self._prefix}queue_redis_up",
            "1 when the worker could read the queue from Redis at this scrape.",
        )
        jobs = GaugeMetricFamily(
            f"{self._prefix}queue_jobs",
            "RQ jobs (each one or more deliveries) by state: waiting in the queue, started, failed.",
            labels=["state"],
        )
        try:
            counts = {
                "queued": self._queue.count,
                "started": self._queue.started_job_registry.count,
                "failed": self._queue.failed_job_registry.count,
            }
        except RedisError:
            up.add_metric([], 0)
            yield up
            return
        for state, value in counts.items():
            jobs.add_metric([state], value)
        up.add_metric([], 1)
        yield up
        yield jobs
