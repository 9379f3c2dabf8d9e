"""The delivery mark: the one record of what became of a delivery GitHub sent.

One per (hook id, delivery id), at ``gha-exporter:delivery:<hook id>:<delivery id>``: a hash whose
``state`` is

- ``queued``: written by the receiver in the same script as the delivery's RQ job, with ``body``,
  the payload exactly as signed (the job itself stays small);
- ``applied``: written by the worker in the transaction that applies the delivery; the body is
  dropped, the mark stays to answer redeliveries.

A redelivery (same ids) while the mark exists is a duplicate. The mark expires
``webhook.dedupe_ttl_seconds`` after its last write; the TTL is asked for at every write, so a
reload takes effect on both sides. The state is a field of its own, so no body can pass for one.

Marks of the earlier layout (a string: the body while queued, ``done`` once applied) are read as
such, and the worker's apply turns them into hashes; nothing scans for them.

This module owns the key, the stored form and every read and write of it, for the receiver (create)
and the worker (read, apply); its scripts are ``shared/marks.*.lua``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.client import Pipeline

from shared.queueing import KEY_PREFIX
from shared.scripts import LuaScript

Command = Sequence[Any]
Ttl = Callable[[], int]


class MarkState(StrEnum):
    MISSING = ""  # never queued, or expired
    QUEUED = "queued"
    APPLIED = "applied"


@dataclass(frozen=True)
class Mark:
    state: MarkState
    body: bytes | None  # the payload while queued


def mark_key(hook_id: str, delivery_id: str) -> str:
    """GitHub redelivers with the same hook and delivery ids."""
    return f"{KEY_PREFIX}:delivery:{hook_id}:{delivery_id}"


def create_arguments(ttl: int, bodies: Sequence[bytes], then: Sequence[Command]) -> list[Any]:
    """ARGV of ``marks.create``: the TTL, the bodies, then each command as its length and arguments."""
    args: list[Any] = [ttl, *bodies]
    for command in then:
        args += [len(command), *command]
    return args


class DeliveryMarks:
    """Marks on a blocking connection: the worker's reads and writes, and a blocking create."""

    def __init__(self, connection: Redis, ttl: Ttl) -> None:
        self._connection = connection
        self._ttl = ttl
        self._create = LuaScript("shared", "marks.create")
        self._read = LuaScript("shared", "marks.read")
        self._apply = LuaScript("shared", "marks.apply")

    def create(self, keys: Sequence[str], bodies: Sequence[bytes], then: Sequence[Command]) -> list[int]:
        """Create the marks and run ``then``, unless a mark exists: then nothing, and 1 for each taken."""
        return list(self._create(self._connection, keys, create_arguments(self._ttl(), bodies, then)))

    def read(self, keys: Sequence[str]) -> list[Mark]:
        """Each mark's state and body, in one round trip."""
        if not keys:
            return []
        flat = self._read(self._connection, keys, ["1"])
        return [
            Mark(MarkState(state.decode()), body if state == b"queued" else None)
            for state, body in zip(flat[::2], flat[1::2], strict=True)
        ]

    def states(self, pipe: Pipeline, keys: Sequence[str]) -> list[MarkState]:
        """On a pipeline that WATCHes them: each mark's state, in one round trip."""
        if not keys:
            return []
        return [MarkState(state.decode()) for state in self._read(pipe, keys, ["0"])]

    def apply(self, pipe: Pipeline, keys: Sequence[str]) -> None:
        """Queue on a transaction (after MULTI): these deliveries are applied."""
        if keys:
            self._apply(pipe, keys, [self._ttl()])


class AsyncDeliveryMarks:
    """The receiver's create, on its asyncio connection."""

    def __init__(self, connection: AsyncRedis, ttl: Ttl) -> None:
        self._connection = connection
        self._ttl = ttl
        self._create = LuaScript("shared", "marks.create")

    async def create(
        self, keys: Sequence[str], bodies: Sequence[bytes], then: Sequence[Command]
    ) -> list[int]:
        return list(await self._create(self._connection, keys, create_arguments(self._ttl(), bodies, then)))
