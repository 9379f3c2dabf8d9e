"""Fixtures of the tests against a real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis import Redis

from shared.settings import Settings


@pytest.fixture(name="connection")
def _connection(redis_url: str) -> Iterator[Redis]:
    """A client of the test's Redis (``redis_url`` empties it first)."""
    connection = Redis.from_url(redis_url)
    yield connection
    connection.close()


@pytest.fixture(name="settings")
def _settings(make_settings, redis_url: str) -> Settings:
    """Default settings on the test's Redis."""
    return make_settings(GHA_EXPORTER_REDIS__URL=redis_url)
