"""What :mod:`shared.rqadapter` relies on inside RQ, pinned one behaviour per test: after an RQ
upgrade, a failure here names the piece of the adapter to change."""

import signal
import threading
import time
from datetime import UTC, datetime

import pytest
from fakeredis import FakeRedis
from redis import Redis
from rq import Queue, Retry
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.utils import get_version, utcformat, utcparse

from shared import resp, rqadapter
from shared.envelope import Envelope
from shared.queueing import job_args, job_template, make_queue
from shared.rqadapter import enqueue as rq_enqueue
from shared.rqadapter.enqueue import enqueue_commands
from shared.rqadapter.storage import QueueBatches
from tests.faults.proxy import FaultProxy
from worker.rqworker import StopFlag, make_worker

pytestmark = pytest.mark.integration


@pytest.fixture(name="queue")
def _queue(connection, settings) -> Queue:
    return make_queue(connection, settings.queue)


def enqueue(queue: Queue, argument: str, retry: Retry | None = None) -> str:
    """Enqueue as the receiver does: RQ's buffered commands, run by us (here in a transaction)."""
    data = queue.prepare_data("worker.batches.apply_batch", args=([argument],), result_ttl=60, retry=retry)
    commands = enqueue_commands(queue, data)
    with queue.connection.pipeline() as pipe:
        for command in commands:
            pipe.execute_command(*command)
        pipe.execute()
    [job_id] = [c[2] for c in commands if c[0] == "RPUSH"] or [None]
    assert job_id is not None, f"RQ's enqueue no longer RPUSHes the job id on its queue list: {commands}"
    return job_id.decode() if isinstance(job_id, bytes) else str(job_id)


def test_the_installed_rq_is_in_the_tested_range():
    assert rqadapter.rq_is_tested(), (
        f"RQ {rqadapter.rq_version()} is outside {rqadapter.TESTED_RQ}: run this file, then widen the range"
    )


def test_enqueue_commands_are_buffered_not_sent_and_make_a_whole_job(queue, connection):
    data = queue.prepare_data("worker.batches.apply_batch", args=([1],))
    enqueue_commands(queue, data)
    assert connection.dbsize() == 0, "RQ sent commands while building a job on a pipeline"
    job_id = enqueue(queue, "x")
    assert queue.count == 1
    job = Job.fetch(job_id, connection=connection, serializer=queue.serializer)
    assert (job.func_name, list(job.args)) == ("worker.batches.apply_batch", [["x"]])
    assert job.get_status() == "queued"


def envelopes(count: int) -> list[Envelope]:
    return [Envelope("workflow_job", f"delivery-{i}", "7", 1764000000.25 + i) for i in range(count)]


def test_a_filled_job_template_is_the_job_rq_builds(queue, settings):
    """Byte for byte, but for the time RQ takes itself."""
    at = datetime(2026, 12, 2, 17, 0, 0, 123456, tzinfo=UTC)

    def same_time(value):
        if isinstance(value, str):
            try:
                utcparse(value)
            except ValueError:
                return value
            return utcformat(at)
        return value

    template = job_template(queue, settings.queue)
    for count in (1, 3):
        args, description = job_args(envelopes(count))
        ours = template.commands(args, description, job_id="job-1", at=at)
        theirs = template.rq_commands("job-1", args, description)
        assert [[resp.encode(a) for a in c] for c in ours] == [
            [resp.encode(same_time(a)) for a in c] for c in theirs
        ], "RQ's job changed: JobTemplate no longer builds what RQ does"


def run(connection, commands) -> None:
    with connection.pipeline() as pipe:
        for command in commands:
            pipe.execute_command(*command)
        pipe.execute()


def test_a_job_from_the_template_is_read_by_rq_as_it_enqueued_it(queue, connection, settings):
    template = job_template(queue, settings.queue)
    args, description = job_args(envelopes(2))
    run(connection, template.commands(args, description))
    [job_id] = queue.get_job_ids()
    job = Job.fetch(job_id, connection=connection, serializer=queue.serializer)
    assert (job.func_name, list(job.args), job.kwargs) == ("worker.batches.apply_batch", list(args), {})
    assert (job.timeout, job.result_ttl, job.failure_ttl, job.retries_left) == (
        settings.queue.job_timeout_seconds,
        settings.queue.result_ttl_seconds,
        settings.queue.failure_ttl_seconds,
        settings.queue.max_retries,
    )
    assert (job.origin, job.description, job.get_status()) == (queue.name, "2 deliveries", "queued")
    assert job.enqueued_at is not None
    assert abs((job.enqueued_at.replace(tzinfo=UTC) - datetime.now(UTC)).total_seconds()) < 60
    run(connection, template.commands(args, description))
    assert len(set(queue.get_job_ids())) == 2, "every filled job has an id of its own"


