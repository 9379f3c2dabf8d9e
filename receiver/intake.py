"""Put accepted deliveries on the queue exactly once per (hook id, delivery id).

A batch is written by one Lua script, in one round trip: if none of its redelivery marks exists,
it sets them (each holding its body until the worker applies the delivery) and writes the RQ job
of the batch's bodiless envelopes; if some exist, it writes nothing and says which, and the batch
is tried again without those (answered as duplicates). Scripts run atomically, so either a mark
and its job are both in Redis or neither is: a delivery that got 503 can be redelivered, and two
receivers handed the same delivery at once queue it only once. (Under ``maxmemory`` with
``noeviction`` Redis refuses the script at its first write, before anything is written.)

RQ builds the job on a pipeline that is never executed: its buffered commands are passed to the
script. Two front ends share that logic: :class:`Intake` (blocking, redis-py) and
:class:`AsyncIntake` (asyncio, used by the receiver so that its event loop never waits on a thread).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from rq import Queue

from shared.envelope import Envelope
from shared.queueing import delivery_key, job_data
from shared.settings import QueueSettings

SUBMIT = r"""
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then
    local taken = {}
    for i, k in ipairs(KEYS) do taken[i] = redis.call('EXISTS', k) end
    return taken
  end
end
for i, key in ipairs(KEYS) do redis.call('SET', key, ARGV[1 + i], 'EX', ARGV[1]) end
local at = #KEYS + 2
while at <= #ARGV do
  local count = tonumber(ARGV[at])
  redis.call(unpack(ARGV, at + 1, at + count))
  at = at + count + 1
end
return {}
"""


class Outcome(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Accepted:
    """A verified delivery: its envelope (body None) and its body, for the mark."""

    envelope: Envelope
    body: bytes

    @property
    def key(self) -> str:
        return delivery_key(self.envelope.hook_id, self.envelope.delivery_id)


def plan(keys: Sequence[str]) -> tuple[list[Outcome], list[int]]:
    """Outcomes so far, and the indexes to try to queue: a repeat inside the batch is a duplicate."""
    seen: set[str] = set()
    outcomes, fresh = [], []
    for index, key in enumerate(keys):
        if key in seen:
            outcomes.append(Outcome.DUPLICATE)
            continue
        seen.add(key)
        fresh.append(index)
        outcomes.append(Outcome.QUEUED)
    return outcomes, fresh


class _Base:
    def __init__(self, queue: Queue, settings: QueueSettings, dedupe_ttl: Callable[[], int]) -> None:
        self._queue = queue
        self._settings = settings
        self._dedupe_ttl = dedupe_ttl

    def _job_commands(self, envelopes: Sequence[Envelope]) -> list[tuple[Any, ...]]:
        """The commands RQ would send to enqueue one job for ``envelopes`` (nothing is sent)."""
        pipe = self._queue.connection.pipeline(transaction=False)
        self._queue.enqueue_many([job_data(self._queue, envelopes, self._settings)], pipeline=pipe)
        commands = [args for args, _options in pipe.command_stack]
        pipe.reset()
        return commands

    def _script_call(self, deliveries: Sequence[Accepted], fresh: list[int]) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of :data:`SUBMIT` for the deliveries at ``fresh``."""
        args: list[Any] = [self._dedupe_ttl(), *(deliveries[i].body for i in fresh)]
        for command in self._job_commands([deliveries[i].envelope for i in fresh]):
            args += [len(command), *command]
        return [deliveries[i].key for i in fresh], args


def retry_without(fresh: list[int], taken: Sequence[int], outcomes: list[Outcome]) -> list[int]:
    """After a refused try: the taken ones become duplicates, the others are tried again."""
    for index, flag in zip(fresh, taken, strict=True):
        if flag:
            outcomes[index] = Outcome.DUPLICATE
    return [index for index, flag in zip(fresh, taken, strict=True) if not flag]


class Intake(_Base):
    def __init__(
        self, connection: Redis, queue: Queue, settings: QueueSettings, dedupe_ttl: Callable[[], int]
    ) -> None:
        super().__init__(queue, settings, dedupe_ttl)
        self._script = connection.register_script(SUBMIT)

    def submit(self, deliveries: Sequence[Accepted]) -> list[Outcome]:
        """Queue the new ones among ``deliveries`` as one job; raises ``redis.RedisError`` if Redis fails."""
        outcomes, fresh = plan([d.key for d in deliveries])
        while fresh:
            taken = self._script(*self._script_call(deliveries, fresh))
            if not taken:
                break
            fresh = retry_without(fresh, taken, outcomes)
        return outcomes


class AsyncIntake(_Base):
    def __init__(
        self, connection: AsyncRedis, queue: Queue, settings: QueueSettings, dedupe_ttl: Callable[[], int]
    ) -> None:
        super().__init__(queue, settings, dedupe_ttl)
        self._connection = connection
        self._script = connection.register_script(SUBMIT)

    async def submit(self, deliveries: Sequence[Accepted]) -> list[Outcome]:
        outcomes, fresh = plan([d.key for d in deliveries])
        while fresh:
            taken = await self._script(*self._script_call(deliveries, fresh))
            if not taken:
                break
            fresh = retry_without(fresh, taken, outcomes)
        return outcomes

    async def ping(self) -> bool:
        return bool(await self._connection.ping())

    async def close(self) -> None:
        await self._connection.aclose()
