"""Waiting for what containers serve: poll a condition until it holds, and read a URL."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable
from typing import Any


def until(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    """``condition()``'s first true value, polled until ``seconds`` have passed (an OSError,
    ValueError or KeyError counts as not yet)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if value := condition():
                return value
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds:.0f} s")


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the tests' own http URLs
        return str(response.read().decode())
