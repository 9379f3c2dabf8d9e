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
and their label sets, the recent failures, and the gate of one transaction.

Redis Cluster is not supported (the scripts touch keys they are not given as KEYS).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import orjson
from redis import Redis
from redis.client import Pipeline
from redis.exceptions import WatchError

from shared import keys
from shared.marks import DeliveryMarks, MarkState
from shared.scripts import LuaScript
from worker import codec
from worker.codec import InflightGroup
from worker.inflight import Inflight
from worker.metrics import BY_NAME, JOB_PHASE_GAUGES, OVERFLOW, RUN_PHASE_GAUGES, LabelPolicy, Update
from worker.state import INFLIGHT_JOB_PHASES, INFLIGHT_RUN_PHASES, State

MAX_CONFLICT_RETRIES = 50
MAX_KEPT_LABEL_TEXTS = 20_000  # series whose label text the ledger keeps (a few MB at most)
R = TypeVar("R")


def score_pairs(reply: list[Any]) -> tuple[Sequence[bytes], Sequence[Any]]:
    """``ZRANGE ... WITHSCORES`` unparsed: its members and their scores (pairs under RESP3, a flat
    list under RESP2)."""
    if reply and isinstance(reply[0], list):
        members, scores = zip(*reply, strict=True)
        return members, scores
    return reply[0::2], reply[1::2]


@dataclass(frozen=True)
class Snapshot:
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


Decide = Callable[[Snapshot], tuple[Changes, R]]


def merged_increments(updates: Sequence[Update]) -> list[tuple[Update, int]]:
    """Whole-number increments of one series summed into one update, at the place of the first,
    with how many it stands for (a batch counts ``webhook_deliveries_processed_total`` once per
    delivery, and a job redelivered over and over moves the same series many times); the other
    updates as they are, in order, standing for one. Fractional increments (costs) are left apart,
    so a total does not depend on how deliveries were batched."""
    kept: list[Update] = []
    totals: list[float] = []
    counts: list[int] = []
    first: dict[tuple[str, tuple[str, ...]], int] = {}
    for update in updates:
        if update.op == "inc" and float(update.value).is_integer():
            series = (update.family, update.labels)
            at = first.get(series)
            if at is not None:
                totals[at] += update.value
                counts[at] += 1
                continue
            first[series] = len(kept)
        kept.append(update)
        totals.append(update.value)
        counts.append(1)
    # one new update per merged series, made once (a copy per merge was a quarter of encoding a batch)
    return [
        (update if count == 1 else replace(update, value=total), count)
        for update, total, count in zip(kept, totals, counts, strict=True)
    ]


def batch_json(batch: dict[str, Any]) -> bytes:
    """The apply script's argument: by orjson (``json`` took a twentieth of the worker's time), or by
    ``json`` for what orjson refuses (an integer past 64 bits, a lone surrogate); the same JSON."""
    try:
        return orjson.dumps(batch)
    except orjson.JSONEncodeError:
        return json.dumps(batch, separators=(",", ":")).encode()


