"""Apply a batch of queued envelopes: parse, decide against the state in Redis, commit atomically.

Every delivery is accounted for exactly once, in Redis and in the same transaction as the state
it moves (:meth:`worker.ledger.Ledger.apply`): ``webhook_deliveries_processed_total{event, result}``
with result ``changed``, ``unchanged`` (a repeat, or older than the state) or ``invalid`` (a
payload that cannot be used). Each delivery's mark (:mod:`shared.marks`) holds its body until then
(read for the whole batch in one round trip) and turns to applied in that transaction, so a retried
batch (a worker killed after committing) skips what it already applied.

A payload that cannot be used is logged with its delivery id and counted; it never raises and
never stops its neighbours in the batch. Redis errors do raise, so RQ retries the job.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger

from shared import keys
from shared.envelope import Envelope, EnvelopeError
from shared.marks import DeliveryMarks, MarkState
from shared.queueing import QUEUED_EVENTS
from worker import plausible
from worker.busy_runners import runner_key
from worker.ledger import Changes, Ledger, Stored
from worker.metrics import LabelPolicy, LocalMetrics, Update, action_label
from worker.payloads import JobEvent, PayloadError, RunEvent, parse
from worker.state import Effects, State, Transitions

ERROR_EVENT_UNKNOWN = "unknown"


@dataclass(frozen=True)
class Item:
    """One envelope of the batch, parsed or with the reason it could not be."""

    envelope: Envelope
    mark_state: MarkState  # as read with the body
    event: JobEvent | RunEvent | None
    error: str = ""

    @property
    def event_name(self) -> str:
        return self.envelope.event if self.envelope.event in QUEUED_EVENTS else "other"

    @functools.cached_property
    def mark(self) -> str:  # asked three times per delivery
        return keys.mark(self.envelope.hook_id, self.envelope.delivery_id)

    @functools.cached_property
    def touched(self) -> tuple[str | None, str | None, str | None]:
        """The keys of the states the delivery moves: its attempt's, its run's (a job's), its
        self-hosted runner's (a job's, from ``in_progress`` on)."""
        event = self.event
        if event is None:
            return None, None, None
        if isinstance(event, RunEvent):
            return keys.run_attempt(event.run_id, event.run_attempt), None, None
        run = keys.run_attempt(event.run_id, event.run_attempt) if event.run_id is not None else None
        return keys.job_attempt(event.job_id, event.run_attempt), run, runner_key(event)

    def state_keys(self) -> list[str]:
        return [key for key in self.touched if key is not None]


@dataclass(frozen=True)
class Verdict:
    """What one delivery of a batch came to."""

    item: Item
    result: str  # changed, unchanged, invalid, or replayed (already applied by an earlier attempt)


class Processor:
    def __init__(
        self,
        ledger: Ledger,
        marks: DeliveryMarks,
        policy: LabelPolicy,
        transitions: Transitions,
        local: LocalMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ledger = ledger
        self._marks = marks
        self._policy = policy
        self._transitions = transitions
        self._local = local
        self._clock = clock
        self._limits = plausible.Limits.of(policy.settings)
        self._processed_updates: dict[tuple[str, str], Update] = {}

    def process_batch(self, entries: Sequence[Any]) -> None:
        envelopes = [envelope for envelope in map(self._envelope, entries) if envelope is not None]
        if not envelopes:
            return
        items = self._items(envelopes)
        attempts = sorted({k for item in items for k in item.state_keys()})
        outcomes = self._ledger.apply(
            attempts,
            [item.mark for item in items],
            functools.partial(self.decide_batch, items),
            [item.mark_state for item in items],  # the marks as read with their bodies
        )
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

    def reject_batch(self, detail: str) -> None:
        """A queued job whose arguments are not a list of envelopes."""
        logger.warning("dropped a malformed queue job: {}", detail)
        self._local.errors.labels(ERROR_EVENT_UNKNOWN, "bad_batch").inc()

    def _envelope(self, entry: Any) -> Envelope | None:
        try:
            return Envelope.from_dict(entry)
        except EnvelopeError as exc:
            logger.warning("dropped a queued item that is not an envelope: {}", exc)
            self._local.errors.labels(ERROR_EVENT_UNKNOWN, "bad_envelope").inc()
            return None

    def _items(self, envelopes: list[Envelope]) -> list[Item]:
        """Each envelope parsed, its body read from its mark (all marks of the batch at once)."""
        marks = self._marks.read([keys.mark(e.hook_id, e.delivery_id) for e in envelopes])
        items = []
        for envelope, mark in zip(envelopes, marks, strict=True):
            if mark.state is MarkState.APPLIED:  # by an earlier attempt of this batch: replayed below
                items.append(Item(envelope, mark.state, None))
            elif mark.unreadable:
                logger.warning("delivery {} ({}): its stored body does not decompress", envelope.delivery_id,
                               envelope.event)  # fmt: skip
                items.append(Item(envelope, mark.state, None, "body_unreadable"))
            elif mark.body is None:
                logger.warning("delivery {} ({}): its body is gone", envelope.delivery_id, envelope.event)
                items.append(Item(envelope, mark.state, None, "body_missing"))
            else:
                items.append(self._parse(envelope, mark.body, mark.state))
        return items

    def _parse(self, envelope: Envelope, body: bytes, mark_state: MarkState) -> Item:
        try:
            event = parse(envelope.event, body)
            plausible.check(event, self._limits)
            return Item(envelope, mark_state, event)
        except PayloadError as exc:
            logger.warning("delivery {} ({}) unusable: {}", envelope.delivery_id, envelope.event, exc)
            return Item(envelope, mark_state, None, exc.reason)

    def decide_batch(self, items: list[Item], stored: Stored) -> tuple[Changes, list[Verdict]]:
        """The batch's outcomes and changes, given what is stored (no I/O: the ledger may ask again)."""
        states = stored.states
        effects = Effects()
        outcomes = []
        seen: set[str] = set()
        for item in items:
            if item.mark in stored.applied or item.mark in seen:
                outcomes.append(Verdict(item, "replayed"))
                continue
            seen.add(item.mark)
            result = "invalid" if item.event is None else self._decide(item, states, effects)
            outcomes.append(Verdict(item, result))
            effects.updates.append(self._processed(item.event_name, result))
        seen_marks = sorted(seen)
        return Changes(
            states, effects.updates, seen_marks, effects.failed, effects.groups, effects.traces
        ), outcomes

    def _processed(self, event: str, result: str) -> Update:
        """The count of one delivery processed (the same few updates, made once: updates are frozen)."""
        update = self._processed_updates.get((event, result))
        if update is None:
            update = self._processed_updates[(event, result)] = self._policy.update(
                "webhook_deliveries_processed_total", {"event": event, "result": result}, "inc", 1
            )
        return update

    def _decide(self, item: Item, states: dict[str, State], effects: Effects) -> str:
        touched = item.state_keys()
        before = [dict(states[k]) for k in touched]
        moved, cut = len(effects.updates), len(effects.cut)
        event, received_at = item.event, item.envelope.received_at
        own, run, runner = item.touched
        if isinstance(event, JobEvent) and own is not None:
            self._transitions.job(
                states[own],
                _get(states, run),
                event,
                received_at,
                effects,
                runner=None if runner is None else (runner, states[runner]),
            )
        elif isinstance(event, RunEvent) and own is not None:
            self._transitions.run(states[own], event, received_at, effects)
        changed = len(effects.updates) > moved or before != [states[k] for k in touched]
        if changed:
            for name in effects.cut[cut:]:
                effects.updates.append(
                    self._policy.update("label_values_truncated_total", {"label": name}, "inc", 1)
                )
        del effects.cut[cut:]
        return "changed" if changed else "unchanged"


def _get(states: dict[str, State], key: str | None) -> State | None:
    return None if key is None else states[key]
