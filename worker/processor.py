"""Apply a batch of queued envelopes: parse, decide against the state in Redis, commit atomically.

Every delivery is accounted for exactly once, in Redis and in the same transaction as the state
it moves: ``webhook_deliveries_processed_total{event, result}`` with result ``changed``,
``unchanged`` (a repeat, or older than the state) or ``invalid`` (a payload that cannot be used).
The receiver's redelivery mark of each delivery holds its body until then (read for the whole batch
with one MGET) and is turned to ``done`` in that transaction, so a retried RQ job (a worker killed
after committing) skips what it already applied.

A payload that cannot be used is logged with its delivery id and counted; it never raises and
never stops its neighbours in the batch. Redis errors do raise, so RQ retries the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from redis.exceptions import WatchError

from shared.envelope import Envelope, EnvelopeError
from shared.queueing import QUEUED_EVENTS, delivery_key
from worker.ledger import Ledger, state_key
from worker.metrics import LocalMetrics, action_label
from worker.payloads import JobEvent, PayloadError, RunEvent, parse
from worker.state import Effects, State, Transitions, job_key, run_key

ERROR_EVENT_UNKNOWN = "unknown"
MAX_CONFLICT_RETRIES = 50


@dataclass(frozen=True)
class Item:
    """One envelope of the batch, parsed or with the reason it could not be."""

    envelope: Envelope
    event: JobEvent | RunEvent | None
    error: str = ""

    @property
    def event_name(self) -> str:
        return self.envelope.event if self.envelope.event in QUEUED_EVENTS else "other"

    @property
    def mark(self) -> str:
        return delivery_key(self.envelope.hook_id, self.envelope.delivery_id)

    def state_keys(self) -> list[str]:
        event = self.event
        if event is None:
            return []
        if isinstance(event, RunEvent):
            return [run_key(event.run_id, event.run_attempt)]
        keys = [job_key(event.job_id, event.run_attempt)]
        if event.run_id is not None:
            keys.append(run_key(event.run_id, event.run_attempt))
        return keys


@dataclass(frozen=True)
class Outcome:
    item: Item
    result: str  # changed, unchanged, invalid, or replayed (already applied by an earlier attempt)


class Processor:
    def __init__(
        self,
        ledger: Ledger,
        transitions: Transitions,
        local: LocalMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._transitions = transitions
        self._local = local
        self._clock = clock

    def process_batch(self, entries: Sequence[Any]) -> None:
        envelopes = [envelope for envelope in map(self._envelope, entries) if envelope is not None]
        if not envelopes:
            return
        items = self._items(envelopes)
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                outcomes = self._apply(items)
                break
            except WatchError:
                self._local.conflicts.inc()
        else:
            raise RuntimeError(f"batch kept conflicting with other workers {MAX_CONFLICT_RETRIES} times")
        now = self._clock()
        for outcome in outcomes:
            item = outcome.item
            if outcome.result == "invalid":
                self._local.errors.labels(item.event_name, item.error).inc()
                continue
            if item.event is None and (outcome.result != "replayed" or item.error):
                continue  # an unusable payload is counted once, as an error, on its first attempt
            effect = outcome.result
            action = "other" if item.event is None else action_label(item.envelope.event, item.event.action)
            self._local.events.labels(item.envelope.event, action, effect).inc()
            self._local.lag.observe(max(0.0, now - item.envelope.received_at))

    def reject_job(self, detail: str) -> None:
        """A queued job whose arguments are not a list of envelopes."""
        logger.warning("dropped a malformed queue job: {}", detail)
        self._local.errors.labels(ERROR_EVENT_UNKNOWN, "bad_job").inc()

    def _envelope(self, entry: Any) -> Envelope | None:
        try:
            return Envelope.from_dict(entry)
        except EnvelopeError as exc:
            logger.warning("dropped a queued item that is not an envelope: {}", exc)
            self._local.errors.labels(ERROR_EVENT_UNKNOWN, "bad_envelope").inc()
            return None

    def _items(self, envelopes: list[Envelope]) -> list[Item]:
        """Each envelope parsed, its body inline or read from its mark (all marks of the batch at once)."""
        keys = [delivery_key(e.hook_id, e.delivery_id) for e in envelopes if e.body is None]
        stored = iter(self._ledger.connection.mget(keys) if keys else [])
        items = []
        for envelope in envelopes:
            raw = envelope.body if envelope.body is not None else next(stored)
            if raw == b"done":  # applied by an earlier attempt of this job: replayed below
                items.append(Item(envelope, None))
            elif raw is None:
                logger.warning("delivery {} ({}): its body is gone", envelope.delivery_id, envelope.event)
                items.append(Item(envelope, None, "body_missing"))
            else:
                body = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
                items.append(self._parse(envelope, body))
        return items

    def _parse(self, envelope: Envelope, body: str) -> Item:
        try:
            return Item(envelope, parse(envelope.event, body))
        except PayloadError as exc:
            logger.warning("delivery {} ({}) unusable: {}", envelope.delivery_id, envelope.event, exc)
            return Item(envelope, None, exc.reason)

    def _apply(self, items: list[Item]) -> list[Outcome]:
        """One optimistic transaction; raises WatchError when another worker got there first."""
        keys = sorted({k for item in items for k in item.state_keys()})
        marks = [item.mark for item in items]
        with self._ledger.connection.pipeline() as pipe:
            pipe.watch(*(state_key(k) for k in keys), *marks)  # type: ignore[no-untyped-call]
            initial, done = self._ledger.read(pipe, keys, marks)
            states: dict[str, State] = {k: dict(v) for k, v in initial.items()}
            effects = Effects()
            outcomes = []
            seen: set[str] = set()
            for item in items:
                if item.mark in done or item.mark in seen:
                    outcomes.append(Outcome(item, "replayed"))
                    continue
                seen.add(item.mark)
                result = "invalid" if item.event is None else self._decide(item, states, effects)
                outcomes.append(Outcome(item, result))
                effects.updates.append(
                    self._ledger.policy.update(
                        "webhook_deliveries_processed_total",
                        {"event": item.event_name, "result": result},
                        "inc",
                        1,
                    )
                )
            pipe.multi()
            if self._ledger.write(pipe, initial, states, effects.updates, sorted(seen)):
                pipe.execute()
            else:
                pipe.reset()
            return outcomes

    def _decide(self, item: Item, states: dict[str, State], effects: Effects) -> str:
        touched = item.state_keys()
        before = [dict(states[k]) for k in touched]
        moved = len(effects.updates)
        event, received_at = item.event, item.envelope.received_at
        if isinstance(event, JobEvent):
            run = states.get(touched[1]) if len(touched) > 1 else None
            self._transitions.job(states[touched[0]], run, event, received_at, effects)
        elif isinstance(event, RunEvent):
            self._transitions.run(states[touched[0]], event, received_at, effects)
        changed = len(effects.updates) > moved or before != [states[k] for k in touched]
        return "changed" if changed else "unchanged"
