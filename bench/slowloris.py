"""Slow clients (slowloris): connections that send their headers a byte at a time and never finish.
Used by the benchmark of that name and the fault suite."""

from __future__ import annotations

import asyncio
import contextlib
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


class Trickle:
    """``count`` slowloris connections held from a thread of their own (asyncio: thousands need no
    thread each), opened ``stagger`` seconds apart: each sends ``opening`` (a head begun, or a head
    and the start of a body), then ``line`` every ``every`` seconds; one the server closed is opened
    again at its next tick, as the slowloris tool does. ``opened`` counts every connection made,
    ``closed`` those the server closed."""

    def __init__(
        self,
        port: int,
        count: int,
        opening: bytes,
        *,
        line: bytes = b"X-Slow: 1\r\n",
        every: float = 10.0,
        stagger: float = 0.0,
    ) -> None:
        self.port, self.count, self.opening, self.line, self.every = port, count, opening, line, every
        self.stagger = stagger  # seconds between one connection's first opening and the next's
        self.opened = self.closed = self.refused = 0
        self.established = threading.Event()  # every connection made once
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()  # bound to the loop that first waits on it (Python 3.10 on)
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._main(),), daemon=True
        )

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    async def _main(self) -> None:
        started = 0

        async def one(index: int) -> None:
            nonlocal started
            first = True
            await self._pause(index * self.stagger)
            while not self._stop.is_set():
                connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
                try:
                    connection = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    self.refused += 1
                if first:
                    first, started = False, started + 1
                    if started == self.count:
                        self.established.set()
                if connection is not None:
                    self.opened += 1
                    await self._hold(*connection)
                await self._pause(self.every)

        tasks = [asyncio.ensure_future(one(index)) for index in range(self.count)]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Trickle on one connection until the server closes it, or the attack ends."""
        try:
            writer.write(self.opening)
            while not self._stop.is_set():
                try:
                    if await asyncio.wait_for(reader.read(65536), self.every) == b"":
                        self.closed += 1
                        return
                except TimeoutError:
                    writer.write(self.line)
                    await writer.drain()
        except OSError:
            self.closed += 1
        finally:
            writer.close()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        self._loop.close()
