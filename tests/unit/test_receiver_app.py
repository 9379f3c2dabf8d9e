import asyncio
import json
from urllib.parse import quote_from_bytes, urlencode

import fakeredis
import pytest
from loguru import logger
from rq import Queue
from starlette.testclient import TestClient

from receiver.app import build_app
from receiver.asgi import Rejected, read_body
from receiver.intake import Admission, AsyncIntake
from receiver.metrics import ReceiverMetrics
from receiver.webhook import Services
from shared import keys
from shared.envelope import Envelope
from shared.marks import AsyncDeliveryMarks
from shared.queueing import BATCH_FUNCTION, SERIALIZER, make_queue
from shared.reloading import SettingsHolder
from shared.signing import sign
from tests.conftest import SECRET
from tests.corpus import load

P = "github_actions_"
JOB = load("octokit-webhooks/workflow_job/completed.success.with-organization.payload.json")


def headers(body: bytes, event="workflow_job", delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958", secret=SECRET,
            content_type="application/json", **extra):  # fmt: skip
    found = {
        "content-type": content_type,
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-github-hook-id": "12345",
        "x-hub-signature-256": sign(secret, body),
    }
    found.update(extra)
    return {k: v for k, v in found.items() if v is not None}


@pytest.fixture(name="queue")
def _queue(fake_redis, make_settings) -> Queue:
    return make_queue(fake_redis, make_settings().queue)


@pytest.fixture(name="client")
def _client(fake_server, registry, make_settings, queue):
    settings = make_settings(GHA_EXPORTER_WEBHOOK__MAX_BODY_BYTES="100000")
    holder = SettingsHolder(settings)
    connection = fakeredis.FakeAsyncRedis(server=fake_server)
    intake = AsyncIntake(connection, AsyncDeliveryMarks(connection, lambda: 3600), queue, settings.queue)
    app = build_app(Services(holder, intake, ReceiverMetrics(registry, P), registry))
    with TestClient(app) as client:
        yield client


def value(registry, name, **labels):
    return registry.get_sample_value(P + name, labels) or 0.0


def queued_envelopes(queue):
    return [Envelope.from_dict(item) for job in queue.get_jobs() for item in job.args[0]]


def test_signed_delivery_is_queued_with_its_envelope(client, queue, registry, fake_redis):
    response = client.post("/webhook", content=JOB.body, headers=headers(JOB.body))
    assert response.status_code == 202
    assert response.json() == {"status": "queued"}
    [job] = queue.get_jobs()
    assert job.func_name == BATCH_FUNCTION
    assert job.serializer is not None
    [queued] = queued_envelopes(queue)
    assert (queued.event, queued.delivery_id, queued.hook_id) == (
        "workflow_job", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "12345",
    )  # fmt: skip
    assert "body" not in job.args[0][0]  # the body waits in the delivery's mark, written with the job
    assert fake_redis.hget(keys.mark("12345", queued.delivery_id), "body") == JOB.body
    assert value(registry, "webhook_deliveries_total", event="workflow_job", outcome="queued") == 1
    assert value(registry, "webhook_request_duration_seconds_count", outcome="queued") == 1


def test_job_uses_the_json_serializer_and_safe_ttls(client, queue):
    client.post("/webhook", content=JOB.body, headers=headers(JOB.body))
    [job] = queue.get_jobs()
    assert SERIALIZER.endswith("JSONSerializer")
    assert job.result_ttl >= 1
    assert job.retries_left >= 1
    assert job.failure_ttl <= 30 * 24 * 3600


def test_redelivery_is_acknowledged_not_queued_and_counted(client, queue, registry):
    first = client.post("/webhook", content=JOB.body, headers=headers(JOB.body))
    again = client.post("/webhook", content=JOB.body, headers=headers(JOB.body))
    other_hook = client.post(
        "/webhook", content=JOB.body, headers=headers(JOB.body, **{"x-github-hook-id": "9"})
    )
    assert (first.status_code, again.status_code, other_hook.status_code) == (202, 200, 202)
    assert again.json() == {"status": "duplicate"}
    assert len(queued_envelopes(queue)) == 2  # same GUID on another hook is another delivery
    assert value(registry, "webhook_deliveries_total", event="workflow_job", outcome="duplicate") == 1


