"""Apply a batch of queued envelopes: parse, decide against the state in Redis, commit atomically.

A payload that cannot be used is logged with its delivery id and counted as an error; it never
raises and never stops its neighbours in the batch. Redis errors do raise, so RQ retries the job;
a retried batch is harmless, because deliveries already applied change nothing the second time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger
from redis.exceptions import WatchError

from shared.envelope import Envelope, EnvelopeError
from worker.ledger import Ledger, state_key
from worker.metrics import LocalMetrics, action_label
from worker.payloads import JobEvent, PayloadError, RunEvent, parse
from worker.state import Effects, State, Transitions, job_key, run_key

ERROR_EVENT_UNKNOWN = "unknown"
MAX_CONFLICT_RETRIES = 50


@dataclass(frozen=True)
class Parsed:
    envelope: Envelope
    event: JobEvent | RunEvent

    def state_keys(self) -> list[str]:
        event = self.event
        if isinstance(event, RunEvent):
            return [run_key(event.run_id, event.run_attempt)]
        keys = [job_key(event.job_id, event.run_attempt)]
        if event.run_id is not None:
            keys.append(run_key(event.run_id, event.run_attempt))
        return keys


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

    def process_batch(self, items: Sequence[Any]) -> None:
        parsed = [p for p in (self._parse(item) for item in items) if p is not None]
        if not parsed:
            return
        keys = sorted({k for p in parsed for k in p.state_keys()})
        for _ in range(MAX_CONFLICT_RETRIES):
            try:
                effects = self._apply(parsed, keys)
                break
            except WatchError:
                self._local.conflicts.inc()
        else:
            raise RuntimeError(f"batch kept conflicting with other workers {MAX_CONFLICT_RETRIES} times")
        now = self._clock()
        for item, changed in zip(parsed, effects, strict=True):
            event = item.envelope.event
            effect = "changed" if changed else "unchanged"
            self._local.events.labels(event, action_label(event, item.event.action), effect).inc()
            self._local.lag.observe(max(0.0, now - item.envelope.received_at))

    def reject_job(self, detail: str) -> None:
        """A queued job whose arguments are not a list of envelopes."""
        logger.warning("dropped a malformed queue job: {}", detail)
        self._local.errors.labels(ERROR_EVENT_UNKNOWN, "bad_job").inc()

    def _parse(self, item: Any) -> Parsed | None:
        try:
            envelope = Envelope.from_dict(item)
        except EnvelopeError as exc:
            logger.warning("dropped a queued item that is not an envelope: {}", exc)
            self._local.errors.labels(ERROR_EVENT_UNKNOWN, "bad_envelope").inc()
            return None
        try:
            return Parsed(envelope, parse(envelope.event, envelope.body))
        except PayloadError as exc:
            logger.warning("delivery {} ({}) unusable: {}", envelope.delivery_id, envelope.event, exc)
            event = envelope.event if envelope.event in ("workflow_job", "workflow_run") else "other"
            self._local.errors.labels(event, exc.reason).inc()
            return None

    def _apply(self, parsed: list[Parsed], keys: list[str]) -> list[bool]:
        """One optimistic transaction; raises WatchError when another worker got there first."""
        with self._ledger.connection.pipeline() as pipe:
            pipe.watch(*(state_key(k) for k in keys))  # type: ignore[no-untyped-call]
            initial = self._ledger.read_states(pipe, keys)
            states: dict[str, State] = {k: dict(v) for k, v in initial.items()}
            effects = Effects()
            changed = []
            for item in parsed:
                touched = item.state_keys()
                before = [dict(states[k]) for k in touched]
                moved = len(effects.updates)
                event, received_at = item.event, item.envelope.received_at
                if isinstance(event, JobEvent):
                    run = states.get(touched[1]) if len(touched) > 1 else None
                    self._transitions.job(states[touched[0]], run, event, received_at, effects)
                else:
                    self._transitions.run(states[touched[0]], event, received_at, effects)
                changed.append(len(effects.updates) > moved or before != [states[k] for k in touched])
            pipe.multi()
            if self._ledger.write(pipe, initial, states, effects.updates):
                pipe.execute()
            else:
                pipe.reset()
            return changed