def test_a_queue_is_a_list_of_job_ids_whose_head_runs_next(queue, connection):
    first, second = enqueue(queue, "1"), enqueue(queue, "2")
    assert connection.type(queue.key) == b"list"
    assert connection.lrange(queue.key, 0, -1) == [first.encode(), second.encode()]
    assert connection.type(queue.job_class.redis_job_namespace_prefix + first) == b"hash"
    job, _ = queue.dequeue_any([queue], None, connection=connection, serializer=queue.serializer)
    assert job.id == first


def test_claimed_jobs_fetch_and_go_back_to_the_head(queue):
    ids = [enqueue(queue, str(i)) for i in range(3)]
    jobs = QueueBatches(queue)
    assert jobs.claim("claims", 2, time.time()) == ids[:2]
    fetched = [job for job in jobs.fetch(ids[:2]) if job is not None]
    assert [list(job.args) for job in fetched] == [[["0"]], [["1"]]]
    jobs.give_back("claims", fetched)
    assert queue.get_job_ids() == ids
    jobs.delete("claims", fetched[:1])
    assert jobs.fetch(ids[:1]) == [None], "Job.fetch_many no longer answers None for a deleted job"


def test_a_job_taken_but_not_started_waits_in_the_intermediate_list(queue, connection, settings):
    job_id = enqueue(queue, "x")
    worker = make_worker(connection, settings.queue, StopFlag())
    worker.register_birth()
    try:
        job, _ = worker.dequeue_job_and_maintain_ttl(1)
        assert job.id == job_id
        assert connection.lrange(queue.intermediate_queue_key, 0, -1) == [job_id.encode()]
        assert QueueBatches(queue).counts() == {"queued": 0, "dequeued": 1, "started": 0, "failed": 0}
    finally:
        worker.register_death()


def test_a_job_a_dead_worker_took_but_never_started_goes_back_to_the_head_once_seen_long_enough(
    queue, connection, settings
):
    """The worker is killed between RQ's dequeue and the start (the fault suite's kill -9 hit it):
    the job waits in the intermediate list; the sweeper first notes it, and puts it back at the
    head of the queue once it has been seen there, unstarted, since before the cutoff."""
    stuck, later = enqueue(queue, "stuck"), enqueue(queue, "later")
    worker = make_worker(connection, settings.queue, StopFlag())
    worker.register_birth()
    try:
        job, _ = worker.dequeue_job_and_maintain_ttl(1)  # taken, then the worker "dies"
    finally:
        worker.register_death()
    assert job.id == stuck
    jobs, seen = QueueBatches(queue), "test:dequeued-seen"
    assert jobs.requeue_stuck(seen, now=100.0, cutoff=90.0) == 0  # first seen now: a live worker may start it
    assert jobs.requeue_stuck(seen, now=105.0, cutoff=95.0) == 0  # seen at 100: not before the cutoff
    assert jobs.requeue_stuck(seen, now=111.0, cutoff=101.0) == 1
    assert connection.lrange(queue.intermediate_queue_key, 0, -1) == []
    assert connection.lrange(queue.key, 0, -1) == [stuck.encode(), later.encode()]  # at the head
    assert connection.exists(seen) == 0  # nothing left to remember


def test_a_started_job_in_the_intermediate_list_is_left_to_its_worker(queue, connection):
    job_id = enqueue(queue, "x")
    connection.lrem(queue.key, 1, job_id)  # taken, and started: RQ 3 scores "<job id>:<execution id>"
    connection.rpush(queue.intermediate_queue_key, job_id)
    connection.zadd(queue.started_job_registry.key, {f"{job_id}:execution": time.time() + 60})
    assert job_id in queue.started_job_registry
    jobs, seen = QueueBatches(queue), "test:dequeued-seen"
    assert jobs.requeue_stuck(seen, now=100.0, cutoff=90.0) == 0
    assert jobs.requeue_stuck(seen, now=200.0, cutoff=190.0) == 0
    assert connection.lrange(queue.intermediate_queue_key, 0, -1) == [job_id.encode()]
    assert connection.exists(seen) == 0