def test_ping_answers_200_and_queues_nothing(client, queue, registry):
    body = load("octokit-webhooks/ping/payload.json").body
    response = client.post("/webhook", content=body, headers=headers(body, event="ping"))
    assert response.status_code == 200
    assert queue.count == 0
    assert value(registry, "webhook_deliveries_total", event="ping", outcome="pong") == 1


def test_other_events_are_acknowledged_ignored_and_counted(client, queue, registry):
    body = b'{"action": "opened"}'
    response = client.post("/webhook", content=body, headers=headers(body, event="pull_request"))
    assert response.status_code == 202
    assert response.json()["status"] == "ignored"
    assert queue.count == 0
    assert value(registry, "webhook_deliveries_total", event="other", outcome="ignored") == 1


def test_form_encoded_delivery_is_verified_over_the_raw_body(client, queue, fake_redis):
    form = urlencode({"payload": JOB.body.decode()}).encode()
    response = client.post(
        "/webhook", content=form, headers=headers(form, content_type="application/x-www-form-urlencoded")
    )
    assert response.status_code == 202
    [queued] = queued_envelopes(queue)
    assert json.loads(fake_redis.hget(keys.mark("12345", queued.delivery_id), "body")) == json.loads(JOB.body)


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"x-hub-signature-256": None}, 401, "missing_signature"),
        ({"x-hub-signature-256": None, "x-hub-signature": "sha1=" + "0" * 40}, 401, "sha1_only"),
        ({"x-hub-signature-256": "sha256=" + "0" * 64}, 401, "bad_signature"),
        ({"x-hub-signature-256": "sha256=abc"}, 401, "malformed_signature"),
        ({"secret": "rotated-out"}, 401, "bad_signature"),
        ({"event": None}, 400, "missing_event_header"),
        ({"delivery": None}, 400, "missing_delivery_header"),
        ({"delivery": "x" * 300}, 400, "bad_header"),
        ({"content_type": "text/plain"}, 400, "unsupported_content_type"),
        ({"content_type": "application/x-www-form-urlencoded"}, 400, "malformed_form"),
    ],
)
def test_bad_requests_are_refused_and_only_rejections_move(  # noqa: PLR0917 - pytest fixtures and parameters
    client, queue, registry, change, status, reason
):
    extra = {k: v for k, v in change.items() if k.startswith("x-")}
    kwargs = {k: v for k, v in change.items() if not k.startswith("x-")}
    response = client.post("/webhook", content=JOB.body, headers=headers(JOB.body, **kwargs, **extra))
    assert response.status_code == status
    assert response.json() == {"status": "rejected", "reason": reason}
    assert queue.count == 0
    assert value(registry, "webhook_rejections_total", reason=reason) == 1
    assert (
        sum(value(registry, "webhook_rejections_total", reason=r) for r in ("bad_signature", "too_large"))
        <= 1
    )
    for outcome in ("queued", "duplicate", "ignored", "pong", "unavailable"):
        assert value(registry, "webhook_deliveries_total", event="workflow_job", outcome=outcome) == 0


def test_oversized_body_is_refused_by_its_declared_length(client, queue, registry):
    body = b"x" * 100_001
    response = client.post("/webhook", content=body, headers=headers(body))
    assert response.status_code == 413
    assert value(registry, "webhook_rejections_total", reason="too_large") == 1
    assert queue.count == 0


@pytest.mark.anyio
async def test_streamed_body_is_refused_past_the_limit_without_reading_the_rest():
    received = []

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": b"x" * 10_000, "more_body": len(received) < 1000}

    with pytest.raises(Rejected) as rejected:
        await read_body(receive, {}, limit=25_000)
    assert (rejected.value.status, rejected.value.reason) == (413, "too_large")
    assert len(received) == 3


def test_redis_down_answers_503_counts_it_and_loses_nothing(client, fake_server, queue, registry):
    fake_server.connected = False
    down = client.post("/webhook", content=JOB.body, headers=headers(JOB.body))
    assert down.status_code == 503
    assert client.get("/ready").status_code == 503
    fake_server.connected = True
    redelivered = client.post("/webhook", content=JOB.body, headers=headers(JOB.body))
    assert redelivered.status_code == 202  # not mistaken for a duplicate: the mark was not written
    assert client.get("/ready").status_code == 200
    assert value(registry, "webhook_enqueue_failures_total") == 1
    assert value(registry, "webhook_deliveries_total", event="workflow_job", outcome="unavailable") == 1
    assert value(registry, "webhook_deliveries_total", event="workflow_job", outcome="queued") == 1
    assert len(queued_envelopes(queue)) == 1


