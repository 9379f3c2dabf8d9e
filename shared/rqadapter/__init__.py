"""Everything this project relies on inside RQ that RQ does not document as its API, in one place.

RQ (tested: the range pinned in ``pyproject.toml``) is used through its public API where it has one:
``Queue``, ``Queue.prepare_data``, ``Job.fetch_many``, the registries' counts, ``SimpleWorker``. The
rest is here, each piece pinned by ``tests/integration/test_rq_contract.py``, so an RQ upgrade that
changes one fails there, with the piece named:

- **Enqueue commands** (receiver): RQ builds a job on a pipeline; the commands it buffers
  (redis-py's ``command_stack``) are run by the delivery marks' create script, so the marks and the
  job are written all or nothing. RQ builds one such job once per process
  (:class:`shared.rqadapter.enqueue.JobTemplate`); each batch's job is that one with its own id,
  timestamps, description and data (RQ's ``data`` field: zlib over the serializer's ``(function,
  None, args, kwargs)``).
- **RQ's version cache**: ``Queue.redis_server_version``, which RQ fills with a blocking ``INFO`` on
  first use; the receiver fills it from its asyncio client
  (:func:`shared.rqadapter.enqueue.know_server_version`).
- **RQ's storage**: a queue is a list of job ids at ``Queue.key`` (head: next to run), a job is a
  hash at ``Job.redis_job_namespace_prefix + id``, and a job a worker took but has not started waits
  in the list at ``Queue.intermediate_queue_key`` (the worker puts back those left there by a dead
  worker: :meth:`shared.rqadapter.storage.QueueBatches.requeue_stuck`). The worker claims further jobs
  from the head of the list (:class:`shared.rqadapter.storage.QueueBatches`, scripts
  ``shared/rqadapter/storage.*.lua``), and the scrape counts them.
- **The worker's hooks** (:class:`shared.rqadapter.worker.InProcessWorker`): ``SimpleWorker``'s
  private ``_install_signal_handlers``, ``_stop_requested`` and ``_set_connection``, ``subscribe``
  and ``teardown`` (called by ``work()``), ``get_heartbeat_ttl``,
  ``dequeue_job_and_maintain_ttl(timeout, max_idle_time)`` (with, inside it, ``heartbeat()`` at the
  start of each try, ``reorder_queues`` first with a dequeued RQ job, ``max_connection_wait_time``
  between tries), ``perform_job(job, queue, execution)`` and ``maintain_heartbeats(job,
  execution)``; and ``StartedJobRegistry.cleanup`` retrying the RQ jobs whose heartbeat lapsed
  (:meth:`shared.rqadapter.storage.QueueBatches.requeue_abandoned`); its ``log`` and the message its
  dequeue loop logs at each failed try (:data:`shared.rqadapter.worker.RQ_CONNECTION_RETRY`),
  reported to the outage tracker instead (:class:`shared.rqadapter.worker.OutageLog`).
"""

from __future__ import annotations

TESTED_RQ = ((3, 0), (3, 1))  # at least, below: keep in step with pyproject.toml


def rq_version() -> tuple[int, ...]:
    import rq  # noqa: PLC0415 - only its version

    return tuple(int(part) for part in rq.__version__.split(".")[:2] if part.isdigit())


def rq_is_tested() -> bool:
    low, high = TESTED_RQ
    return low <= rq_version() < high
