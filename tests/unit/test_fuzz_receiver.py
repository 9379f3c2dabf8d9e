"""Hostile requests, generated: the receiver never answers 500, and every request is counted."""

import uuid

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from receiver.app import build_app
from receiver.intake import AsyncIntake
from receiver.metrics import ReceiverMetrics
from receiver.webhook import Services
from shared.marks import AsyncDeliveryMarks
from shared.queueing import make_queue
from shared.reloading import SettingsHolder
from shared.signing import sign
from tests.conftest import SECRET
from tests.corpus import load

P = "github_actions_"
ANSWERS = {200, 202, 400, 401, 413, 503}
BODY = load("octokit-webhooks/workflow_job/completed.success.with-organization.payload.json").body
header_bytes = st.binary(max_size=120).filter(lambda b: not set(b) & {0, 10, 13})
events = st.sampled_from([b"workflow_job", b"workflow_run", b"ping", b"push", b""]) | header_bytes
content_types = st.sampled_from([
    b"application/json", b"application/x-www-form-urlencoded", b"application/json; charset=utf-8",
    b"text/plain", b"multipart/form-data; boundary=x", b"",
]) | header_bytes  # fmt: skip
bodies = st.one_of(
    st.just(BODY),
    st.binary(max_size=4096),
    st.builds(lambda prefix, tail: BODY[:prefix] + tail, st.integers(0, len(BODY)), st.binary(max_size=64)),
    st.builds(lambda n: b"payload=" + b"%7B" * n, st.integers(0, 2000)),
    st.just(b"x" * 5000),  # over the limit below
)


@pytest.fixture(name="client")
def _client(fake_redis, fake_server, registry, make_settings):
    settings = make_settings(GHA_EXPORTER_WEBHOOK__MAX_BODY_BYTES="4500")
    connection = fakeredis.FakeAsyncRedis(server=fake_server)
    intake = AsyncIntake(
        connection,
        AsyncDeliveryMarks(connection, lambda: 3600),
        make_queue(fake_redis, settings.queue),
        settings.queue,
    )
    app = build_app(Services(SettingsHolder(settings), intake, ReceiverMetrics(registry, P), registry))
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


def total(registry, name):
    return sum(s.value for f in registry.collect() for s in f.samples if s.name == P + name)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    event=events,
    delivery=st.none() | header_bytes,
    hook=st.none() | header_bytes,
    content_type=st.none() | content_types,
    signature=st.sampled_from(["valid", "none", "other-body", "garbage", "sha1"]),
    garbage=header_bytes,
    body=bodies,
)
def test_no_request_gets_a_500_and_every_request_is_counted(  # noqa: PLR0917 - hypothesis arguments
    client, registry, event, delivery, hook, content_type, signature, garbage, body
):
    before = total(registry, "webhook_deliveries_total")
    headers = {"x-github-event": event}
    for name, value in (
        ("x-github-delivery", delivery),
        ("x-github-hook-id", hook),
        ("content-type", content_type),
    ):
        if value is not None:
            headers[name] = value
    if signature == "valid":
        headers["x-hub-signature-256"] = sign(SECRET, body).encode()
    elif signature == "other-body":
        headers["x-hub-signature-256"] = sign(SECRET, body + b"!").encode()
    elif signature == "garbage":
        headers["x-hub-signature-256"] = garbage
    elif signature == "sha1":
        headers["x-hub-signature"] = b"sha1=" + garbage
    response = client.post("/webhook", content=body, headers=headers)
    assert response.status_code in ANSWERS
    assert response.json()["status"] in {"queued", "duplicate", "pong", "ignored", "rejected", "unavailable"}
    assert total(registry, "webhook_deliveries_total") == before + 1
    if response.status_code in (400, 401, 413):
        assert response.json()["status"] == "rejected"
    if signature != "valid":
        assert response.status_code in (401, 413)  # nothing unsigned gets further than the size check


ids = st.text(alphabet="12:X \u0661", max_size=5)  # separators, spaces and a non-ASCII digit


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(first=st.tuples(ids, ids), second=st.tuples(ids, ids))
def test_two_distinct_hook_and_delivery_id_pairs_never_share_a_mark(client, first, second):
    """Signed deliveries whose ids would once have joined to one mark key (``1:2`` + ``X`` and
    ``1`` + ``2:X``): a second is a duplicate only when it is the same delivery of the same hook."""
    answers, nonce = [], uuid.uuid4().hex  # the client's Redis outlives one example
    for n, (hook, delivery) in enumerate((first, second)):
        headers = {
            "x-github-event": b"workflow_job",
            "x-github-delivery": f"{nonce}-{delivery}".encode(),
            "x-github-hook-id": hook.encode(),
            "x-hub-signature-256": sign(SECRET, BODY).encode(),
        }
        answers.append(client.post("/webhook", content=BODY, headers=headers).json().get("status"))
        if n == 0 and answers[0] != "queued":
            return  # a refused hook id: nothing was marked
    same = first[0] == second[0] and first[1].rstrip() == second[1].rstrip()  # delivery ids are trimmed
    if answers[1] in ("queued", "duplicate"):
        assert (answers[1] == "duplicate") == same, (first, second, answers)
