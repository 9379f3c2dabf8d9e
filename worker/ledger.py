"""Job/run state and metric aggregates in Redis, changed together in one atomic step.

:meth:`Ledger.apply` owns the transaction: ``WATCH`` the states a batch touches; read them (one
script); take the states of its deliveries' marks as the caller read them with their bodies (else
one script of :mod:`shared.marks`); ask the caller's decision, a function of what was read; then
``MULTI`` + the marks turned to applied if each is still as read, which sets a gate key + one
script that writes the new states, moves the in-flight set members and the aggregates, only if the
gate is there + ``EXEC``. If another worker changed a state in between, ``EXEC`` fails; if it
applied one of the deliveries, neither script writes; either way the batch is decided again. So a
job is counted with all its metrics or not at all, exactly once, by any number of workers. The
marks are checked rather than watched: Redis 7.0 compares each key a ``WATCH`` adds with every key
already watched, so 500 deliveries' marks beside their states made ``WATCH`` cost Redis more than
reading the states.

Its keys (built by :mod:`shared.keys`): the job and run states, the in-flight sets, the aggregates
and their label sets, the recent failures, the trace outbox (entries added; :mod:`worker.outbox`
sends them), and the gate of one transaction.

Redis Cluster is not supported (the scripts touch keys they are not given as KEYS).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from shared import keys
from shared.marks import DeliveryMarks, MarkState
from shared.scripts import LuaScript
from worker.codec import InflightGroup
from worker.metrics import LabelPolicy, Update
from worker.state import State
from worker.write_encoding import WriteEncoder, batch_json

MAX_CONFLICT_RETRIES = 50
R = TypeVar("R")


@dataclass(frozen=True)
class Stored:
    """What a decision sees: the states of the attempts (copies, free to change), and the marks of
    the batch's deliveries that are already applied."""

    states: dict[str, State]
    applied: frozenset[str]


@dataclass(frozen=True)
class Changes:
    """What a decision writes: the final states, the aggregate movements, the deliveries applied."""

    states: Mapping[str, State] = field(default_factory=dict)
    updates: Sequence[Update] = ()
    applied: Sequence[str] = ()
    failed: Sequence[str] = ()  # completed jobs that did not succeed (JSON), for the recent list
    groups: Mapping[str, InflightGroup] = field(default_factory=dict)  # of attempts entering a phase
    traces: Sequence[bytes] = ()  # outbox entries of the jobs and runs completed (worker.trace_entries)


Decide = Callable[[Stored], tuple[Changes, R]]


class Ledger:
    def __init__(
        self,
        connection: Redis,
        marks: DeliveryMarks,
        policy: LabelPolicy,
        *,
        job_ttl: int,
        run_ttl: int,
        on_conflict: Callable[[], None] = lambda: None,
        recent: int = 200,
        outbox: tuple[int, int] | None = None,
    ) -> None:
        self._connection = connection
        self._marks = marks
        self._on_conflict = on_conflict
        self._encoder = WriteEncoder(
            policy, settled_ttl=marks.ttl, job_ttl=job_ttl, run_ttl=run_ttl, recent=recent, outbox=outbox
        )
        self._read = LuaScript("worker", "ledger.read")
        self._write = LuaScript("worker", "ledger.write")

    def apply(
        self,
        attempt_keys: Sequence[str],
        marks: Sequence[str],
        decide: Decide[R],
        mark_states: Sequence[MarkState] | None = None,
    ) -> R:
        """Decide on what is stored and write the decision, atomically; decided again on conflict.

        ``decide`` must depend only on what it is given: it may be called several times.
        ``mark_states``: the marks' states as the caller just read them, if it did (they are checked when
        written, so a first attempt need not read them again; a retry does).
        """
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                return self._attempt(attempt_keys, marks, decide, mark_states)
            except WatchError:
                self._on_conflict()
                mark_states = None
        raise RuntimeError(f"batch kept conflicting with other workers {MAX_CONFLICT_RETRIES} times")

    def add(self, updates: Sequence[Update]) -> None:
        """Move aggregates alone (no state, no delivery), e.g. to fill a benchmark's Redis."""
        self.apply((), (), lambda _stored: (Changes(updates=updates), None))

    def _attempt(
        self,
        attempt_keys: Sequence[str],
        marks: Sequence[str],
        decide: Decide[R],
        read: Sequence[MarkState] | None,
    ) -> R:
        with self._connection.pipeline() as pipe:
            if attempt_keys:
                pipe.watch(*[keys.state(k) for k in attempt_keys])  # type: ignore[no-untyped-call]
            initial = self._states(pipe, attempt_keys)
            if read is None:
                read = self._marks.states(marks)
            found = dict(zip(marks, read, strict=True))  # not watched: checked when settled
            applied = frozenset(m for m, s in found.items() if s is MarkState.APPLIED)
            changes, result = decide(Stored({k: dict(v) for k, v in initial.items()}, applied))
            batch = self._encoder.batch(initial, changes)
            if batch is None and not changes.applied:
                pipe.reset()
                return result
            gate = keys.gate(uuid.uuid4().hex) if batch is not None and changes.applied else ""
            pipe.multi()
            self._marks.settle(pipe, changes.applied, [found[m] for m in changes.applied], gate)
            if batch is not None:
                self._write(pipe, (), [batch_json({**batch, "gate": gate}), *changes.traces])
            replies = pipe.execute()
            if changes.applied and not replies[0]:
                raise WatchError("another worker applied a delivery of this batch meanwhile")
            return result

    def _states(self, pipe: Pipeline, attempt_keys: Sequence[str]) -> dict[str, State]:
        if not attempt_keys:
            return {}
        raw = self._read(pipe, [keys.state(k) for k in attempt_keys])
        states = {}
        for attempt_key, flat in zip(attempt_keys, raw, strict=True):
            pairs = [item.decode() if isinstance(item, bytes) else str(item) for item in flat]
            states[attempt_key] = dict(zip(pairs[::2], pairs[1::2], strict=True))
        return states
