"""Collects each fault scenario's accounting (its ledger) and prints them all at the end of the run."""

from __future__ import annotations

import pytest

from tests.faults.harness import Accounting

LEDGERS: list[Accounting] = []


@pytest.fixture(name="ledgers")
def _ledgers() -> list[Accounting]:
    return LEDGERS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if LEDGERS:
        terminalreporter.section("fault suite ledger")
        for ledger in LEDGERS:
            terminalreporter.write_line(ledger.line())
