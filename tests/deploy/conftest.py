"""The container engine and the stand-in images for the deployment tests, and the figures they
measure (build time, image size, stack start time), printed at the end of the run."""

from __future__ import annotations

import time

import pytest

from tests.conftest import FIGURES as ALL_FIGURES
from tests.containers.engine import Engine, find_engine
from tests.containers.standin import NAMES, missing_tools, standin

FIGURES = ALL_FIGURES.setdefault("deployment figures", [])


@pytest.fixture(name="figures", scope="session")
def _figures() -> list[str]:
    return FIGURES


@pytest.fixture(name="engine", scope="session")
def _engine() -> Engine:
    engine, why = find_engine()
    if engine is None:
        pytest.skip(why)
    return engine


@pytest.fixture(name="standins", scope="session")
def _standins(engine: Engine) -> dict[str, str]:
    """Each stand-in image's name (built from Debian's packages the first time on a machine)."""
    why = missing_tools()
    if why:
        pytest.skip(why)
    started = time.monotonic()
    images = {name: standin(engine, name) for name in NAMES}
    FIGURES.append(f"stand-in images ready in {time.monotonic() - started:.0f} s (built only when missing)")
    return images
