"""The RQ job function the receiver names by its dotted path (``shared.queueing.JOB_FUNCTION``).

RQ calls a plain function, so the worker binds its :class:`Processor` here before it starts
working; jobs run in the worker's own process and thread (no fork), where the binding is seen.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

from worker.processor import Processor

_processor: ContextVar[Processor] = ContextVar("processor")


def bind(processor: Processor) -> Token[Processor]:
    return _processor.set(processor)


def unbind(token: Token[Processor]) -> None:
    _processor.reset(token)


def process_deliveries(*args: Any, **kwargs: Any) -> int:
    """Process a list of envelopes; returns how many items the job carried."""
    processor = _processor.get()  # unbound: a programming error, RQ fails and retries the job
    if len(args) != 1 or kwargs or not isinstance(args[0], list):
        processor.reject_job(f"expected one list of envelopes, got {len(args)} args, {len(kwargs)} kwargs")
        return 0
    processor.process_batch(args[0])
    return len(args[0])
