"""The delivery mark: the one record of what became of a delivery GitHub sent.

One per (hook id, delivery id), at ``gha-exporter:delivery:<hook id>:<delivery id>``: a hash whose
``state`` is

- ``queued``: written by the receiver in the same script as the delivery's batch, with ``body``,
  the payload exactly as signed, or LZ4-compressed (:mod:`shared.bodies`; the job itself stays
  small);
- ``applied``: written by the worker in the transaction that applies the delivery; the body is
  dropped, the mark stays to answer redeliveries.

A redelivery (same ids) while the mark exists is a duplicate. The mark expires
``webhook.dedupe_ttl_seconds`` after its last write; the TTL is asked for at every write, so a
reload takes effect on both sides. The state is a field of its own, so no body can pass for one.

With ``redis.min_replicas_ack`` above 0, the create is followed on the same connection by Redis's
``WAIT``: the receiver answers 202 only once that many replicas have the marks and the batch
(:class:`NotReplicated`, a ``RedisError``, otherwise: 503; a redelivery then finds the marks and is
answered as a duplicate).

This module owns the key, the stored form and every read and write of it, for the receiver (create)
and the worker (read, settle); its scripts are ``shared/marks.*.lua``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.client import Pipeline
from redis.exceptions import RedisError

from shared import bodies as stored_bodies
from shared import resp
from shared.redis_lane import RedisLane
from shared.scripts import LuaScript

Command = Sequence[Any]
Ttl = Callable[[], int]
WAIT_MILLISECONDS = 2000


class NotReplicated(RedisError):
    """The marks are on the primary, but not on as many replicas as asked within the wait."""


class MarkState(StrEnum):
    MISSING = ""  # never queued, or expired
    QUEUED = "queued"
    APPLIED = "applied"


@dataclass(frozen=True)
class Mark:
    state: MarkState
    body: bytes | None  # the payload (as signed) while queued
    unreadable: bool = False  # queued, but its stored body does not decompress


def read_mark(state: bytes, stored: bytes | None) -> Mark:
    if state != b"queued" or stored is None:
        return Mark(MarkState(state.decode()), None)
    try:
        return Mark(MarkState.QUEUED, stored_bodies.unpack(stored))
    except stored_bodies.UnreadableBody:
        return Mark(MarkState.QUEUED, None, unreadable=True)


def create_arguments(ttl: int, bodies: Sequence[bytes], then: Sequence[Command], compress: bool) -> list[Any]:
    """ARGV of ``marks.create``: the TTL, the bodies (packed if ``compress``), then each command as
    its length and arguments."""
    args: list[Any] = [ttl, *(map(stored_bodies.pack, bodies) if compress else bodies)]
    for command in then:
        args += [len(command), *command]
    return args


def replicated(taken: Sequence[int], acknowledged: int, wanted: int) -> list[int]:
    """``taken`` when the marks were written and reached ``wanted`` replicas; raises otherwise."""
    if not taken and acknowledged < wanted:
        raise NotReplicated(f"{acknowledged} of {wanted} replicas acknowledged within {WAIT_MILLISECONDS} ms")
    return list(taken)


class DeliveryMarks:
    """Marks as the worker (and the reconciler) reads and settles them, on a blocking connection."""

    def __init__(self, connection: Redis, ttl: Ttl) -> None:
        self._connection = connection
        self._ttl = ttl
        self._read = LuaScript("shared", "marks.read")
        self._settle = LuaScript("shared", "marks.settle")

    def ttl(self) -> int:
        """How long a mark is kept after its last write (``webhook.dedupe_ttl_seconds``, as reloaded)."""
        return self._ttl()

    def read(self, keys: Sequence[str]) -> list[Mark]:
        """Each mark's state and body, in one round trip."""
        if not keys:
            return []
        flat = self._read(self._connection, keys, ["1"])
        return [read_mark(state, body) for state, body in zip(flat[::2], flat[1::2], strict=True)]

    def states(self, keys: Sequence[str]) -> list[MarkState]:
        """Each mark's state (``MISSING`` when there is none), in one round trip."""
        if not keys:
            return []
        return [MarkState(state.decode()) for state in self._read(self._connection, keys, ["0"])]

    def settle(self, pipe: Pipeline, keys: Sequence[str], read: Sequence[MarkState], gate: str = "") -> None:
        """Queue on a transaction (after MULTI): these deliveries are applied, if each mark is still
        in the state ``read`` says (``QUEUED`` or ``MISSING``); then ``gate`` is set. The
        transaction's reply for it is 1, or 0 when a mark had changed and nothing was written."""
        if keys:
            self._settle(pipe, keys, [self._ttl(), gate, *(state.value for state in read)])


class AsyncDeliveryMarks:
    """The receiver's create, the one way a mark comes to be: packed in one go and sent on a lane of
    the asyncio client's pool (:mod:`shared.redis_lane`), with the ``WAIT`` behind it when replicas
    must acknowledge."""

    def __init__(self, client: AsyncRedis, ttl: Ttl, replicas: int = 0, compress: bool = False) -> None:
        self._lane = RedisLane(client)
        self._ttl = ttl
        self._replicas = replicas
        self._compress = compress
        self._create = LuaScript("shared", "marks.create")
        self._wait = resp.command(["WAIT", replicas, WAIT_MILLISECONDS]) if replicas else b""

    async def create(
        self, keys: Sequence[str], bodies: Sequence[bytes], then: Sequence[Command]
    ) -> list[int]:
        args = create_arguments(self._ttl(), bodies, then, self._compress)
        packed = self._create.packed(keys, args) + self._wait
        if not self._replicas:
            [taken] = await self._lane.call(packed)
            return list(taken)
        taken, acknowledged = await self._lane.call(packed, replies=2)
        return replicated(taken, int(acknowledged), self._replicas)

    async def close(self) -> None:
        await self._lane.close()
