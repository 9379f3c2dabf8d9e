"""The figures the end-to-end tests of hostile clients measure, printed at the end of the run."""

from __future__ import annotations

import pytest

FIGURES: list[str] = []


@pytest.fixture(name="figures", scope="session")
def _figures() -> list[str]:
    return FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("hostile client figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