def test_health_and_metrics(client):
    assert client.get("/health").text == "ok"
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert (
        "github_actions_webhook_deliveries_total" in metrics.text
        or "webhook_rejections_total" in metrics.text
    )
    openmetrics = client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")


class StuckIntake:
    """An intake whose Redis never answers (a silent partition), then answers when released."""

    headroom = None

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.written: list[str] = []

    async def submit(self, deliveries):
        await self.release.wait()
        self.written += [d.envelope.delivery_id for d in deliveries]
        return [Admission.QUEUED] * len(deliveries)

    async def ping(self):
        await self.release.wait()
        return True

    async def close(self):
        return None


def test_a_delivery_redis_cannot_take_by_the_deadline_is_answered_503(make_settings, registry):
    settings = make_settings(GHA_EXPORTER_RECEIVER__DEADLINE_SECONDS="0.3")
    intake = StuckIntake()
    services = Services(SettingsHolder(settings), intake, ReceiverMetrics(registry, P), registry)  # type: ignore[arg-type]
    app = build_app(services)
    with TestClient(app) as client:
        first = client.post("/webhook", content=JOB.body, headers=headers(JOB.body, delivery="stuck-1"))
        second = client.post("/webhook", content=JOB.body, headers=headers(JOB.body, delivery="stuck-2"))
        assert (first.status_code, second.status_code) == (503, 503)
        assert client.get("/ready").status_code == 503  # bounded too
        assert value(registry, "webhook_deliveries_total", event="workflow_job", outcome="unavailable") == 2
        assert client.portal is not None
        client.portal.call(intake.release.set)
        third = client.post("/webhook", content=JOB.body, headers=headers(JOB.body, delivery="later"))
        assert third.status_code == 202
    # the first was in flight when it gave up (it may reach Redis: a redelivery is then a duplicate);
    # the second was still waiting, and is not written after its 503
    assert "stuck-2" not in intake.written
    assert "later" in intake.written


@pytest.mark.parametrize(
    "hook", ["1:2", " 7", "7 ", "1" * 21, b"1\xb2", "12a", "-1"]
)  # \xb2: a digit to str.isdigit
def test_a_hook_id_that_is_not_a_number_is_refused(client, registry, hook):
    response = client.post(
        "/webhook", content=JOB.body, headers=headers(JOB.body, **{"x-github-hook-id": hook})
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "bad_header"
    assert value(registry, "webhook_rejections_total", reason="bad_header") == 1


def test_deliveries_whose_ids_would_have_joined_to_one_key_are_both_queued(client, queue):
    """Hook 12 with delivery 3:X, and hook 123 with delivery :X (or no hook with 12:3:X)."""
    for hook, delivery in (("12", "3:X"), ("123", ":X"), ("", "12:3:X")):
        sent = headers(JOB.body, delivery=delivery, **{"x-github-hook-id": hook})
        assert client.post("/webhook", content=JOB.body, headers=sent).status_code == 202
    assert len(queued_envelopes(queue)) == 3


def test_form_encoded_payload_reaches_the_queue_byte_for_byte(client, queue, fake_redis):
    """``%FF`` in a form body is the byte 0xFF, as in a JSON body: the worker refuses both as
    invalid_utf8 (it was replaced by U+FFFD, so the form version was processed)."""
    raw = b'{"action":"queued","name":"\xff"}'
    form = b"payload=" + quote_from_bytes(raw).encode()
    response = client.post(
        "/webhook", content=form, headers=headers(form, content_type="application/x-www-form-urlencoded")
    )
    assert response.status_code == 202
    [queued] = queued_envelopes(queue)
    assert fake_redis.hget(keys.mark("12345", queued.delivery_id), "body") == raw


def test_a_refused_delivery_id_is_logged_bounded_and_sanitised(client):
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}")
    try:
        forged = "abc\n2026-12-02 INFO forged line \x1b[31m" + "x" * 5000
        assert (
            client.post("/webhook", content=b"{}", headers={"x-github-delivery": forged}).status_code == 401
        )
    finally:
        logger.remove(sink)
    [line] = [line for line in lines if line.startswith("refused delivery")]
    assert (
        line.rstrip("\n")
        == "refused delivery abc?2026-12-02 INFO forged line ?[31m"
        + "x" * 27
        + "...: missing_signature (401)"
    )
