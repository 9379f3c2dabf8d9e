"""Redis clients for both processes, every operation bounded in time.

redis-py's defaults wait forever: no socket timeout, and ten retries with backoff on a timeout or a
broken connection, so one command to a silently partitioned Redis could take minutes. Every client
made here has

- a socket timeout (``redis.socket_timeout_seconds``) and a connect timeout
  (``redis.connect_timeout_seconds``): a command that gets no answer fails after that long;
- one retry, at once, on a broken connection only (a pooled connection the server closed is
  replaced), none on a timeout: the caller decides what a timeout means;
- TCP keepalive probes after 5 s of silence, every 2 s, 3 of them: a connection that died without a
  reset is found within about 11 s even when idle;
- a health check (``PING``) before a connection idle for more than 5 s is used again.

RQ raises the socket timeout of the worker's connection pool to minutes (for its own blocking
dequeue); the worker's RQ subclass keeps ours (:class:`shared.rqadapter.InProcessWorker`).
"""

from __future__ import annotations

import socket
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from shared.settings import RedisSettings

HEALTH_CHECK_SECONDS = 5
KEEPALIVE: dict[int, int] = {
    option: value
    for name, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3))
    if (option := getattr(socket, name, None)) is not None
}


def client_options(settings: RedisSettings, socket_timeout: float | None = None) -> dict[str, Any]:
    """The keyword arguments of every client (``socket_timeout`` overrides the setting)."""
    return {
        "socket_timeout": socket_timeout if socket_timeout is not None else settings.socket_timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
        "socket_keepalive": True,
        "socket_keepalive_options": KEEPALIVE,
        "health_check_interval": HEALTH_CHECK_SECONDS,
    }


def connect(settings: RedisSettings, socket_timeout: float | None = None) -> Redis:
    """A blocking client."""
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    return Redis.from_url(settings.url, retry=retry, **client_options(settings, socket_timeout))


def connect_async(settings: RedisSettings, socket_timeout: float | None = None) -> AsyncRedis:
    """An asyncio client."""
    retry = AsyncRetry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    return AsyncRedis.from_url(settings.url, retry=retry, **client_options(settings, socket_timeout))
