"""How the receiver has RQ build a job once and fills it per batch (see :mod:`shared.rqadapter`)."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from redis.client import Pipeline
from rq import Queue
from rq.queue import EnqueueData
from rq.utils import now, utcformat, utcparse

from shared import resp


def enqueue_commands(queue: Queue, data: EnqueueData) -> list[tuple[Any, ...]]:
    """The commands RQ would send to enqueue ``data`` (nothing is sent)."""
    pipe: Pipeline = queue.connection.pipeline(transaction=False)
    queue.enqueue_many([data], pipeline=pipe)
    commands = [args for args, _options in pipe.command_stack]
    pipe.reset()
    return commands


UNKNOWN_SERVER_VERSION = (5, 0, 9)  # what RQ assumes of a server without INFO (fakeredis)


def server_version(info: dict[str, Any] | None) -> tuple[int, int, int]:
    """Redis's version from its ``INFO server`` (None: it has no INFO), as RQ reads it
    (``rq.utils.get_version``)."""
    if info is None:
        return UNKNOWN_SERVER_VERSION
    parts = [int(part) for part in str(info["redis_version"]).split(".")[:3]]
    major, minor, patch = [*parts, 0, 0][:3]
    return major, minor, patch


def know_server_version(queue: Queue, info: dict[str, Any] | None) -> None:
    """Give ``queue`` Redis's version, read elsewhere. RQ asks for it once per queue with a blocking
    ``INFO`` (the receiver's first batch builds its job with it): an asyncio caller reads it on its
    own client instead, so a Redis that does not answer never blocks its event loop."""
    queue.redis_server_version = server_version(info)


class RQChanged(RuntimeError):
    """RQ's job no longer looks as :class:`JobTemplate` expects (tests/integration/test_rq_contract.py)."""


@dataclass(frozen=True)
class _Slot:
    """Where a filled job puts one of its own values: ``before + value + after``."""

    name: str  # "id", "time", "data" or "description"
    before: str = ""
    after: str = ""

    def fill(self, values: dict[str, Any]) -> Any:
        value = values[self.name]
        return self.before + value + self.after if self.before or self.after else value


Args = tuple[Any, ...]
MakeData = Callable[[str, Args, str], EnqueueData]  # (job id, job args, description) -> RQ's EnqueueData

_TEMPLATE_ID = "00000000-0000-4000-8000-0000000000aa"
_TEMPLATE_ARGS: Args = (["gha-exporter: template argument"],)
_TEMPLATE_DESCRIPTION = "gha-exporter: template description"


class JobTemplate:
    """RQ's commands to enqueue a job, built by RQ once, then filled per job.

    RQ building a job on a pipeline costs the receiver about 130 µs per batch (a job object, a UUID,
    timestamps, JSON, zlib, then redis-py's command stack); a filled template costs a tenth of it.
    Only a job's id, its timestamps (created, enqueued), its data and its description differ from one
    job to the next; the options (timeout, TTLs, retries, queue) are the template's. Building it
    checks that RQ's job still has that shape (:class:`RQChanged` otherwise).
    """

    def __init__(self, queue: Queue, make: MakeData) -> None:
        data = make(_TEMPLATE_ID, _TEMPLATE_ARGS, _TEMPLATE_DESCRIPTION)
        self._queue = queue
        self._make = make
        self._function: str = data.func  # named, as RQ stores it (shared.queueing.BATCH_FUNCTION)
        template_data = self._data(_TEMPLATE_ARGS)
        self._commands = [
            [self._slot(arg, template_data) for arg in command] for command in enqueue_commands(queue, data)
        ]
        found = {part.name for command in self._commands for part in command if isinstance(part, _Slot)}
        if not {"id", "data"} <= found:
            raise RQChanged(
                f"RQ's enqueue commands no longer carry the job's {sorted({'id', 'data'} - found)}"
            )

    def _data(self, args: Args) -> bytes:
        return zlib.compress(self._queue.serializer.dumps((self._function, None, args, {})))

    @staticmethod
    def _slot(arg: Any, template_data: bytes) -> Any:
        if isinstance(arg, bytes) and arg == template_data:
            return _Slot("data")
        if not isinstance(arg, str):
            return resp.encode(arg)
        if arg == _TEMPLATE_DESCRIPTION:
            return _Slot("description")
        if _TEMPLATE_ID in arg:
            before, _, after = arg.partition(_TEMPLATE_ID)
            return _Slot("id", before, after)
        try:
            utcparse(arg)
        except ValueError:
            return resp.encode(arg)
        return _Slot("time")

    def commands(
        self, args: Args, description: str, job_id: str | None = None, at: datetime | None = None
    ) -> list[list[Any]]:
        """The commands that enqueue a new job (id ``job_id``, or a new UUID) calling the template's
        function with ``args``, created and enqueued ``at`` (now)."""
        values = {
            "id": job_id or str(uuid.uuid4()),
            "time": utcformat(at or now()),
            "data": self._data(args),
            "description": description,
        }
        return [
            [part.fill(values) if isinstance(part, _Slot) else part for part in command]
            for command in self._commands
        ]

    def rq_commands(self, job_id: str, args: Args, description: str) -> list[tuple[Any, ...]]:
        """What RQ itself builds for the same job (the contract test compares the two)."""
        return enqueue_commands(self._queue, self._make(job_id, args, description))


# -- the worker's view of RQ's storage ----------------------------------------------------------
