"""Collects each fault scenario's accounting and prints them all at the end of the run."""

from __future__ import annotations

import pytest

from tests.faults.harness import Accounting

ACCOUNTS: list[Accounting] = []


@pytest.fixture(name="accounts")
def _accounts() -> list[Accounting]:
    return ACCOUNTS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ACCOUNTS:
        terminalreporter.section("fault suite accounting")
        for account in ACCOUNTS:
            terminalreporter.write_line(account.line())
