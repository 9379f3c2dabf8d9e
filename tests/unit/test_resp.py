"""The receiver's RESP packer writes what redis-py writes for the same command."""

import pytest
from redis.connection import Connection

from shared import resp


@pytest.mark.parametrize(
    "args",
    [
        ("PING",),
        ("EVAL", "return 1", 0),
        ("SET", "k", b"\x00\xff binary", "EX", 60),
        ("HSET", "h", "f", 1.5, "g", -3, "é", "ünïcode"),
        ("EVAL", "x", 1, "key", b"b" * 20_000, 12, memoryview(b"view")),  # past redis-py's chunking
    ],
)
def test_packs_as_redis_py_does(args):
    assert resp.command(args) == b"".join(bytes(part) for part in Connection().pack_command(*args))


@pytest.mark.parametrize("value", [True, None, object()])
def test_refuses_what_redis_py_refuses(value):
    with pytest.raises(TypeError):
        resp.command(["SET", "k", value])
