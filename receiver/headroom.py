"""Redis's memory, kept for the worker: the receivers stop writing at a high-water mark below
``maxmemory``.

With ``maxmemory-policy noeviction`` Redis refuses every write past ``maxmemory``. If the receivers
filled it to the limit, a worker could not drain it: before it frees a single body it must write
(RQ registers the worker and marks its batch started, the ledger writes the state a delivery
moves), and those writes would be refused too. So each receiver reads ``used_memory`` and
``maxmemory`` (``INFO memory``) every :data:`POLL_SECONDS`, adds what it wrote since (each
delivery's body, uncompressed, plus :data:`OVERHEAD_BYTES`: an over-estimate), and once that reaches
``redis.memory_high_water`` of ``maxmemory`` answers 503 without writing (GitHub shows the delivery as
failed; it can be redelivered) until a read says Redis is :data:`RESUME_MARGIN` of ``maxmemory``
below it (without that margin, ``used_memory`` moving by a few KB around the mark as clients come and
go would flip ``/ready`` from one read to the next while nothing drains). The rest of ``maxmemory``
is the worker's: draining frees more than it writes (a body is several times the state it moves).

Each receiver knows only its own writes between two reads: with N receivers, Redis can pass the mark
by what N - 1 of them write in :data:`POLL_SECONDS`. A write Redis refused for memory all the same
pauses the receiver until the next read. Redis without ``maxmemory`` (0), or a user not allowed
``INFO``, is never paused (logged once).
"""

from __future__ import annotations

import asyncio
from typing import Any

from loguru import logger
from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError, ResponseError

POLL_SECONDS = 0.5
OVERHEAD_BYTES = 512  # per delivery: its mark, its share of the batch, Redis's own
READ_SECONDS = 2.0
RESUME_MARGIN = 0.05  # of maxmemory: paused at the high-water mark, resumed this far below it


class RedisFull(RedisError):
    """Redis is above the receivers' memory high-water mark: the delivery is not written."""


class Headroom:
    def __init__(self, connection: AsyncRedis, high_water: float) -> None:
        self._connection = connection
        self._high_water = high_water
        self._used = 0  # as last read, plus what this receiver wrote since
        self._limit = 0  # high_water * maxmemory; 0: no limit known
        self._resume = 0  # (high_water - RESUME_MARGIN) * maxmemory
        self._paused = False  # reached the limit; until a read finds Redis below _resume
        self._refused = False  # Redis refused a write for memory since the last read
        self._task: asyncio.Task[None] | None = None

    @property
    def full(self) -> bool:
        return self._refused or self._paused

    def problem(self) -> str | None:
        """Why the receiver refuses deliveries for Redis's memory, or None."""
        if not self.full:
            return None
        return f"Redis is above the receivers' memory high-water mark ({self._high_water:.0%} of maxmemory)"

    def check(self) -> None:
        if self.full:
            raise RedisFull(self.problem())

    def wrote(self, bodies: int, deliveries: int) -> None:
        self._used += bodies + deliveries * OVERHEAD_BYTES
        self._paused = self._paused or (self._limit > 0 and self._used >= self._limit)

    def refused(self) -> None:
        """Redis refused a write for memory (``OOM``): paused until a read says otherwise."""
        if not self.full:
            logger.warning("Redis refused a write for memory: deliveries are answered 503 until it has room")
        self._refused = True

    async def read(self) -> bool:
        """Read Redis's memory once; False when this Redis or user cannot tell (no more reads)."""
        was_full = self.full
        try:
            info: dict[str, Any] = await asyncio.wait_for(self._connection.info("memory"), READ_SECONDS)
        except ResponseError as exc:  # NOPERM, or a server without INFO
            logger.warning(
                "cannot read Redis's memory use ({}): the receivers may fill Redis to its maxmemory", exc
            )
            self._limit, self._refused, self._paused = 0, False, False
            return False
        except (RedisError, TimeoutError):
            return True  # unreachable: the writes fail on their own; read again later
        maxmemory = int(info.get("maxmemory", 0))
        self._used = int(info.get("used_memory", 0))
        self._limit = int(maxmemory * self._high_water)
        self._resume = int(maxmemory * (self._high_water - RESUME_MARGIN))
        self._refused = False
        self._paused = self._limit > 0 and self._used >= (self._resume if was_full else self._limit)
        if self.full and not was_full:
            logger.warning(
                "Redis uses {:.0f} of its {:.0f} MB ({:.0%}): deliveries are answered 503 until the worker"
                " frees memory",
                self._used / 2**20,
                maxmemory / 2**20,
                self._used / maxmemory,
            )
        elif was_full and not self.full:
            logger.info("Redis has room again: deliveries are queued")
        return True

    async def _watch(self) -> None:
        while await self.read():
            await asyncio.sleep(POLL_SECONDS)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="redis-headroom")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
