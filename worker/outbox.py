"""The trace outbox in Redis, as its sender sees it: the oldest entries to send, their deletion once
the collector took them, and what waits.

Entries are added by the ledger's transaction that counts a completion (``worker/ledger.write.lua``),
so an entry exists exactly when its job or run was counted. One worker at a time sends (the lease,
:mod:`worker.trace_export`); before sending it names the last entry it took (``sending``), which the
bound in the write never drops, so an entry is either sent or counted as dropped, never both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis import Redis

from shared import keys
from shared.resp import text
from shared.scripts import LuaScript


@dataclass(frozen=True)
class Entry:
    id: str
    body: bytes


@dataclass(frozen=True)
class Waiting:
    entries: int
    bytes: int
    dropped: dict[str, int]  # by reason, over all workers since the outbox began


class Outbox:
    def __init__(self, connection: Redis) -> None:
        self._connection = connection
        self._delete = LuaScript("worker", "outbox.delete")

    def take(self, most: int, hold_ms: int) -> list[Entry]:
        """The oldest ``most`` entries, the last of them named as being sent for ``hold_ms``."""
        found: list[tuple[bytes, dict[bytes, bytes]]] = self._connection.xrange(keys.OUTBOX, count=most)  # type: ignore[assignment]
        entries = [Entry(text(entry_id), fields[b"e"]) for entry_id, fields in found]
        if entries:
            self._connection.set(keys.OUTBOX_SENDING, entries[-1].id, px=hold_ms)
        return entries

    def delete(self, entries: Sequence[Entry], dropped: str = "") -> int:
        """Delete entries sent (or dropped, counted under the reason ``dropped``); how many were there."""
        if not entries:
            return 0
        pairs = [value for entry in entries for value in (entry.id, str(len(entry.body)))]
        found = self._delete(
            self._connection, [keys.OUTBOX, keys.OUTBOX_BYTES, keys.OUTBOX_DROPPED], [dropped, *pairs]
        )
        return int(found)

    def waiting(self) -> Waiting:
        with self._connection.pipeline(transaction=False) as pipe:
            pipe.xlen(keys.OUTBOX)
            pipe.get(keys.OUTBOX_BYTES)
            pipe.hgetall(keys.OUTBOX_DROPPED)
            count, size, dropped = pipe.execute()
        return Waiting(
            int(count), int(size or 0), {text(reason): int(value) for reason, value in dropped.items()}
        )
