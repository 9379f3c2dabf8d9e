"""The worker applies several small queued jobs as one batch, and never swallows a job not its own."""

import time

import pytest
from rq import Queue

from bench.workload import queue_through_intake
from shared import keys
from shared.queueing import make_queue
from shared.rqadapter.storage import QueueBatches
from tests.corpus import run_copies
from worker.batches import apply_batch, bind, unbind
from worker.combine import Combiner
from worker.recovery import Recovery
from worker.rqworker import StopFlag, make_worker

pytestmark = pytest.mark.integration


def queue_in_jobs_of(connection, settings, size: int, runs: int) -> tuple[Queue, int]:
    deliveries = [d.accepted(f"c-{i}", received_at=time.time()) for i, d in enumerate(run_copies(runs))]
    queue_through_intake(connection, settings.queue, deliveries, size)
    return make_queue(connection, settings.queue), len(deliveries)


def drain(connection, settings, exporter, max_batch: int) -> None:
    worker = make_worker(connection, settings.queue, StopFlag())
    token = bind(
        exporter.processor,
        Combiner(QueueBatches(make_queue(connection, settings.queue)), max_batch),
    )
    try:
        worker.work(burst=True)
    finally:
        unbind(token)


def rq_left(queue: Queue) -> tuple[int, ...]:
    """batches queued, taken but not started, started, failed, and claimed by a worker."""
    return (*QueueBatches(queue).counts().values(), int(queue.connection.zcard(keys.claimed(queue.name))))


def test_small_jobs_are_applied_together_each_delivery_once(connection, settings, make_exporter):
    queue, sent = queue_in_jobs_of(connection, settings, size=3, runs=20)  # 60 jobs of 3
    exporter = make_exporter()
    drain(connection, settings, exporter, max_batch=30)
    assert exporter.total("webhook_deliveries_processed_total") == sent
    assert exporter.total("job_run_total") == 40  # two jobs per run
    assert rq_left(queue) == (0, 0, 0, 0, 0)
    # taken jobs are deleted; RQ keeps those it ran for result_ttl: 60 jobs, batches of about 30
    # deliveries, so RQ ran only the few jobs that carried the others
    ran = [key for key in connection.scan_iter("rq:job:*") if key.count(b":") == 2]
    assert 1 <= len(ran) <= 10


def test_a_job_not_ours_is_given_back_and_left_to_rq(connection, settings, make_exporter):
    queue, sent = queue_in_jobs_of(connection, settings, size=3, runs=2)  # 6 jobs
    foreign = queue.enqueue("os.path.join", "a", "b")  # another function, in the middle of ours
    queue_in_jobs_of(connection, settings, size=3, runs=0)
    exporter = make_exporter()
    drain(connection, settings, exporter, max_batch=1000)
    assert exporter.total("webhook_deliveries_processed_total") == sent
    foreign.refresh()
    assert foreign.is_finished  # RQ ran it itself
    assert rq_left(queue) == (0, 0, 0, 0, 0)


def test_a_failed_batch_gives_the_taken_jobs_back_in_order(connection, settings, make_exporter):
    queue, _ = queue_in_jobs_of(connection, settings, size=3, runs=2)  # 6 jobs
    ids = queue.get_job_ids()
    exporter = make_exporter()

    def fail(_entries):
        raise ConnectionError("Redis went away")

    exporter.processor.process_batch = fail
    token = bind(exporter.processor, Combiner(QueueBatches(queue), 1000))
    try:
        first = queue.fetch_job(connection.lpop(queue.key).decode())  # the job RQ would be running
        assert first is not None
        with pytest.raises(ConnectionError):
            apply_batch(*first.args)
    finally:
        unbind(token)
    assert queue.get_job_ids() == ids[1:]  # the others are back at the head, in their order
    assert connection.zcard(keys.claimed(queue.name)) == 0


def test_jobs_claimed_by_a_worker_that_died_go_back_once_the_lease_lapses(connection, settings):
    queue, _ = queue_in_jobs_of(connection, settings, size=3, runs=2)  # 6 jobs
    ids = queue.get_job_ids()
    now = [1000.0]
    combiner = Combiner(QueueBatches(queue), 1000, clock=lambda: now[0])
    recovery = Recovery(QueueBatches(queue), lease_seconds=10, clock=lambda: now[0])
    taken = combiner.take(3)
    assert [job.id for job in taken] == ids
    assert queue.count == 0
    now[0] += 8
    combiner.renew()  # a live worker renews its claims with the lease of its batch ...
    now[0] += 9
    assert recovery.reclaim() == 0  # ... so they are not taken from it
    now[0] += 2  # ... and then it dies: no renewal for a whole lease
    assert recovery.reclaim() == 6
    assert sorted(queue.get_job_ids()) == sorted(ids)  # back at the head (order does not matter)
    assert connection.zcard(keys.claimed(queue.name)) == 0
