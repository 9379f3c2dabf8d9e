"""What one batch's write hands the ledger's apply script (``worker/ledger.write.lua``): the states
to replace, the in-flight set members to move (with their cardinality guard), every aggregate
movement in the stored form of :mod:`worker.codec`, the recent failures to push.

Encoding was a third of applying a batch: a family's keys and texts and a series' label text are
made once and kept (:data:`MAX_KEPT_LABEL_TEXTS`), and a batch's whole-number increments of one
series go as one (:func:`merged_increments`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from shared import keys
from worker import codec
from worker.codec import InflightGroup
from worker.metrics import BY_NAME, OVERFLOW, PHASE_GAUGES, LabelPolicy, Update

if TYPE_CHECKING:
    from worker.ledger import Changes
    from worker.state import State

MAX_KEPT_LABEL_TEXTS = 20_000  # series whose label text is kept (a few MB at most)


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


class WriteEncoder:
    """A batch's changes as the apply script's argument (``None`` when there is nothing to write)."""

    def __init__(
        self,
        policy: LabelPolicy,
        *,
        settled_ttl: Callable[[], int],
        job_ttl: int,
        run_ttl: int,
        recent: int,
        outbox: tuple[int, int] | None = None,
    ) -> None:
        self._policy = policy
        self._settled_ttl = settled_ttl
        self._job_ttl = job_ttl
        self._run_ttl = run_ttl
        self._recent = recent
        self._limit = policy.settings.max_series_per_family
        # the outbox's keys and bounds (most entries, most bytes), when traces are on
        self._outbox = (
            []
            if outbox is None
            else [keys.OUTBOX, keys.OUTBOX_BYTES, keys.OUTBOX_SENDING, keys.OUTBOX_DROPPED, *outbox]
        )
        self._texts: dict[str, tuple[str, str, str, str]] = {}
        self._label_texts: dict[tuple[str, tuple[str, ...]], str] = {}

    def batch(self, initial: Mapping[str, State], changes: Changes) -> dict[str, Any] | None:
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
                ttl = self._settled_ttl()
            else:
                ttl = self._run_ttl if attempt_key.startswith("run:") else self._job_ttl  # jobs, runners
            flat = [item for pair in sorted(state.items()) for item in pair]
            batch["states"].append([keys.state(attempt_key), flat, ttl])
            kind = attempt_key.split(":", 1)[0]
            old = (before.get("inflight"), before.get("member"), before.get("score"))
            new = (state.get("inflight"), state.get("member"), state.get("score"))
            if old != new:
                if old[0] and old[1]:
                    batch["zrem"].append([keys.inflight(kind, old[0]), old[1]])
                if new[0] and group is not None:  # a member changes only with a new group (above)
                    guard = self._inflight_guard(kind, new[0], group, attempt_key)
                    batch["zadd"].append(
                        [keys.inflight(kind, new[0]), new[2], new[1], *guard, keys.state(attempt_key)]
                    )
        batch["aggs"] = [self._encode(update, count) for update, count in merged_increments(changes.updates)]
        batch["recent"] = [keys.RECENT_FAILURES, self._recent, *changes.failed] if changes.failed else []
        folded = BY_NAME["series_folded_total"].name
        batch["folded"] = [self._policy.aggregate_key(folded), codec.VALUE]
        if changes.traces and not self._outbox:
            raise ValueError("trace entries without an outbox: the ledger was made without traces")
        batch["outbox"] = self._outbox if changes.traces else []
        if not (batch["states"] or batch["aggs"] or batch["recent"] or changes.traces):
            return None
        return batch

    def _inflight_guard(self, kind: str, phase: str, group: InflightGroup, attempt: str) -> list[str]:
        """The cardinality guard of an in-flight gauge, for the apply script: its label-set set (''
        when the gauge has no labels), the attempt's label text there, its member folded to
        ``__overflow__``, and the ``series_folded_total`` labels of the gauge."""
        gauge = PHASE_GAUGES[kind][phase].name
        names = self._policy.inflight_labels(kind)
        if not names:
            return ["", "", codec.inflight_member(group, attempt), ""]
        return [
            keys.labelsets(gauge, names),
            codec.label_text(names, codec.group_labels(group, names)),
            codec.inflight_member(codec.folded_group(group, OVERFLOW), attempt),
            codec.label_text(BY_NAME["series_folded_total"].default, [gauge]),
        ]

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
                self._policy.aggregate_key(family),
                self._policy.labelsets_key(family),
                codec.label_text(names, [OVERFLOW] * len(names)),
                codec.label_text(BY_NAME["series_folded_total"].default, [family]),
            )
        return texts
