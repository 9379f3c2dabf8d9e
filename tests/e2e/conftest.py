"""The figures the end-to-end tests of hostile clients measure, printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.conftest import FIGURES


@pytest.fixture(name="figures", scope="session")
def _figures() -> list[str]:
    return FIGURES.setdefault("hostile client figures", [])
