"""The receiver's HTTP protocol under uvicorn on loopback, with each parser it can run on: a request
head past ``receiver.max_header_bytes`` is answered 431 before its end arrives, requests the parser
refuses are counted, and requests within the limit (alone, on keep-alive, pipelined, with a body
larger than the limit) are served as before.
"""

from __future__ import annotations

import asyncio
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from hypothesis import given, settings
from hypothesis import strategies as st

from receiver.asgi import Receive, Scope, Send
from shared.http_protocol import HttpLimits, busy_limit, h11_protocol, httptools_protocol
from stack.ports import free_port
from tests.receiver_thread import uvicorn_in_thread

LIMIT = 4096
DEFAULT = HttpLimits(LIMIT)
PARSERS = {"httptools": httptools_protocol, "h11": h11_protocol}
READ_TIMEOUT = 10.0  # a guard against a server that never answers, not a measure


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers 200 with the length of the body it read."""
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = str(size).encode()
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]}
    )
    await send({"type": "http.response.body", "body": body})


Builder = Callable[[HttpLimits, Callable[[str], None]], type[asyncio.Protocol]]


@contextmanager
def serving(builder: Builder, limits: HttpLimits = DEFAULT) -> Iterator[tuple[int, Counter[str]]]:
    """uvicorn on a free loopback port with ``builder``'s protocol; yields the port and the
    rejection reasons counted so far."""
    refused: Counter[str] = Counter()
    port = free_port()
    config = uvicorn.Config(
        echo_length,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        http=builder(limits, lambda reason: refused.update([reason])),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        limit_concurrency=busy_limit(limits.max_connections),
    )
    with uvicorn_in_thread(config):
        yield port, refused


@pytest.fixture(name="server", params=["httptools", "h11"])
def _server(request: pytest.FixtureRequest) -> Iterator[tuple[int, Counter[str]]]:
    with serving(PARSERS[request.param]) as server:
        yield server


def exchange(port: int, data: bytes, responses: int = 1) -> bytes:
    """Send ``data`` on a new connection and read until ``responses`` whole responses arrived or
    the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as conn:
        conn.sendall(data)
        received = b""
        while len(complete_responses(received)) < responses:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        return received


def complete_responses(received: bytes) -> list[bytes]:
    """The whole responses in ``received`` (each here carries a content-length)."""
    done: list[bytes] = []
    rest = received
    while True:
        head, sep, after = rest.partition(b"\r\n\r\n")
        if not sep:
            return done
        lengths = [
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ]
        length = lengths[0] if lengths else 0
        if len(after) < length:
            return done
        done.append(head + sep + after[:length])
        rest = after[length:]


def head(padding: int, method: bytes = b"GET", body: bytes = b"") -> bytes:
    """A request whose head is ``padding`` bytes longer than its minimal form."""
    lines = [method + b" / HTTP/1.1", b"Host: x", b"X-Pad: " + b"a" * padding]
    if body:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def statuses(received: bytes) -> list[int]:
    return [int(response.split(b" ")[1]) for response in complete_responses(received)]


def test_a_head_past_the_limit_is_answered_431_before_it_ends(server):
    port, refused = server
    unfinished = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * (LIMIT + 100)  # no end of head
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as conn:
        conn.sendall(unfinished)
        answer = conn.recv(65536)  # a server that waits for the rest of the head times out here
        assert conn.recv(65536) == b""  # and the connection is closed
    assert statuses(answer) == [431]
    assert refused == {"headers_too_large": 1}


