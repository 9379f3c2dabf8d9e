"""One connection of a client's pool, kept for a hot path that sends commands it packed itself.

The receiver writes every batch with one script call. Through ``Redis.execute_command`` a call of
that shape (8 bodies, 50 small arguments) cost 255 µs of CPU (the pool's checkout and release,
redis-py's retry wrapper and event hooks, packing the arguments one by one); packed in one go
(:mod:`shared.resp`) and sent on the connection itself, 187 µs, and less still on a connection kept
checked out, as here. The connection is redis-py's own
(:meth:`~redis.asyncio.Connection.send_packed_command`,
:meth:`~redis.asyncio.Connection.read_response`, both public), so everything
:mod:`shared.redis_connect` sets up (timeouts, TLS, credentials, Sentinel discovery, keepalive,
health checks) holds; like every client made there, a call is retried once, at once, on a broken
connection (never on a timeout).

Calls take turns: each is sent, then answered, before the next is sent.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import ConnectionError as RedisConnectionError


class RedisLane:
    def __init__(self, client: AsyncRedis) -> None:
        self._pool = client.connection_pool
        self._connection: Any = None
        self._turn = asyncio.Lock()

    async def call(self, packed: bytes, replies: int = 1) -> list[Any]:
        """Send ``packed`` (one or more commands) and read ``replies`` answers; an error reply is
        raised (``redis.ResponseError``), as is any ``RedisError`` of the connection."""
        async with self._turn:
            try:
                return await self._call(packed, replies)
            except RedisConnectionError:  # a pooled connection the server closed: once more, fresh
                return await self._call(packed, replies)

    async def _call(self, packed: bytes, replies: int) -> list[Any]:
        if self._connection is None:
            self._connection = await self._pool.get_connection()  # type: ignore[no-untyped-call]
        connection = self._connection
        try:
            await connection.send_packed_command(packed)
            return [await connection.read_response() for _ in range(replies)]
        except BaseException:  # the connection may hold unread answers: never use it again
            self._connection = None
            await connection.disconnect()
            await self._pool.release(connection)
            raise

    async def close(self) -> None:
        async with self._turn:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await self._pool.release(connection)
