"""The receiver's intake and the worker's RQ loop against a real Redis server."""

import asyncio
import dataclasses
import signal
import threading
import time

import pytest
from rq.registry import StartedJobRegistry

from bench.workload import async_client, submit
from receiver.intake import Accepted, Admission, AsyncIntake
from shared import keys
from shared.envelope import Envelope
from shared.marks import AsyncDeliveryMarks
from shared.queueing import make_queue
from shared.rqadapter.worker import InProcessWorker
from tests.corpus import load
from worker.batches import bind, unbind
from worker.rqworker import StopFlag, make_worker

pytestmark = pytest.mark.integration
COMPLETED = load("grafana-ci-otel-collector/workflow_job/9_workflow_job_completed.json")
JOB = {"repository": "krzko/webhook-testing", "workflow": "Tests", "job": "test", "conclusion": "success",
       "runner_group": "GitHub Actions", "runs_on": "ubuntu-latest", "attempt": "rerun"}  # fmt: skip


def envelope(delivery_id: str) -> Accepted:
    """As the receiver hands a verified delivery to its intake: the body goes in the mark."""
    return Accepted(Envelope("workflow_job", delivery_id, "hook", time.time()), COMPLETED.body)


def worker_for(connection, settings) -> InProcessWorker:
    return make_worker(connection, settings.queue, StopFlag())


def drain_in_process(connection, settings, make_exporter):
    """Run an in-process worker over the queue until it is empty; returns its exporter."""
    exporter = make_exporter()
    token = bind(exporter.processor)
    try:
        worker_for(connection, settings).work(burst=True)
    finally:
        unbind(token)
    return exporter


def test_concurrent_receivers_queue_a_delivery_once(connection, settings):
    queue = make_queue(connection, settings.queue)

    async def eight_receivers() -> list[Admission]:
        clients = [async_client(connection) for _ in range(8)]
        intakes = [
            AsyncIntake(client, AsyncDeliveryMarks(client, lambda: 60), queue, settings.queue)
            for client in clients
        ]
        try:
            answers = await asyncio.gather(
                *[intake.submit([envelope("same-delivery")]) for intake in intakes]
            )
        finally:
            for intake in intakes:
                await intake.close()
        return [admission for answer in answers for admission in answer]

    outcomes = asyncio.run(eight_receivers())
    assert sorted(outcomes) == [Admission.DUPLICATE] * 7 + [Admission.QUEUED]
    assert queue.count == 1


def test_a_batch_is_one_job_and_repeats_inside_it_are_duplicates(connection, settings):
    queue = make_queue(connection, settings.queue)
    plain = dataclasses.replace(settings.queue, compress_bodies=False)  # the body as signed, to compare
    assert submit(connection, plain, [envelope("a"), envelope("b"), envelope("a")], 60) == [
        Admission.QUEUED, Admission.QUEUED, Admission.DUPLICATE,
    ]  # fmt: skip
    assert submit(connection, plain, [envelope("b")], 60) == [Admission.DUPLICATE]
    assert queue.count == 1
    assert connection.ttl("gha-exporter:delivery:hook:a") == 60
    assert connection.hgetall("gha-exporter:delivery:hook:a") == {
        b"state": b"queued",
        b"body": COMPLETED.body,
    }
    [job] = queue.get_jobs()
    assert [sorted(item) for item in job.args[0]] == [["delivery_id", "event", "hook_id", "received_at"]] * 2


def test_bodies_move_from_the_marks_and_a_retried_job_replays(connection, settings, make_exporter):
    queue = make_queue(connection, settings.queue)
    submit(connection, settings.queue, [envelope("m-1"), envelope("m-2")], 60)
    [job] = queue.get_jobs()
    exporter = make_exporter()
    exporter.processor.process_batch(job.args[0])
    assert connection.hgetall(keys.mark("hook", "m-1")) == {b"state": b"applied"}  # the body is freed
    exporter.processor.process_batch(job.args[0])  # RQ retried it after a worker died past its commit
    assert exporter.total("webhook_deliveries_processed_total") == 2
    assert exporter.total("webhook_events_processed_total", effect="replayed") == 2
    assert exporter.total("webhook_processing_errors_total") == 0


def test_a_body_gone_from_its_mark_is_counted_as_an_error(connection, settings, make_exporter):
    queue = make_queue(connection, settings.queue)
    submit(connection, settings.queue, [envelope("gone"), envelope("kept")], 60)
    connection.delete("gha-exporter:delivery:hook:gone")  # expired, say, while no worker ran
    [job] = queue.get_jobs()
    exporter = make_exporter()
    exporter.processor.process_batch(job.args[0])
    assert exporter.value("webhook_deliveries_processed_total", event="workflow_job", result="invalid") == 1
    assert exporter.value("webhook_processing_errors_total", event="workflow_job", reason="body_missing") == 1
    assert exporter.value("webhook_deliveries_processed_total", event="workflow_job", result="changed") == 1


def test_worker_processes_queued_jobs_in_process(connection, settings, make_exporter):
    queue = make_queue(connection, settings.queue)
    submit(connection, settings.queue, [envelope("one"), envelope("two")], 60)
    exporter = drain_in_process(connection, settings, make_exporter)
    assert exporter.value("job_run_total", **JOB) == 1  # the same job twice: once
    assert exporter.total("webhook_events_processed_total", event="workflow_job", action="completed") == 2
    assert queue.count == 0
    assert queue.failed_job_registry.count == 0


def test_a_job_abandoned_by_a_killed_worker_is_retried_not_lost(connection, settings, make_exporter):
    queue = make_queue(connection, settings.queue)
    submit(connection, settings.queue, [envelope("abandoned")], 60)
    # A worker takes the job and dies before finishing: the job stays STARTED in the registry.
    dead = worker_for(connection, settings)
    taken = queue.dequeue_any([queue], None, connection=connection, serializer=queue.serializer)
    assert taken is not None
    job, _ = taken
    dead.prepare_execution(job)
    dead.prepare_job_execution(job)
    assert queue.count == 0
    registry_of_started = StartedJobRegistry(queue=queue)
    assert job.id in registry_of_started.get_job_ids()
    # Once its heartbeat has expired, any worker's maintenance puts it back (RQ's Retry).
    registry_of_started.cleanup(timestamp=time.time() + settings.queue.job_timeout_seconds + 120)
    assert queue.count == 1
    exporter = drain_in_process(connection, settings, make_exporter)
    assert exporter.value("job_run_total", **JOB) == 1
    assert queue.failed_job_registry.count == 0


def test_stop_flag_ends_an_idle_worker(connection, settings):
    """The flag a SIGTERM sets ends the loop while it waits for work (RQ's own wait ignores it)."""
    worker = worker_for(connection, settings)

    def stop_when_idle():
        deadline = time.monotonic() + 10
        while worker.get_state() != "idle" and time.monotonic() < deadline:
            time.sleep(0.01)
        worker.stop.set()

    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stopper = threading.Thread(target=stop_when_idle)
    stopper.start()
    try:
        assert worker.work() is False  # returns (nothing processed) instead of waiting forever
    finally:
        worker.stop.set()
        stopper.join()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