def test_the_heartbeat_ttl_hook_decides_how_long_a_started_job_counts_as_alive(queue, connection, settings):
    enqueue(queue, "x")
    worker = make_worker(connection, settings.queue, StopFlag())
    worker.lease_seconds = 1234
    job, _ = queue.dequeue_any([queue], None, connection=connection, serializer=queue.serializer)
    worker.prepare_execution(job)
    worker.prepare_job_execution(job)
    [(_, score)] = connection.zrange(StartedJobRegistry(queue=queue).key, 0, -1, withscores=True)
    assert abs(score - (time.time() + 1234)) < 30, "RQ no longer asks get_heartbeat_ttl for a started job"


def test_the_stop_flag_is_what_the_work_loop_looks_at(connection, settings):
    stop = StopFlag()
    stop.set()
    worker = make_worker(connection, settings.queue, stop)
    assert worker._stop_requested is True
    worker._stop_requested = False
    assert stop.is_set()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert worker.work() is False  # returns instead of waiting for work
        assert signal.getsignal(signal.SIGTERM) == stop.set, "RQ no longer calls _install_signal_handlers"
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def test_a_stop_during_an_outage_ends_rqs_reconnection_loop(redis_url, settings, caplog):
    """RQ's dequeue retries an unanswering Redis for ever and looks at no flag (InProcessWorker's
    heartbeat hook ends it): a worker asked to stop while Redis is partitioned away returns."""
    proxy = FaultProxy(Redis.from_url(redis_url).connection_pool.connection_kwargs["port"]).start()
    connection = Redis.from_url(proxy.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    stop = StopFlag()
    worker = make_worker(connection, settings.queue, stop)
    worker._install_signal_handlers = lambda: None  # type: ignore[method-assign]  # not the main thread
    thread = threading.Thread(target=worker.work)
    try:
        thread.start()
        while worker.get_state() != "idle":  # listening: inside RQ's dequeue loop
            time.sleep(0.01)
        proxy.partition()
        while "could not connect" not in caplog.text:  # a try failed: RQ is in its reconnection loop
            time.sleep(0.01)
        stop.set()
        thread.join(timeout=60)
        assert not thread.is_alive(), "RQ's reconnection loop no longer starts each try with heartbeat()"
    finally:
        proxy.heal()
        thread.join()
        connection.close()
        proxy.stop()


def test_a_known_server_version_is_the_one_rq_reads_and_spares_its_question(connection, settings):
    unreachable = make_queue(Redis(port=1), settings.queue)  # nothing listens: RQ must not ask
    rq_enqueue.know_server_version(unreachable, connection.info("server"))
    assert unreachable.get_redis_server_version() == get_version(connection)
    assert rq_enqueue.server_version(None) == get_version(FakeRedis())  # a server without INFO


def test_the_worker_keeps_the_socket_timeout_its_connection_was_given(redis_url, settings):
    connection = Redis.from_url(redis_url, socket_timeout=3)
    try:
        make_worker(connection, settings.queue, StopFlag())
        assert connection.connection_pool.connection_kwargs["socket_timeout"] == 3, (
            "RQ raised the socket timeout: InProcessWorker._set_connection is no longer what RQ calls"
        )
    finally:
        connection.close()


def test_a_running_rq_job_renews_its_lease(queue, connection, settings):
    data = queue.prepare_data("time.sleep", args=(2.5,), result_ttl=60)
    for command in enqueue_commands(queue, data):
        connection.execute_command(*command)
    registry = StartedJobRegistry(queue=queue)
    scores: list[float] = []

    def beat():
        [(_, score)] = connection.zrange(registry.key, 0, -1, withscores=True)
        scores.append(score)

    worker = make_worker(connection, settings.queue, StopFlag(), lease_seconds=3, on_heartbeat=beat)
    worker.work(burst=True)
    assert len(scores) >= 1, "no heartbeat while the batch ran: perform_job is no longer RQ's hook"
    assert all(score >= time.time() - 10 for score in scores)  # renewed to about now + the lease
    assert queue.finished_job_registry.count == 1


def test_a_started_rq_job_whose_lease_lapsed_is_retried(queue, connection, settings):
    job_id = enqueue(queue, "x", retry=Retry(max=1))
    dead = make_worker(connection, settings.queue, StopFlag(), lease_seconds=0)  # lapses at once
    job, _ = queue.dequeue_any([queue], None, connection=connection, serializer=queue.serializer)
    dead.prepare_execution(job)
    dead.prepare_job_execution(job)
    assert queue.count == 0
    QueueBatches(queue).requeue_abandoned()
    assert queue.get_job_ids() == [job_id], "StartedJobRegistry.cleanup no longer retries an abandoned job"
