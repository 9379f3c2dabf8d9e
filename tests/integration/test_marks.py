"""The delivery mark: its state is its own field, so no body can pass for one; the TTL follows
reloads on the worker's side."""

import asyncio
import dataclasses
import json
import time

import pytest
from prometheus_client import CollectorRegistry

from bench.workload import async_client, intake_entries, queue_through_intake
from receiver.intake import Accepted
from shared import keys
from shared.bodies import LZ4_MAGIC
from shared.envelope import Envelope
from shared.marks import AsyncDeliveryMarks, DeliveryMarks, Mark, MarkState
from shared.queueing import make_queue
from shared.reloading import SettingsHolder
from tests.corpus import load

pytestmark = pytest.mark.integration
COMPLETED = load("grafana-ci-otel-collector/workflow_job/9_workflow_job_completed.json")


def accepted(delivery_id: str, body: bytes = COMPLETED.body) -> Accepted:
    return Accepted(Envelope("workflow_job", delivery_id, "hook", time.time()), body)


def queued_entries(connection, settings):
    return [entry for job in make_queue(connection, settings.queue).get_jobs() for entry in job.args[0]]


def create(connection, names, bodies, then, ttl=30):
    """The receiver's create (its asyncio client, on ``connection``'s server): what it answered."""

    async def call():
        client = async_client(connection)
        try:
            return await AsyncDeliveryMarks(client, lambda: ttl).create(names, bodies, then)
        finally:
            await client.aclose()

    return asyncio.run(call())


def with_compression(settings, compress: bool):
    return dataclasses.replace(settings.queue, compress_bodies=compress)


@pytest.mark.parametrize("body", [b"done", b"applied", b"", b"\x00queued"])
def test_a_body_that_looks_like_a_state_is_accounted_once(exporter, body):
    entries = exporter.queued(accepted("odd", body))
    assert len(entries) == 1  # queued
    exporter.processor.process_batch(entries)
    assert exporter.value("webhook_deliveries_processed_total", event="workflow_job", result="invalid") == 1
    assert exporter.total("webhook_events_processed_total", effect="replayed") == 0
    assert exporter.total("webhook_processing_errors_total") == 1


def test_the_worker_marks_with_the_ttl_of_the_current_settings(connection, settings):
    from worker.__main__ import build_processor  # noqa: PLC0415 - the worker's own wiring

    holder = SettingsHolder(settings)
    processor = build_processor(connection, holder, CollectorRegistry()).processor
    processor.process_batch(intake_entries(connection, settings.queue, [accepted("ttl-1")]))
    assert connection.ttl(keys.mark("hook", "ttl-1")) > 3 * 24 * 3600  # GitHub redelivers for 3 days
    holder.current = dataclasses.replace(
        settings, webhook=dataclasses.replace(settings.webhook, dedupe_ttl_seconds=120)
    )  # what a reload does
    processor.process_batch(intake_entries(connection, settings.queue, [accepted("ttl-2")]))
    assert 0 < connection.ttl(keys.mark("hook", "ttl-2")) <= 120


# -- the scripts alone, with crafted KEYS and ARGV ----------------------------------------------------
def test_create_writes_every_mark_and_runs_the_commands(connection):
    commands = [("RPUSH", "list", "x"), ("SET", "flag", "1")]
    assert create(connection, ["m:a", "m:b"], [b"A", b"B"], commands) == []
    assert connection.hgetall("m:a") == {b"state": b"queued", b"body": b"A"}
    assert connection.hgetall("m:b") == {b"state": b"queued", b"body": b"B"}
    assert 0 < connection.ttl("m:a") <= 30
    assert connection.lrange("list", 0, -1) == [b"x"]
    assert connection.get("flag") == b"1"


def test_create_writes_nothing_when_a_mark_exists_and_says_which(connection):
    connection.hset("m:old", "state", "applied")
    assert create(connection, ["m:new", "m:old", "m:other"], [b"1", b"2", b"3"], [("SET", "flag", "1")]) == [
        0,
        1,
        0,
    ]
    assert connection.exists("m:new", "m:other", "flag") == 0


