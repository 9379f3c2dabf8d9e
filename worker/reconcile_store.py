"""What reconciliation keeps in Redis, read and written here only (the keys: :mod:`shared.keys`).

- ``reconcile``: a hash: ``next_pass`` (when the next pass is due, on any replica: the interval, or
  later when GitHub asked to wait), ``last_success:<hook>`` (when the reading that went through the
  hook's log back to its start began), ``hook_id:<hook>`` (``app/hook``'s id, learnt once),
  ``resume:<hook>`` (a log read in part: the cursor of its next older page, how far back it goes,
  when that reading began), ``rate_limit_remaining`` and ``rate_limit_reset`` (GitHub's last word,
  from a pass or a runners' poll: one token, one limit), ``github_wait_until`` (a rate limit's end:
  neither passes nor polls call GitHub before it);
- ``reconcile:redelivered:<hook id>:<guid>``: redeliveries requested for one delivery, expiring
  with GitHub's redelivery window; ``reconcile:unrecoverable:<hook id>:<guid>``: a delivery counted
  as unrecoverable (so it is counted once), expiring after three windows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from redis import Redis
from redis.typing import EncodableT, FieldT

from shared import keys
from shared.resp import text
from shared.settings_outbound import GithubSettings
from worker.github_calls import MAX_RATE_LIMIT, MAX_WAIT_SECONDS, Usage, header_number
from worker.textformat import stored_value


@dataclass(frozen=True)
class Status:
    """What the scrape shows of reconciliation: each configured hook's last successful pass, and the
    rate limit GitHub last reported."""

    last_success: dict[str, float]
    rate_remaining: int | None


@dataclass(frozen=True)
class Checkpoint:
    """Where a pass stopped reading a log: the cursor of its next older page, how far back the
    reading goes, when it began."""

    cursor: str
    since: float
    began: float


def read_status(connection: Redis, github: GithubSettings) -> Status:
    """What the scrape shows: each hook's last success; the rate limit, when GitHub is called."""
    hooks = github.hooks
    if not hooks and not github.runners:
        return Status({}, None)
    fields = [f"last_success:{hook}" for hook in hooks] + ["rate_limit_remaining"]
    *last, rate = connection.hmget(keys.RECONCILE_STATUS, fields)
    remaining = header_number(
        rate.decode(errors="replace") if isinstance(rate, bytes) else rate, MAX_RATE_LIMIT
    )
    return Status(
        {
            hook: float(stored)
            for hook, value in zip(hooks, last, strict=True)
            if value is not None
            and (stored := stored_value(value if isinstance(value, bytes) else value.encode())) is not None
        },
        None if remaining is None else int(remaining),  # as bounded as when it was read from GitHub
    )


WAIT_UNTIL = "github_wait_until"


def waiting(until: bytes | str | None, now: float) -> bool:
    """Whether a stored wait lasts past ``now`` (one further away than GitHub may ask is none)."""
    value = header_number(until.decode(errors="replace") if isinstance(until, bytes) else until, 1e12)
    return value is not None and now < value <= now + MAX_WAIT_SECONDS


class ReconcileStore:
    def __init__(self, connection: Redis) -> None:
        self._connection = connection

    def status(self) -> dict[str, str]:
        """The whole status hash, read once per pass."""
        return {text(k): text(v) for k, v in self._connection.hgetall(keys.RECONCILE_STATUS).items()}

    def save(self, updates: Mapping[FieldT, EncodableT]) -> None:
        if updates:
            self._connection.hset(keys.RECONCILE_STATUS, mapping=dict(updates))

    def next_pass(self) -> bytes | None:
        return self._connection.hget(keys.RECONCILE_STATUS, "next_pass")  # type: ignore[return-value]

    def github_waits(self, now: float) -> bool:
        """Whether GitHub asked us to wait (a rate limit of a pass or a poll) until after ``now``."""
        return waiting(self._connection.hget(keys.RECONCILE_STATUS, WAIT_UNTIL), now)

    def note_github(self, usage: Usage, wait: float | None, now: float) -> None:
        """GitHub's last word on the rate limit, and the end of a wait it asked for."""
        updates: dict[FieldT, EncodableT] = {}
        if usage.rate_remaining is not None:
            updates["rate_limit_remaining"] = str(usage.rate_remaining)
        if usage.rate_reset is not None:
            updates["rate_limit_reset"] = str(int(usage.rate_reset))
        if wait:
            updates[WAIT_UNTIL] = str(math.ceil(now + min(wait, MAX_WAIT_SECONDS)))  # whole seconds
        self.save(updates)

    @staticmethod
    def checkpoint(status: Mapping[str, str], hook: str) -> Checkpoint | None:
        """Where an earlier pass stopped reading ``hook``'s log; None: read from the newest (also
        for a field that is not ours)."""
        raw = status.get(f"resume:{hook}")
        if raw is None:
            return None
        try:
            found = json.loads(raw)
            return Checkpoint(str(found["cursor"]), float(found["since"]), float(found["began"]))
        except (ValueError, KeyError, TypeError):
            return None

    def keep_checkpoint(self, hook: str, point: Checkpoint | None) -> None:
        """A log read in part: where the next pass resumes; None (read to its start): nothing kept."""
        name = f"resume:{hook}"
        if point is None:
            self._connection.hdel(keys.RECONCILE_STATUS, name)
            return
        text = json.dumps({"cursor": point.cursor, "since": point.since, "began": point.began})
        self._connection.hset(keys.RECONCILE_STATUS, name, text)

    def keep_hook_id(self, status: dict[str, str], hook: str, hook_id: int) -> None:
        self._connection.hset(keys.RECONCILE_STATUS, f"hook_id:{hook}", str(hook_id))
        status[f"hook_id:{hook}"] = str(hook_id)

    def redelivered(self, hook_id: int, guids: list[str]) -> dict[str, int]:
        """Redeliveries already requested, per delivery (those with none left out)."""
        if not guids:
            return {}
        values = self._connection.mget([keys.redelivered(hook_id, guid) for guid in guids])
        return {guid: int(value) for guid, value in zip(guids, values, strict=True) if value is not None}

    def count_redelivery(self, hook_id: int, guid: str, window: int) -> None:
        key = keys.redelivered(hook_id, guid)
        with self._connection.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, window)
            pipe.execute()

    def first_unrecoverable(self, hook_id: int, guid: str, action: str, window: int) -> bool:
        """True the first time a delivery is found unrecoverable (it is counted once)."""
        return bool(self._connection.set(keys.unrecoverable(hook_id, guid), action, nx=True, ex=window * 3))
