"""Slow clients (slowloris): connections that send their headers a byte at a time and never finish.
Used by the benchmark of that name and the fault suite."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter

from bench.load import HOOK_ID, SECRET, Send, sends
from bench.workload import deliveries
from shared.signing import sign


class SlowClients:
    """Hold ``count`` connections open, each trickling header bytes every few seconds."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.sockets: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)

    def __enter__(self) -> SlowClients:
        for _ in range(self.count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.sendall(b"POST /webhook HTTP/1.1\r\nHost: receiver\r\n")
            self.sockets.append(sock)
        self._thread.start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(2.0):
            for sock in list(self.sockets):
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    self.sockets.remove(sock)

    def alive(self) -> int:
        return len(self.sockets)

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            sock.close()


def post_once(port: int, send: Send) -> str:
    """One delivery, one attempt: the status, or ``connection error``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", "/webhook", body=send.body, headers={
            "Content-Type": "application/json", "X-GitHub-Event": send.event, "X-GitHub-Delivery": send.guid,
            "X-GitHub-Hook-ID": HOOK_ID, "X-Hub-Signature-256": sign(SECRET, send.body),
        })  # fmt: skip
        response = connection.getresponse()
        response.read()
        return str(response.status)
    except (OSError, http.client.HTTPException):
        return "connection error"
    finally:
        connection.close()


def real_deliveries_under_slow_clients(port: int, slow: int, runs: int = 10) -> dict[str, object]:
    """Answers to real deliveries, each sent once, while ``slow`` slow clients hang on."""
    real = sends(deliveries(runs), prefix=f"slow{slow}")
    with SlowClients(port, slow) as clients:
        time.sleep(0.5)
        started = time.monotonic()
        answers = Counter(post_once(port, send) for send in real)
        elapsed = time.monotonic() - started
        held = clients.alive()
    return {
        "slow_clients": slow,
        "still_connected": held,
        "answers": dict(answers),
        "seconds": round(elapsed, 2),
    }
