"""Every key the system writes is listed in :data:`shared.keys.KEYS` (the README's "Redis keys").

Redis reports every key written (keyspace notifications) while the receivers' intake, the worker
(with the combiner taking further batches), a job that fails, the sweeper and a scrape all run; each
key must match a pattern of the table.
"""

import re
import threading
import time

import pytest
from prometheus_client import CollectorRegistry
from redis import Redis

from bench.workload import queue_through_intake
from shared.keys import KEYS
from shared.queueing import make_queue
from tests.corpus import run_copies
from worker.__main__ import build_processor
from worker.batches import bind, unbind
from worker.rqworker import StopFlag, make_worker

pytestmark = pytest.mark.integration


def table_patterns() -> list[re.Pattern[str]]:
    patterns = []
    for doc in KEYS:
        for key in re.findall(r"`([^`]+)`", doc.pattern):
            parts = re.split(r"<[^>]+>", key)
            patterns.append(re.compile(".+".join(re.escape(part) for part in parts) + r"\Z"))
    return patterns


class KeysWritten:
    """The keys Redis reports written while it runs (notify-keyspace-events)."""

    def __init__(self, url: str) -> None:
        self._connection = Redis.from_url(url)
        self._connection.config_set("notify-keyspace-events", "KA")
        self._pubsub = self._connection.pubsub()
        self._pubsub.psubscribe("__keyspace@*__:*")
        self.keys: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.1)
            if message and message["type"] == "pmessage":
                self.keys.add(message["channel"].decode().split(":", 1)[1])

    def __enter__(self) -> "KeysWritten":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        time.sleep(0.5)  # the last notifications are in flight
        self._stop.set()
        self._thread.join()
        self._pubsub.close()
        self._connection.config_set("notify-keyspace-events", "")
        self._connection.close()


def test_every_key_written_is_in_the_readme_table(redis_url, make_settings):
    settings = make_settings(
        GHA_EXPORTER_REDIS__URL=redis_url,
        GHA_EXPORTER_METRICS__STEP_METRICS="true",
        GHA_EXPORTER_WORKER__MAX_BATCH="20",
    )
    connection = Redis.from_url(redis_url)
    with KeysWritten(redis_url) as written:
        queue = make_queue(connection, settings.queue)
        deliveries = [  # the last run's job stays in progress
            d.accepted(f"k-{i}", received_at=time.time()) for i, d in enumerate(run_copies(4)[:-3])
        ]
        queue_through_intake(connection, settings.queue, deliveries, 4)
        queue.enqueue("no.such.function", retry=None)  # a job that fails
        built = build_processor(connection, settings, CollectorRegistry())
        token = bind(built.processor, built.combiner)
        try:
            make_worker(connection, settings.queue, StopFlag()).work(burst=True)
        finally:
            unbind(token)
        connection.delete(*connection.keys("gha-exporter:state:*"))  # their TTLs ran out
        built.expiry.sweep(time.time())  # everything in flight expires
        built.recovery.recover()
        built.exposition.render()
    connection.close()
    assert any(key.startswith("gha-exporter:claimed:") for key in written.keys)  # the workload is complete
    assert any(key.startswith("gha-exporter:inflight:") for key in written.keys)
    patterns = table_patterns()
    unlisted = sorted(key for key in written.keys if not any(p.match(key) for p in patterns))
    assert not unlisted, f"keys written that shared.keys.KEYS does not list: {unlisted}"