def _group_of(member: str) -> InflightGroup:
    """The group of a member written before (a state whose phase moved without a new group)."""
    return codec.inflight_parts_all([member.encode()])[0][0]


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
    ) -> None:
        self._connection = connection
        self._recent = recent
        self._marks = marks
        self._policy = policy
        self._job_ttl = job_ttl
        self._run_ttl = run_ttl
        self._on_conflict = on_conflict
        self._limit = policy.settings.max_series_per_family
        self._texts: dict[str, tuple[str, str, str, str]] = {}
        self._label_texts: dict[tuple[str, tuple[str, ...]], str] = {}
        self._read = LuaScript("worker", "ledger.read")
        self._write = LuaScript("worker", "ledger.apply")
        self._sweep = LuaScript("worker", "ledger.sweep")
        self._summary = LuaScript("worker", "ledger.summary")

    def reading_on(self, connection: Redis) -> Ledger:
        """The same ledger on another connection (the scrape's, with its own socket timeout)."""
        if connection is self._connection:
            return self
        return Ledger(
            connection, self._marks, self._policy, job_ttl=self._job_ttl, run_ttl=self._run_ttl,
            recent=self._recent,
        )  # fmt: skip

    # -- names -------------------------------------------------------------------------------
    def agg_key(self, family: str) -> str:
        return keys.aggregate(family, self._policy.names[family])

    def series_key(self, family: str) -> str:
        return keys.labelsets(family, self._policy.names[family])

    # -- one batch ---------------------------------------------------------------------------
    def apply(
        self,
        attempt_keys: Sequence[str],
        marks: Sequence[str],
        decide: Decide[R],
        held: Sequence[MarkState] | None = None,
    ) -> R:
        """Decide on what is stored and write the decision, atomically; decided again on conflict.

        ``decide`` must depend only on the snapshot it is given: it may be called several times.
        ``held``: the marks' states as the caller just read them, if it did (they are checked when
        written, so a first attempt need not read them again; a retry does).
        """
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                return self._attempt(attempt_keys, marks, decide, held)
            except WatchError:
                self._on_conflict()
                held = None
        raise RuntimeError(f"batch kept conflicting with other workers {MAX_CONFLICT_RETRIES} times")

    def add(self, updates: Sequence[Update]) -> None:
        """Move aggregates alone (no state, no delivery), e.g. to fill a benchmark's Redis."""
        self.apply((), (), lambda _snapshot: (Changes(updates=updates), None))

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
                read = self._marks.held(marks)
            held = dict(zip(marks, read, strict=True))  # not watched: checked when applied
            applied = frozenset(m for m, s in held.items() if s is MarkState.APPLIED)
            changes, result = decide(Snapshot({k: dict(v) for k, v in initial.items()}, applied))
            batch = self._write_batch(initial, changes)
            if batch is None and not changes.applied:
                pipe.reset()
                return result
            gate = keys.gate(uuid.uuid4().hex) if batch is not None and changes.applied else ""
            pipe.multi()
            self._marks.apply(pipe, changes.applied, [held[m] for m in changes.applied], gate)
            if batch is not None:
                self._write(pipe, (), [batch_json({**batch, "gate": gate})])
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

    def _write_batch(self, initial: Mapping[str, State], changes: Changes) -> dict[str, Any] | None:
        """The batch's write, for the apply script (``None`` when there is nothing to write)."""
        batch: dict[str, Any] = {
            "limit": self._limit, "sep": codec.SEPARATOR, "at": codec.AT,
            "states": [], "zrem": [], "zadd": [], "aggs": [],
        }  # fmt: skip
        for attempt_key, state in changes.states.items():
            before = initial.get(attempt_key, {})
            group = changes.groups.get(attempt_key) if state.get("inflight") else None
            if group is not None:  # its member in the in-flight set, kept in the state to leave it by
                state = {**state, "member": codec.inflight_member(group, attempt_key)}  # noqa: PLW2901
            if state == before:
                continue
            if not state.get("inflight"):  # settled: kept for late deliveries as long as their marks
                ttl = self._marks.ttl()
            else:
                ttl = self._job_ttl if attempt_key.startswith("job:") else self._run_ttl
            flat = [item for pair in sorted(state.items()) for item in pair]
            batch["states"].append([keys.state(attempt_key), flat, ttl])
            kind = attempt_key.split(":", 1)[0]
            old = (before.get("inflight"), before.get("member"), before.get("score"))
            new = (state.get("inflight"), state.get("member"), state.get("score"))
            if old != new:
                if old[0] and old[1]:
                    batch["zrem"].append([keys.inflight(kind, old[0]), old[1]])
                if new[0] and new[1]:
                    guard = self._inflight_guard(kind, new[0], group or _group_of(new[1]), attempt_key)
                    batch["zadd"].append(
                        [keys.inflight(kind, new[0]), new[2], new[1], *guard, keys.state(attempt_key)]
                    )
        batch["aggs"] = [self._encode(update, count) for update, count in merged_increments(changes.updates)]
        batch["recent"] = [keys.RECENT_FAILURES, self._recent, *changes.failed] if changes.failed else []
        folded = BY_NAME["series_folded_total"].name
        batch["folded"] = [self.agg_key(folded), codec.VALUE]
        if not (batch["states"] or batch["aggs"] or batch["recent"]):
            return None
        return batch

    def _inflight_guard(self, kind: str, phase: str, group: InflightGroup, attempt: str) -> list[str]:
        """The cardinality guard of an in-flight gauge, for the apply script: its label-set set (''
        when the gauge has no labels), the attempt's label text there, its member folded to
        ``__overflow__``, and the ``series_folded_total`` labels of the gauge."""
        gauge = (JOB_PHASE_GAUGES if kind == "job" else RUN_PHASE_GAUGES)[phase].name
        names = self.inflight_labels(kind)
        if not names:
            return ["", "", codec.inflight_member(group, attempt), ""]
        return [
            keys.labelsets(gauge, names),
            codec.label_text(names, codec.group_labels(group, names)),
            codec.inflight_member(codec.folded_group(group, OVERFLOW), attempt),
            codec.label_text(BY_NAME["series_folded_total"].default, [gauge]),
        ]

    def inflight_labels(self, kind: str) -> tuple[str, ...]:
        """The labels of the in-flight gauges of ``kind``: the first values of a member's group."""
        repository = ("repository",) if self._policy.settings.inflight_repository_label else ()
        return ("runs_on", "runner_group", *repository) if kind == "job" else repository

    def _encode(self, update: Update, count: int = 1) -> list[Any]:
        """An update for the apply script; ``count``: how many updates it stands for (each would
        count once in ``series_folded_total`` if folded)."""
        family = BY_NAME[update.family]
        if update.op == "inc":
            fields = codec.counter_fields(update.value)
        elif update.op == "set":
            fields = codec.latest_fields(update.value, update.at)
        else:
            fields = codec.observation_fields(
                update.value, self._policy.buckets_of(update.family), update.exemplar, update.at
            )
        agg_key, series_key, overflow, folded = self._family_texts(update.family)
        return [
            agg_key,
            series_key if family.configurable else "",
            self._label_text(update.family, update.labels),
            overflow,
            folded,
            fields,
            count,
        ]

    def _label_text(self, family: str, labels: tuple[str, ...]) -> str:
        """A series' label text, kept for the next update of the same series (a fifth of encoding a
        batch); forgotten all at once past :data:`MAX_KEPT_LABEL_TEXTS`."""
        text = self._label_texts.get((family, labels))
        if text is None:
            if len(self._label_texts) >= MAX_KEPT_LABEL_TEXTS:
                self._label_texts.clear()
            text = self._label_texts[(family, labels)] = codec.label_text(self._policy.names[family], labels)
        return text

    def _family_texts(self, family: str) -> tuple[str, str, str, str]:
        """A family's keys, its overflow label text and its ``series_folded_total`` labels: the same
        for every update, made once (they were a fifth of encoding a batch)."""
        texts = self._texts.get(family)
        if texts is None:
            names = self._policy.names[family]
            texts = self._texts[family] = (
                self.agg_key(family),
                self.series_key(family),
                codec.label_text(names, [OVERFLOW] * len(names)),
                codec.label_text(BY_NAME["series_folded_total"].default, [family]),
            )
        return texts

    # -- expiry ------------------------------------------------------------------------------
    def sweep(self, now: float) -> int:
        """Count and drop in-flight entries whose state expired (``state.*_ttl_seconds`` after its
        last write); safe to run on every worker."""
        zsets, args = [], [repr(now), keys.state(""), codec.SEPARATOR]
        expired_key = self.agg_key("state_expired_total")
        expired_names = self._policy.names["state_expired_total"]
        for kind, phases, ttl in (
            ("job", INFLIGHT_JOB_PHASES, self._job_ttl),
            ("run", INFLIGHT_RUN_PHASES, self._run_ttl),
        ):
            for phase in phases:
                zsets.append(keys.inflight(kind, phase))
                labels = codec.label_text(expired_names, [kind, phase])
                args += [str(ttl), expired_key, codec.field_name(labels, codec.VALUE)]
        return int(self._sweep(self._connection, zsets, args))

    # -- reading, at scrape time ---------------------------------------------------------------
    def read_fields(self) -> dict[str, dict[bytes, bytes]]:
        """Every family's hash as stored (``{family: {field: value}}``, see :mod:`worker.codec`), at once."""
        pipe = self._connection.pipeline(transaction=False)
        names = [family.name for family in BY_NAME.values()]
        for name in names:
            pipe.hgetall(self.agg_key(name))
        return dict(zip(names, pipe.execute(), strict=True))

    def read_aggregates(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{family: {label text: {suffix: value}}}`` for every family."""
        return {name: codec.decode(raw) for name, raw in self.read_fields().items()}

    def read_inflight(self) -> Inflight:
        """Every in-flight set, counted per group by Redis at once; the attempts listed a page at a
        time when asked (:mod:`worker.inflight`)."""
        wanted = [("job", p) for p in INFLIGHT_JOB_PHASES] + [("run", p) for p in INFLIGHT_RUN_PHASES]
        sets = [keys.inflight(kind, phase) for kind, phase in wanted]
        replies = self._summary(self._connection, sets, [codec.SEPARATOR])
        summary = {
            place: [(flat[i], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]
            for place, flat in zip(wanted, replies, strict=True)
        }
        return Inflight(summary, self.inflight_page)

    def inflight_page(
        self, kind: str, phase: str, start: int, count: int
    ) -> tuple[Sequence[bytes], Sequence[Any]]:
        """Members ``start`` to ``start + count - 1`` of an in-flight set, with their scores."""
        # the reply as it comes: redis-py's pairing of WITHSCORES took most of the time
        reply = self._connection.execute_command(  # type: ignore[no-untyped-call]
            "ZRANGE", keys.inflight(kind, phase), start, start + count - 1, "WITHSCORES"
        )
        return score_pairs(reply)

    def read_recent_failures(self) -> list[dict[str, Any]]:
        """The completed jobs that did not succeed, newest first (by ``completed_at``)."""
        entries = [json.loads(raw) for raw in self._connection.lrange(keys.RECENT_FAILURES, 0, -1)]
        return sorted(entries, key=lambda e: e.get("completed_at") or 0.0, reverse=True)

    def read_states(self, attempt_keys: Sequence[str], fields: Sequence[str]) -> list[list[str | None]]:
        """Some fields of the states of ``attempt_keys`` (``None`` where absent), in one round trip."""
        pipe = self._connection.pipeline(transaction=False)
        for attempt_key in attempt_keys:
            pipe.hmget(keys.state(attempt_key), list(fields))
        return [[None if value is None else value.decode() for value in values] for values in pipe.execute()]