def test_read_and_held_and_apply(connection):
    marks = DeliveryMarks(connection, lambda: 45)
    create(connection, ["m:q", "m:r"], [b"body", b"{}"], [], ttl=45)
    names = ["m:q", "m:r", "m:none"]
    assert marks.read(names) == [
        Mark(MarkState.QUEUED, b"body"),
        Mark(MarkState.QUEUED, b"{}"),
        Mark(MarkState.MISSING, None),
    ]
    read = marks.states(names)
    assert read == [MarkState.QUEUED, MarkState.QUEUED, MarkState.MISSING]
    with connection.pipeline() as pipe:
        marks.settle(pipe, names, read, gate="m:gate")
        assert pipe.execute() == [1]
    assert marks.read(names) == [Mark(MarkState.APPLIED, None)] * 3
    assert all(0 < connection.ttl(key) <= 45 for key in names)
    assert 0 < connection.ttl("m:gate") <= 60


def test_apply_writes_nothing_when_a_mark_changed_since_it_was_read(connection):
    """Another worker applied one of them meanwhile: none is applied, no gate set, 0 answered."""
    marks = DeliveryMarks(connection, lambda: 45)
    create(connection, ["m:a", "m:b"], [b"a", b"b"], [], ttl=45)
    read = marks.states(["m:a", "m:b", "m:none"])
    with connection.pipeline() as pipe:
        marks.settle(pipe, ["m:b"], [MarkState.QUEUED])  # the other worker
        pipe.execute()
    with connection.pipeline() as pipe:
        marks.settle(pipe, ["m:a", "m:b", "m:none"], read, gate="m:gate")
        assert pipe.execute() == [0]
    assert marks.read(["m:a", "m:none"]) == [Mark(MarkState.QUEUED, b"a"), Mark(MarkState.MISSING, None)]
    assert connection.exists("m:gate") == 0


def test_compressed_and_plain_bodies_share_a_queue_and_are_counted_once(connection, settings, exporter):
    """A receiver with queue.compress_bodies and one without (or of an earlier version) fill the same
    queue: the worker reads both; the compressed mark takes a fraction of the bytes."""
    other = dict(COMPLETED.data, workflow_job=dict(COMPLETED.data["workflow_job"], id=987654321))
    plain_body = json.dumps(other).encode()
    queue_through_intake(connection, with_compression(settings, True), [accepted("packed")], 1)
    queue_through_intake(connection, with_compression(settings, False), [accepted("plain", plain_body)], 1)
    packed = connection.hget(keys.mark("hook", "packed"), "body")
    assert packed.startswith(LZ4_MAGIC)
    assert len(packed) < len(COMPLETED.body) / 3
    assert connection.hget(keys.mark("hook", "plain"), "body") == plain_body
    marks = DeliveryMarks(connection, lambda: 60)
    assert [m.body for m in marks.read([keys.mark("hook", "packed"), keys.mark("hook", "plain")])] == [
        COMPLETED.body,
        plain_body,
    ]
    exporter.processor.process_batch(queued_entries(connection, settings))
    assert exporter.value("webhook_deliveries_processed_total", event="workflow_job", result="changed") == 2
    assert exporter.total("webhook_processing_errors_total") == 0
    assert connection.hgetall(keys.mark("hook", "packed")) == {b"state": b"applied"}


def test_a_compressed_body_that_does_not_decompress_is_counted_as_an_error(connection, settings, exporter):
    fine = accepted("fine", json.dumps(dict(COMPLETED.data, action="completed")).encode())
    queue_through_intake(connection, with_compression(settings, True), [accepted("broken"), fine], 2)
    connection.hset(keys.mark("hook", "broken"), "body", LZ4_MAGIC + b"\xff" * 40)  # damaged in Redis
    exporter.processor.process_batch(queued_entries(connection, settings))
    assert (
        exporter.value("webhook_processing_errors_total", event="workflow_job", reason="body_unreadable") == 1
    )
    assert exporter.value("webhook_deliveries_processed_total", event="workflow_job", result="invalid") == 1
    assert exporter.value("webhook_deliveries_processed_total", event="workflow_job", result="changed") == 1
