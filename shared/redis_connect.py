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
dequeue); the worker's RQ subclass keeps ours (:class:`shared.rqadapter.worker.InProcessWorker`).

Credentials and TLS come from ``redis.username``/``redis.password`` and ``redis.tls_*`` next to the
URL (which may still carry them). With ``redis.sentinels``, the client asks the Sentinels for the
primary named ``redis.sentinel_master`` at every (re)connection, so it follows a failover by itself;
a primary that was demoted answers READONLY, and the client then disconnects and asks again.
"""

from __future__ import annotations

import socket
import weakref
from typing import Any
from urllib.parse import urlparse

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from redis.sentinel import Sentinel

from shared.settings import RedisSettings

HEALTH_CHECK_SECONDS = 5
KEEPALIVE: dict[int, int] = {
    option: value
    for name, value in (("TCP_KEEPIDLE", 5), ("TCP_KEEPINTVL", 2), ("TCP_KEEPCNT", 3))
    if (option := getattr(socket, name, None)) is not None
}


_SENTINELS: weakref.WeakKeyDictionary[AsyncRedis, AsyncSentinel] = weakref.WeakKeyDictionary()


async def close_async(client: AsyncRedis) -> None:
    """Close an asyncio client, and the Sentinel clients it asks for the primary, if any."""
    await client.aclose()
    sentinel = _SENTINELS.pop(client, None)
    if sentinel is not None:
        for each in sentinel.sentinels:
            await each.aclose()


def uses_tls(settings: RedisSettings) -> bool:
    return settings.url.startswith("rediss://") or bool(settings.tls_ca_file or settings.tls_cert_file)


def tls_options(settings: RedisSettings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if settings.tls_ca_file:
        options["ssl_ca_certs"] = settings.tls_ca_file
    if settings.tls_cert_file:
        options["ssl_certfile"] = settings.tls_cert_file
        options["ssl_keyfile"] = settings.tls_key_file
    return options


def client_options(settings: RedisSettings, socket_timeout: float | None = None) -> dict[str, Any]:
    """The keyword arguments of every client (``socket_timeout`` overrides the setting)."""
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout if socket_timeout is not None else settings.socket_timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
        "socket_keepalive": True,
        "socket_keepalive_options": KEEPALIVE,
        "health_check_interval": HEALTH_CHECK_SECONDS,
    }
    if settings.username:
        options["username"] = settings.username
    if settings.password:
        options["password"] = settings.password
    return options


def sentinel_options(settings: RedisSettings) -> dict[str, Any]:
    """How to talk to the Sentinels themselves (bounded like every other connection)."""
    options: dict[str, Any] = {
        "socket_timeout": settings.connect_timeout_seconds,
        "socket_connect_timeout": settings.connect_timeout_seconds,
    }
    if settings.sentinel_username:
        options["username"] = settings.sentinel_username
    if settings.sentinel_password:
        options["password"] = settings.sentinel_password
    if uses_tls(settings):
        options.update(ssl=True, **tls_options(settings))
    return options


def sentinel_addresses(settings: RedisSettings) -> list[tuple[str, int]]:
    return [(host, int(port)) for host, _, port in (a.rpartition(":") for a in settings.sentinels)]


def database(settings: RedisSettings) -> int:
    path = urlparse(settings.url).path.strip("/")
    return int(path) if path.isdigit() else 0


def _client(
    settings: RedisSettings, socket_timeout: float | None, client: Any, sentinel_class: Any, retry: Any
) -> tuple[Any, Any]:
    """A client of ``client``'s kind (blocking or asyncio), and the Sentinel it asks, if any."""
    options = client_options(settings, socket_timeout)
    if not settings.sentinels:
        return client.from_url(settings.url, retry=retry, **options, **tls_options(settings)), None
    if uses_tls(settings):
        options.update(ssl=True, **tls_options(settings))
    sentinel = sentinel_class(sentinel_addresses(settings), sentinel_kwargs=sentinel_options(settings))
    return sentinel.master_for(
        settings.sentinel_master, db=database(settings), retry=retry, **options
    ), sentinel


def connect(settings: RedisSettings, socket_timeout: float | None = None) -> Redis:
    """A blocking client."""
    retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    primary: Redis = _client(settings, socket_timeout, Redis, Sentinel, retry)[0]
    return primary


def connect_async(settings: RedisSettings, socket_timeout: float | None = None) -> AsyncRedis:
    """An asyncio client."""
    retry = AsyncRetry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
    primary, sentinel = _client(settings, socket_timeout, AsyncRedis, AsyncSentinel, retry)
    if sentinel is not None:
        _SENTINELS[primary] = sentinel
    client: AsyncRedis = primary
    return client
