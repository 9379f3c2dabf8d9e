"""A TCP fault proxy between the exporter and Redis, for the fault suite.

Modes, switched while traffic flows:

- ``forward``: bytes pass both ways (with ``latency`` seconds added to every answer from Redis);
- ``partition()``: a silent partition: nothing passes either way and nothing is closed or reset,
  like packets dropped on the way; what was sent waits, as TCP would retransmit it, and passes
  once ``heal()`` is called;
- ``failover(port)``: the connections open now stay silent for ever (their Redis is gone without a
  word), and new connections go to another Redis (a promoted replica behind the same address).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

from stack.ports import free_port

CHUNK = 65536


class FaultProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port(host)
        self.upstream_port = upstream_port
        self.latency = 0.0
        self._open = threading.Event()  # set: bytes pass
        self._open.set()
        self._generation = 0  # connections of an older generation are dead (failover)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._run(self._listen())
        return self

    def partition(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    def failover(self, port: int) -> None:
        self._generation += 1
        self.upstream_port = port

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
                await self._server.wait_closed()
            for writer in self._writers:
                writer.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for writer in self._writers:
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        self._open.set()
        self._run(close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def _run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        generation = self._generation
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            client_writer.close()
            return
        self._writers += [client_writer, upstream_writer]
        await asyncio.gather(
            self._pump(client_reader, upstream_writer, generation, delay=False),
            self._pump(upstream_reader, client_writer, generation, delay=True),
            return_exceptions=True,
        )
        for writer in (client_writer, upstream_writer):
            writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, generation: int, delay: bool
    ) -> None:
        while data := await reader.read(CHUNK):
            while not self._open.is_set():  # partitioned: hold the bytes, as TCP would
                await asyncio.sleep(0.05)
            if generation != self._generation:  # its Redis is gone: silence for ever
                await asyncio.Event().wait()
            if delay and self.latency:
                await asyncio.sleep(self.latency)
            writer.write(data)
            await writer.drain()
