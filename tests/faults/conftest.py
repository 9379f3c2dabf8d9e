"""Collects each fault scenario's accounting and prints them all at the end of the run; the cluster
behind the fault proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.cluster import Cluster
from tests.faults.harness import Accounting
from tests.faults.proxy import FaultProxy

ACCOUNTS: list[Accounting] = []


@pytest.fixture(name="accounts")
def _accounts() -> list[Accounting]:
    return ACCOUNTS


@pytest.fixture(name="cluster")
def _cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Two receivers and one worker on a Redis of their own, started; stopped after the test."""
    cluster = Cluster(tmp_path).start()
    yield cluster
    cluster.shutdown()


@pytest.fixture(name="proxied")
def _proxied(tmp_path: Path) -> Iterator[tuple[Cluster, FaultProxy]]:
    """One receiver and one worker reaching Redis through the fault proxy."""
    cluster = Cluster(tmp_path, receivers=1, workers=1)
    proxy = FaultProxy(cluster.redis.port).start()
    cluster.client_url = proxy.url
    cluster.start()
    yield cluster, proxy
    cluster.shutdown()
    proxy.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if ACCOUNTS:
        terminalreporter.section("fault suite accounting")
        for account in ACCOUNTS:
            terminalreporter.write_line(account.line())
