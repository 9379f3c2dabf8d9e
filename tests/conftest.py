from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.parser import text_string_to_metric_families
from redis import Redis

from bench.workload import intake_entries
from receiver.intake import Accepted
from shared.settings import Settings
from shared.settings_loader import load_settings
from stack.redis_server import RedisServer

SECRET = "It's a Secret to Everybody"


@pytest.fixture(name="redis_server", scope="session")
def _redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real Redis (or Valkey) server for the whole session, on a free loopback port."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(name="redis_url")
def _redis_url(redis_server: RedisServer) -> str:
    client = Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(name="fake_server")
def _fake_server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture(name="fake_redis")
def _fake_redis(fake_server: fakeredis.FakeServer) -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(server=fake_server)


@pytest.fixture(name="registry")
def _registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture(name="make_settings")
def _make_settings():
    """Settings from the given environment variables only (never the process's environment)."""

    def make(**env: str) -> Settings:
        env.setdefault("GHA_EXPORTER_WEBHOOK__SECRETS", SECRET)
        return load_settings(environ=env)

    return make


@pytest.fixture(name="anyio_backend")
def _anyio_backend() -> str:
    return "asyncio"


class Exporter:
    """The worker's processor and registry on a real Redis, fed envelopes directly."""

    def __init__(self, connection: Redis, settings: Settings) -> None:
        from worker.__main__ import build_processor  # noqa: PLC0415 - only the tests that need it

        self.connection = connection
        self.registry = CollectorRegistry()
        built = build_processor(connection, settings, self.registry)
        self.processor, self.ledger, self.exposition = built.processor, built.ledger, built.exposition
        self.policy = built.policy
        self.reads, self.expiry = built.reads, built.expiry
        self.poller = built.poller
        self.settings = settings
        self.prefix = settings.metrics.prefix

    def queued(self, *deliveries: Accepted) -> list[dict[str, Any]]:
        """The entries the worker's batch hands it for ``deliveries``, queued through the receiver's
        own intake (a delivery already marked is a duplicate there, and has none)."""
        return intake_entries(self.connection, self.settings.queue, deliveries)

    def families(self) -> list[Metric]:
        """What the worker's /metrics shows, parsed back (so the text itself is checked too)."""
        return list(text_string_to_metric_families(self.exposition.render()[0].decode()))

    def value(self, name: str, **labels: str) -> float:
        wanted = self.prefix + name
        for family in self.families():
            for sample in family.samples:
                if sample.name == wanted and sample.labels == labels:
                    return float(sample.value)
        return 0.0

    def total(self, name: str, **labels: str) -> float:
        """Sum over every sample of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(
            sample.value
            for family in self.families()
            for sample in family.samples
            if sample.name == self.prefix + name and wanted <= set(sample.labels.items())
        )


@pytest.fixture(name="make_exporter")
def _make_exporter(redis_url: str, make_settings):
    connections = []

    def make(**env: str) -> Exporter:
        connection = Redis.from_url(redis_url)
        connections.append(connection)
        # every scrape reads the in-flight sets anew: a test feeds and scrapes within the second
        # that worker.api_cache_seconds would otherwise share (its own tests: test_snapshot)
        env.setdefault("GHA_EXPORTER_WORKER__API_CACHE_SECONDS", "0")
        return Exporter(connection, make_settings(GHA_EXPORTER_REDIS__URL=redis_url, **env))

    yield make
    for connection in connections:
        connection.close()


@pytest.fixture(name="exporter")
def _exporter(make_exporter) -> Exporter:
    """An exporter with default settings on the test's empty Redis (``redis_url`` flushes it)."""
    return make_exporter()


# Figures the tests measure, by section ("deployment figures", "hostile client figures"), printed at
# the end of the run: a directory's conftest gives its tests a ``figures`` list of its section.
FIGURES: dict[str, list[str]] = {}


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, lines in FIGURES.items():
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)