def test_heads_within_the_limit_are_served_alone_in_keep_alive_and_pipelined(server):
    port, refused = server
    near = LIMIT - 200
    assert statuses(exchange(port, head(near))) == [200]
    # three heads of half the limit on one connection, sent at once: each is counted on its own
    assert statuses(exchange(port, head(near // 2) * 3, 3)) == [200, 200, 200]
    # a body larger than the limit is no part of the head
    body = b"x" * (LIMIT * 8)
    answer = exchange(port, head(100, b"POST", body))
    assert statuses(answer) == [200]
    assert answer.endswith(str(len(body)).encode())
    assert refused == {}


def test_requests_the_parser_refuses_are_answered_400_and_counted(server):
    port, refused = server
    for bad in (
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
    ):
        assert statuses(exchange(port, bad)) == [400]
    assert refused == {"malformed_request": 2}


@pytest.mark.parametrize("parser", PARSERS)
def test_a_request_that_does_not_arrive_whole_in_time_is_closed_and_counted(parser):
    """A connection that sends nothing, one that trickles its head, one whose body stops short: each
    closed at the request deadline. A request answered in time, then idle on keep-alive, is not."""
    with serving(PARSERS[parser], HttpLimits(LIMIT, request_seconds=0.5)) as (port, refused):
        stalled = [
            b"",
            b"GET / HTTP/1.1\r\nHost: x\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab",
        ]
        connections = [socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) for _ in stalled]
        for conn, data in zip(connections, stalled, strict=True):
            conn.sendall(data)
        answered = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT)
        answered.sendall(head(10))
        assert statuses(answered.recv(65536)) == [200]
        for conn in connections:
            assert conn.recv(65536) == b""  # closed by the server: a server that waits times out here
            conn.close()
        assert refused == {"slow_request": 3}
        answered.sendall(head(10))  # the keep-alive connection is still served
        assert statuses(answered.recv(65536)) == [200]
        answered.close()


@pytest.mark.parametrize("parser", PARSERS)
def test_past_the_connection_cap_the_longest_waiting_connection_is_shed(parser):
    with serving(PARSERS[parser], HttpLimits(LIMIT, max_connections=4)) as (port, refused):
        waiting = []
        for _ in range(4):  # heads that never end: the slots a slowloris holds
            waiting.append(socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT))
            waiting[-1].sendall(b"GET / HTTP/1.1\r\n")
            assert statuses(exchange(port, head(10))) == [200]  # meanwhile each new request is served
        assert waiting[0].recv(65536) == b""  # the oldest was closed to make room
        assert refused["shed"] >= 1
        for conn in waiting:
            conn.close()


@pytest.fixture(name="httptools_server", scope="module")
def _httptools_server() -> Iterator[tuple[int, Counter[str]]]:
    with serving(httptools_protocol) as server:
        yield server


@given(
    heads=st.lists(st.integers(LIMIT - 64, LIMIT + 64), min_size=1, max_size=3),
    body=st.integers(0, LIMIT * 2),
)
@settings(max_examples=60, deadline=None)
def test_httptools_refuses_exactly_the_heads_longer_than_the_limit(httptools_server, heads, body):
    """Keep-alive requests whose heads (terminator included) are each near the limit, sent one
    after the other on one connection: each is served while its head fits, and the first that does
    not is answered 431 and ends the connection."""
    port, refused = httptools_server
    refused.clear()
    payload = b"x" * body
    requests = []
    for size in heads:
        start = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nX-Pad: " % body
        requests.append(start + b"a" * (size - len(start) - 4) + b"\r\n\r\n" + payload)
    assert [len(r) - body for r in requests] == heads
    expected = [200 if size <= LIMIT else 431 for size in heads]
    if 431 in expected:
        expected = expected[: expected.index(431) + 1]
    answers: list[int] = []
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT) as conn:
        for request, status in zip(requests, expected, strict=False):
            # a refused head goes alone: a body arriving after the close would reset the connection
            conn.sendall(request if status == 200 else request[: len(request) - body])
            received = b""
            while not complete_responses(received):
                chunk = conn.recv(65536)
                assert chunk, "the connection closed without an answer"
                received += chunk
            answers.append(statuses(received)[0])
            if status == 431:
                break
    assert answers == expected
    assert refused == ({"headers_too_large": 1} if 431 in expected else {})
