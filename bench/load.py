"""A load generator that plays GitHub: it signs deliveries, round-robins the receivers over
keep-alive connections, and redelivers (same delivery id) anything that did not get a 2xx, like a
user pressing "Redeliver", until it is acknowledged or its deadline passes. Used by the benchmarks
and the fault suite."""

from __future__ import annotations

import http.client
import itertools
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.signing import sign

SECRET = "fault-suite-secret"
HOOK_ID = "777"


@dataclass
class Send:
    event: str
    body: bytes
    guid: str


def sends(deliveries: Iterable[tuple[str, bytes]], prefix: str) -> list[Send]:
    """(event, body) pairs as deliveries with ids ``<prefix>-<n>``."""
    return [Send(event, body, f"{prefix}-{i}") for i, (event, body) in enumerate(deliveries)]


@dataclass
class Stats:
    attempts: int = 0
    acknowledged: set[str] = field(default_factory=set)
    statuses: Counter[str] = field(default_factory=Counter)
    unacknowledged: set[str] = field(default_factory=set)
    ack_times: dict[str, float] = field(default_factory=dict)
    slowest_answer: float = 0.0  # seconds, of any attempt that got an HTTP answer


class LoadGenerator:
    """``rate``: deliveries started per second (first attempts; redeliveries come on top), or as fast
    as the threads go when None. ``answer_timeout``: how long one attempt waits for its answer
    (GitHub waits 10 s)."""

    def __init__(
        self,
        ports: list[int],
        threads: int = 12,
        deadline_seconds: float = 120.0,
        rate: float | None = None,
        answer_timeout: float = 10.0,
        *,
        hook_id: str = HOOK_ID,
    ) -> None:
        self.ports = ports
        self.hook_id = hook_id
        self.threads = threads
        self.deadline_seconds = deadline_seconds
        self.rate = rate
        self.answer_timeout = answer_timeout
        self._lock = threading.Lock()
        self._round_robin = itertools.count()

    def play(self, sends: list[Send], stats: Stats | None = None) -> Stats:
        stats = stats or Stats()
        queue = iter(enumerate(sends))
        started = time.monotonic()
        deadline = started + self.deadline_seconds

        def next_send() -> Send | None:
            with self._lock:
                index, send = next(queue, (0, None))
            if send is not None and self.rate:
                time.sleep(max(0.0, started + index / self.rate - time.monotonic()))
            return send

        def run() -> None:
            connections: dict[int, http.client.HTTPConnection] = {}
            while (send := next_send()) is not None:
                self._deliver(send, stats, connections, deadline)
            for connection in connections.values():
                connection.close()

        workers = [threading.Thread(target=run) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return stats

    def _deliver(
        self, send: Send, stats: Stats, connections: dict[int, http.client.HTTPConnection], deadline: float
    ) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": send.event,
            "X-GitHub-Delivery": send.guid,
            "X-GitHub-Hook-ID": self.hook_id,
            "X-Hub-Signature-256": sign(SECRET, send.body),
        }
        backoff = 0.05
        while time.monotonic() < deadline:
            port = self.ports[next(self._round_robin) % len(self.ports)]
            try:
                connection = connections.get(port) or http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=self.answer_timeout
                )
                connections[port] = connection
                asked = time.monotonic()
                connection.request("POST", "/webhook", body=send.body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = str(response.status)
                with self._lock:
                    stats.slowest_answer = max(stats.slowest_answer, time.monotonic() - asked)
            except (OSError, http.client.HTTPException):
                broken = connections.pop(port, None)
                if broken is not None:
                    broken.close()
                status = "connection error"
            with self._lock:
                stats.attempts += 1
                stats.statuses[status] += 1
                if status in ("200", "202"):
                    stats.acknowledged.add(send.guid)
                    stats.ack_times[send.guid] = time.time()
                    return
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        with self._lock:
            stats.unacknowledged.add(send.guid)
