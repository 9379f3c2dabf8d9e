"""Free loopback ports for the processes the local system, the tests and the benchmarks start."""

from __future__ import annotations

import socket

_HANDED_OUT: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, and never one this process handed out before (the kernel may offer a
    just-released port again before whoever asked for it has bound it)."""
    while True:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
