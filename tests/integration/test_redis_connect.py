"""The clients both processes make (shared/redis_connect.py) against real servers: TLS with client
certificates and an ACL user, and Sentinel following a failover; the receiver's replicated
acknowledgement (redis.min_replicas_ack)."""

import asyncio
import time

import pytest
from redis.exceptions import AuthenticationError

from shared.marks import AsyncDeliveryMarks, DeliveryMarks, Mark, MarkState, NotReplicated
from shared.redis_connect import close_async, connect, connect_async
from tests.redis_topology import SentinelSet, make_certificates, tls_server, tls_supported, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.skipif(
    not tls_supported(), reason="needs a TLS-capable redis-server (Debian's; .ci/run installs it)"
)
def test_tls_with_a_client_certificate_and_an_acl_user(tmp_path, make_settings):
    certificates = make_certificates(tmp_path / "certs")
    server, tls_port = tls_server(tmp_path / "redis", certificates, "exporter", "s3cret")
    server.start()
    try:
        env = {
            "GHA_EXPORTER_REDIS__URL": f"rediss://127.0.0.1:{tls_port}/0",
            "GHA_EXPORTER_REDIS__USERNAME": "exporter",
            "GHA_EXPORTER_REDIS__PASSWORD": "s3cret",
            "GHA_EXPORTER_REDIS__TLS_CA_FILE": str(certificates["ca"]),
            "GHA_EXPORTER_REDIS__TLS_CERT_FILE": str(certificates["client"]),
            "GHA_EXPORTER_REDIS__TLS_KEY_FILE": str(certificates["client-key"]),
        }
        settings = make_settings(**env)
        assert "s3cret" in settings.secret_values()  # redacted from every log line
        client = connect(settings.redis)
        assert create(settings, ["m:tls"], [b"body"]) == []  # the receiver's client, over TLS too
        assert DeliveryMarks(client, lambda: 60).read(["m:tls"]) == [Mark(MarkState.QUEUED, b"body")]
        client.close()
        assert asyncio.run(ping_async(connect_async(settings.redis)))
        wrong = connect(make_settings(**{**env, "GHA_EXPORTER_REDIS__PASSWORD": "wrong"}).redis)
        with pytest.raises(AuthenticationError):
            wrong.ping()
        wrong.close()
    finally:
        server.stop()


async def ping_async(client) -> bool:
    try:
        return bool(await client.ping())
    finally:
        await close_async(client)


def test_sentinel_clients_follow_a_failover_and_replicated_acknowledgement(tmp_path, make_settings):
    topology = SentinelSet(tmp_path).start()
    try:
        settings = make_settings(
            GHA_EXPORTER_REDIS__SENTINELS=repr(topology.addresses).replace("'", '"'),
            GHA_EXPORTER_REDIS__SENTINEL_MASTER="mymaster",
        )
        client = connect(settings.redis)
        assert create(settings, ["m:before"], [b"1"], replicas=1) == []  # WAIT: the replica has it
        with pytest.raises(NotReplicated):
            create(settings, ["m:two"], [b"2"], replicas=2)
        old = topology.primary.port
        topology.kill_primary()
        wait_for(lambda: topology.primary_port() != old, 30, "Sentinel did not promote the replica")
        promoted = time.monotonic()

        def writes() -> bool:
            try:
                return bool(client.set("m:after", "3"))  # the worker's blocking client writes again
            except Exception:
                return False

        wait_for(writes, 30, "the client did not follow the failover")
        print(f"writing to the promoted replica {time.monotonic() - promoted:.1f} s after the promotion")
        marks = DeliveryMarks(client, lambda: 60)
        assert marks.read(["m:before"]) == [Mark(MarkState.QUEUED, b"1")]  # acknowledged, kept
        client.close()
        assert asyncio.run(ping_async(connect_async(settings.redis)))
        assert create(settings, ["m:async"], [b"4"]) == []  # the receiver's client follows too
    finally:
        topology.stop()


def create(settings, names: list[str], bodies: list[bytes], replicas: int = 0) -> list[int]:
    """The receiver's create, on its own asyncio client of ``settings.redis``."""

    async def call() -> list[int]:
        client = connect_async(settings.redis)
        try:
            return await AsyncDeliveryMarks(client, lambda: 60, replicas=replicas).create(names, bodies, [])
        finally:
            await close_async(client)

    return asyncio.run(call())
