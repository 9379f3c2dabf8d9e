"""The batch function the receiver names by its dotted path (``shared.queueing.BATCH_FUNCTION``).

RQ calls a plain function, so the worker binds its :class:`Processor` (and its :class:`Combiner`)
here before it starts working; jobs run in the worker's own process and thread (no fork), where the
binding is seen.

Near Redis's memory limit (``maxmemory``, ``noeviction``) Redis refuses a write whose request alone
would take it past the limit, and a transaction is refused whole. The receivers leave the worker room
(:mod:`receiver.headroom`), but a large batch's transaction can still not fit: a batch refused for
memory is applied in halves, down to single deliveries, and a single delivery is tried again a few
times, :data:`OOM_PAUSE_SECONDS` apart, while applying frees memory, before the batch fails.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

from loguru import logger
from redis.exceptions import OutOfMemoryError

from worker.combine import Combiner
from worker.processor import Processor


class Binding(NamedTuple):
    processor: Processor
    combiner: Combiner | None


_bound: ContextVar[Binding] = ContextVar("bound")
OOM_PAUSE_SECONDS = 0.5
OOM_TRIES = 10


def bind(processor: Processor, combiner: Combiner | None = None) -> Token[Binding]:
    return _bound.set(Binding(processor, combiner))


def unbind(token: Token[Binding]) -> None:
    _bound.reset(token)


def apply_batch(*args: Any, **kwargs: Any) -> int:
    """Process a list of envelopes, with those of further queued jobs; returns how many were applied."""
    processor, combiner = _bound.get()  # unbound: a programming error, RQ fails and retries the job
    if len(args) != 1 or kwargs or not isinstance(args[0], list):
        processor.reject_batch(f"expected one list of envelopes, got {len(args)} args, {len(kwargs)} kwargs")
        return 0
    taken = combiner.take(len(args[0])) if combiner is not None else []
    entries = args[0] + Combiner.entries(taken)
    try:
        apply_in_pieces(processor, entries)
    except BaseException:
        if combiner is not None:
            combiner.give_back(taken)  # retried by RQ with the job in hand
        raise
    if combiner is not None:
        combiner.finish(taken)
    return len(entries)


def apply_in_pieces(processor: Processor, entries: Sequence[Any], tries: int = OOM_TRIES) -> None:
    """``entries`` as one batch, or, while Redis refuses it for memory, in halves."""
    try:
        processor.process_batch(entries)
        return
    except OutOfMemoryError:
        if len(entries) == 1 and tries <= 1:
            raise
    if len(entries) == 1:
        time.sleep(OOM_PAUSE_SECONDS)
        apply_in_pieces(processor, entries, tries - 1)
        return
    logger.warning("Redis refused a batch of {} deliveries for memory: applying it in halves", len(entries))
    half = len(entries) // 2
    apply_in_pieces(processor, entries[:half], tries)
    apply_in_pieces(processor, entries[half:], tries)
