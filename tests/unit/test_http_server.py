"""The /metrics server: the format the scraper asks for, gzip when it accepts it, /health."""

import gzip
import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from shared.http_server import HttpServer, accepts_gzip, gzipped, host_allowed, registry_render


@pytest.fixture(name="server")
def _server():
    registry = CollectorRegistry()
    Counter("things", "Things.", registry=registry).inc(3)
    healthy = [True]
    server = HttpServer("127.0.0.1", 0, registry_render(registry), lambda: healthy[0])
    server.start()
    yield server, healthy
    server.stop()


def get(server, path, **headers):
    request = urllib.request.Request(f"http://127.0.0.1:{server.port}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
        return response.headers, response.read()


def test_text_by_default_and_gzip_when_accepted(server):
    headers, plain = get(server[0], "/metrics")
    assert headers["Content-Type"].startswith("text/plain")
    assert b"things_total 3.0" in plain
    headers, packed = get(server[0], "/metrics", **{"Accept-Encoding": "gzip"})
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed) == plain


def test_openmetrics_when_asked(server):
    headers, body = get(server[0], "/metrics", Accept="application/openmetrics-text; version=1.0.0")
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


def test_health_follows_the_process(server):
    assert get(server[0], "/health")[1] == b"ok"
    server[1][0] = False
    with pytest.raises(urllib.error.HTTPError) as refused:
        get(server[0], "/health")
    assert refused.value.code == 503
    refused.value.close()


def test_a_body_made_in_chunks_is_sent_and_compressed_as_it_comes():
    made: list[int] = []

    def chunks():
        for i in range(3):
            made.append(i)
            yield f"part_{i} {i}.0\n".encode() * 10_000

    body = list(gzipped(chunks()))
    assert len(body) > 1  # compressed piece by piece, not after the whole body was made
    assert gzip.decompress(b"".join(body)) == b"".join(chunks())

    server = HttpServer("127.0.0.1", 0, lambda _accept: (chunks(), "text/plain"), lambda: True)
    server.start()
    try:
        made.clear()
        _headers, plain = get(server, "/metrics")
        assert made == [0, 1, 2]
        assert plain == b"".join(chunks())
        _headers, packed = get(server, "/metrics", **{"Accept-Encoding": "gzip"})
        assert gzip.decompress(packed) == plain
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost", True), ("LocalHost:9100", True), ("worker:9100", True),
        ("127.0.0.1:9100", True), ("10.1.2.3", True), ("[::1]:9100", True),  # addresses: never rebound
        ("evil.example", False), ("evil.example:9100", False), ("worker.evil.example", False), ("", False),
    ],
)  # fmt: skip
def test_allowed_hosts_are_the_names_given_and_any_address(host, allowed):
    assert host_allowed(host, ("localhost", "worker")) is allowed


@pytest.mark.parametrize(
    ("header", "gzip"),
    [("gzip", True), ("deflate, gzip", True), ("gzip;q=0.5", True), ("*", True), ("br;q=1, *;q=0.1", True),
     ("", False), ("identity", False), ("gzip;q=0", False), ("gzip; q=0.0", False), ("gzip;q=x", False)],
)  # fmt: skip
def test_gzip_only_when_the_scraper_takes_it(header, gzip):
    assert accepts_gzip(header) is gzip
