"""The worker's ``/metrics``: its own registry, then the families read from Redis at scrape time.

The aggregates, the in-flight gauges and the queue depth are read from Redis, so every worker
replica exposes the same values, and a restarted worker the same totals. They are written as text
directly (:mod:`worker.textformat`): at 100,000 series, going through prometheus_client's sample
objects took seconds. If Redis cannot be read within ``worker.scrape_timeout_seconds``, only
``..._redis_up 0`` is exposed for them, with the process's own families (Prometheus then has a gap
instead of a false zero, and the scrape never hangs).

The families from Redis are :mod:`worker.stored_families`' (one reader thread for all scrapes).

A scrape is streamed, one family at a time (:meth:`Exposition.stream`), and renders at most
``worker.max_scrape_bytes``: past it the remaining series are left out, whole (a histogram's series
is never cut in half), and ``scrape_truncated`` says 1. Before, one scrape of 282 MB held 2.6 GB.

A scrape never fails as a whole: a series whose stored value cannot be rendered (not a number, too
long) is left out, a family that cannot be built at all too, each counted in
``scrape_errors_total{family}`` (seen from the next scrape on), and the body always ends as its
format wants (``# EOF`` in OpenMetrics). Before, one 400-digit number in Redis cut every scrape
short.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from loguru import logger
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from worker.metrics import SCRAPE_TRUNCATED
from worker.stored_families import StoredFamilies
from worker.textformat import header, number, sample

EOF = b"# EOF\n"


class Exposition:
    def __init__(
        self, registry: CollectorRegistry, stored: StoredFamilies, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self._registry = registry
        self._stored = stored
        self._max_bytes = max_bytes

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The whole body and its content type (:meth:`stream`, joined)."""
        chunks, content_type = self.stream(accept)
        return b"".join(chunks), content_type

    def stream(self, accept: str = "") -> tuple[Iterator[bytes], str]:
        """The body, one family at a time, and its content type for a scraper's ``Accept`` header
        (OpenMetrics if it asks). Redis is read when the first chunk is asked for."""
        encoder, content_type = choose_encoder(accept)
        openmetrics = content_type.startswith("application/openmetrics-text")
        return self._chunks(encoder, openmetrics), content_type

    def _chunks(self, encoder: Callable[[CollectorRegistry], bytes], openmetrics: bool) -> Iterator[bytes]:
        local: bytes = encoder(self._registry)
        if openmetrics:
            local = local.removesuffix(EOF)
        yield local
        left = self._max_bytes - len(local)
        truncated = False
        blocks = self._stored.blocks(openmetrics)
        while not truncated:
            try:
                block = next(blocks)
            except StopIteration:
                break
            except Exception as exc:  # a bug or a value no guard foresaw: the rest of the body still
                self._stored.skipped("redis", 1, exc)
                break
            head = header(block.name, block.doc, block.kind, openmetrics).encode()
            data = head + "".join(block.lines).encode()
            if len(data) > left:  # keep the whole series that fit, then stop
                data, truncated = self._cut(head, block.lines, left), True
            left -= len(data)
            yield data
        flag = self._stored.block(SCRAPE_TRUNCATED)
        if truncated:
            logger.warning("scrape stopped at worker.max_scrape_bytes ({} bytes)", self._max_bytes)
        yield (
            header(flag.name, flag.doc, flag.kind, openmetrics) + sample(flag.name, "", number(truncated))
        ).encode()
        if openmetrics:
            yield EOF

    @staticmethod
    def _cut(head: bytes, lines: list[str], room: int) -> bytes:
        """The family's header and the series that fit in ``room`` bytes (none: nothing at all)."""
        parts, size = [head], len(head)
        for line in lines:
            encoded = line.encode()
            if size + len(encoded) > room:
                break
            parts.append(encoded)
            size += len(encoded)
        return b"".join(parts) if size <= room else b""

    def close(self) -> None:
        self._stored.close()
