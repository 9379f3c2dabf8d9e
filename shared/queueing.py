"""The queue contract: which RQ queue, which job function, which job options.

One batch carries a list of one or more envelopes (as dicts), because RQ's own bookkeeping costs
about 25 Redis round trips per job: the worker drains deliveries in batches, not one per job.

The job options, chosen knowing RQ 3's behaviour:
- ``result_ttl`` at least 1 s: with 0, a retried abandoned job is run twice.
- ``Retry(max=queue.max_retries)`` with no interval (an interval needs RQ's scheduler process):
  a job that failed (an exception, or longer than ``job_timeout``) is retried at once. A job whose
  worker was killed is not RQ's to notice: the worker leases it (``worker.lease_seconds``, renewed
  while it runs) and any worker's sweeper puts it back on the queue once the lease lapsed
  (:mod:`worker.rqworker`, :meth:`worker.recovery.Recovery.recover`).
- ``failure_ttl`` a week instead of RQ's year: failed jobs stay inspectable without piling up.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis import Redis
from rq import Queue, Retry
from rq.queue import EnqueueData

from shared.envelope import Envelope
from shared.rqadapter.enqueue import Args, JobTemplate
from shared.settings import QueueSettings

BATCH_FUNCTION = "worker.batches.apply_batch"
QUEUED_EVENTS = frozenset({"workflow_run", "workflow_job"})  # what the receiver queues, the worker reads
SERIALIZER = "rq.serializers.JSONSerializer"


def make_queue(connection: Redis, settings: QueueSettings) -> Queue:
    return Queue(settings.name, connection=connection, serializer=SERIALIZER)


def job_args(envelopes: Sequence[Envelope]) -> tuple[Args, str]:
    """The arguments of the job function for ``envelopes``, and the job's description."""
    return ([e.to_dict() for e in envelopes],), f"{len(envelopes)} deliveries"


def job_template(queue: Queue, settings: QueueSettings) -> JobTemplate:
    """The batch of the options above, built by RQ once (filled with :func:`job_args` per batch)."""
    return JobTemplate(
        queue, lambda job_id, args, description: _prepare(queue, settings, job_id, args, description)
    )


def _prepare(queue: Queue, settings: QueueSettings, job_id: str, args: Args, description: str) -> EnqueueData:
    return queue.prepare_data(
        BATCH_FUNCTION,
        args=args,
        timeout=settings.job_timeout_seconds,
        result_ttl=settings.result_ttl_seconds,
        failure_ttl=settings.failure_ttl_seconds,
        retry=Retry(max=settings.max_retries),
        description=description,
        job_id=job_id,
    )
