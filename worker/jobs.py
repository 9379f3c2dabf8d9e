"""The RQ job function the receiver names by its dotted path (``shared.queueing.JOB_FUNCTION``).

RQ calls a plain function, so the worker binds its :class:`Processor` (and its :class:`Combiner`)
here before it starts working; jobs run in the worker's own process and thread (no fork), where the
binding is seen.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any, NamedTuple

from worker.combine import Combiner
from worker.processor import Processor


class Binding(NamedTuple):
    processor: Processor
    combiner: Combiner | None


_bound: ContextVar[Binding] = ContextVar("bound")


def bind(processor: Processor, combiner: Combiner | None = None) -> Token[Binding]:
    return _bound.set(Binding(processor, combiner))


def unbind(token: Token[Binding]) -> None:
    _bound.reset(token)


def process_deliveries(*args: Any, **kwargs: Any) -> int:
    """Process a list of envelopes, with those of further queued jobs; returns how many were applied."""
    processor, combiner = _bound.get()  # unbound: a programming error, RQ fails and retries the job
    if len(args) != 1 or kwargs or not isinstance(args[0], list):
        processor.reject_job(f"expected one list of envelopes, got {len(args)} args, {len(kwargs)} kwargs")
        return 0
    taken = combiner.take(len(args[0])) if combiner is not None else []
    entries = args[0] + Combiner.entries(taken)
    try:
        processor.process_batch(entries)
    except BaseException:
        if combiner is not None:
            combiner.give_back(taken)  # retried by RQ with the job in hand
        raise
    if combiner is not None:
        combiner.finish(taken)
    return len(entries)
