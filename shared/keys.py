"""Every Redis key the exporter writes, built here and nowhere else, and the README's table of them.

All of ours are under one prefix in one database; RQ's (``rq:...``) are RQ's, listed for the
reader. ``python -m shared.keys`` prints the table (the README's "Redis keys"; a test keeps the two
the same), and ``tests/integration/test_redis_keys.py`` fails on any key written while the system
runs that the table does not list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

PREFIX = "gha-exporter"


def _key(*parts: str) -> str:
    return ":".join((PREFIX, *parts))


# -- a delivery (shared/marks.py) ------------------------------------------------------------------
def mark(hook_id: str, delivery_id: str) -> str:
    """A delivery's mark. The hook id is digits (or empty) and the delivery id is GitHub's GUID, so
    the first ``:`` after ``delivery:`` ends the hook id and no two distinct pairs share a key."""
    return _key("delivery", hook_id, delivery_id)


# -- the ledger (worker/ledger.py) -------------------------------------------------------------------
def job_attempt(job_id: int, attempt: int) -> str:
    """A job attempt's id (its state's key is :func:`state` of it)."""
    return f"job:{job_id}:{attempt}"


def run_attempt(run_id: int, attempt: int) -> str:
    return f"run:{run_id}:{attempt}"


def runner(owner: str, runner_id: int | None, name: str) -> str:
    """A self-hosted runner's id, as the webhooks name it (its state's key is :func:`state` of it):
    GitHub numbers runners per scope, so the owner, the number and the name together."""
    return f"runner:{owner}:{'' if runner_id is None else runner_id}:{name}"


def state(attempt: str) -> str:
    return _key("state", attempt)


def inflight(kind: str, phase: str) -> str:
    return _key("inflight", kind, phase)


def aggregate(family: str, label_names: Sequence[str]) -> str:
    return _key("aggregate", family, ",".join(label_names))


def labelsets(family: str, label_names: Sequence[str]) -> str:
    return _key("labelsets", family, ",".join(label_names))


def gate(token: str) -> str:
    return _key("gate", token)


RECENT_FAILURES = _key("recent", "failures")
DATASET = _key("dataset")

# -- reconciliation (worker/reconcile.py) ------------------------------------------------------------
RECONCILE_STATUS = _key("reconcile")
RECONCILE_LOCK = _key("lock", "reconcile")


def redelivered(hook_id: int, guid: str) -> str:
    return _key("reconcile", "redelivered", str(hook_id), guid)


def unrecoverable(hook_id: int, guid: str) -> str:
    return _key("reconcile", "unrecoverable", str(hook_id), guid)


# -- the runners' inventory (worker/runner_inventory.py, worker/runner_poll.py) ------------------------
RUNNERS = _key("runners")
RUNNERS_LOCK = _key("lock", "runners")


# -- traces waiting to be sent (worker/outbox.py) ---------------------------------------------------
OUTBOX = _key("outbox")
OUTBOX_BYTES = _key("outbox", "bytes")
OUTBOX_SENDING = _key("outbox", "sending")
OUTBOX_DROPPED = _key("outbox", "dropped")
OUTBOX_LOCK = _key("lock", "outbox")


# -- batches a worker holds (worker/combine.py) ------------------------------------------------------
def claimed(queue: str) -> str:
    return _key("claimed", queue)


def dequeued_seen(queue: str) -> str:
    return _key("dequeued-seen", queue)


def recover_lock(queue: str) -> str:
    return _key("lock", "recover", queue)


class KeyDoc(NamedTuple):
    pattern: str
    kind: str
    owner: str
    expires: str
    size: str


INTRO = (
    "Everything the exporter keeps is in one Redis database; `shared/keys.py` builds every key of ours."
    " `<queue>` is `queue.name` (default `gha-exporter`); sizes are `MEMORY USAGE` measured with the"
    " benchmarks' real-shaped deliveries (12 KB bodies). `tests/integration/test_redis_keys.py` records"
    " every key written while the system runs and fails on any that this table does not list."
)

# fmt: off
KEYS: tuple[KeyDoc, ...] = (
    KeyDoc(
        "`gha-exporter:delivery:<hook id>:<delivery id>`",
        "hash: `state` (`queued`, `applied`), `body` while queued",
        "`shared/marks.py`",
        "`webhook.dedupe_ttl_seconds` (3.5 days) after its last write",
        "while queued, the body LZ4-compressed + 0.3 KB: 3.2 KB for a 12 KB delivery (12.8 KB with "
        "`queue.compress_bodies: false`; see `docs/benchmarks.md`, \"Backlog\"); 0.1 KB applied",
    ),
    KeyDoc(
        "`gha-exporter:state:job:<job id>:<attempt>`",
        "hash",
        "`worker/ledger.py`",
        "while in flight, `state.job_ttl_seconds` (7 days) after its last change; once completed, as long"
        " as the marks (`webhook.dedupe_ttl_seconds`, 3.5 days)",
        "0.13 KB",
    ),
    KeyDoc(
        "`gha-exporter:state:run:<run id>:<attempt>`",
        "hash (once completed and its queue time counted: only `phase` and `queue_observed`)",
        "`worker/ledger.py`",
        "while in flight, `state.run_ttl_seconds` (36 days) after its last change; once completed, as "
        "long as the marks",
        "0.5 KB",
    ),
    KeyDoc(
        "`gha-exporter:state:runner:<owner>:<runner id>:<runner name>`",
        "hash: the self-hosted runner's last jobs (start, completion, group), the one it is busy with "
        "(`worker/busy_runners.py`)",
        "`worker/ledger.py`",
        "while busy, `state.job_ttl_seconds` after its last change; idle, as long as the marks",
        "0.5 KB",
    ),
    KeyDoc(
        "`gha-exporter:inflight:<job, run or runner>:<phase>`",
        "sorted set: one member per attempt in that phase",
        "`worker/ledger.py` (members: `worker/codec.py`)",
        "members leave when the attempt moves on, or at its TTL (the sweeper)",
        "0.15 KB per member",
    ),
    KeyDoc(
        "`gha-exporter:aggregate:<family>:<label names>`",
        "hash: the family's series (`worker/codec.py`)",
        "`worker/ledger.py`",
        "never",
        "0.1 KB per counter series, 0.4-0.6 KB per histogram series with one bucket used (more with "
        "longer label values), plus about 0.2-0.3 KB per bucket holding an exemplar",
    ),
    KeyDoc(
        "`gha-exporter:recent:failures`",
        "list: the last completed jobs that did not succeed (JSON), for `/api/v1/recent`",
        "`worker/ledger.py`",
        "never; cut to `worker.recent_failures` (200) at each push",
        "0.36 KB per job (72 KB for 200)",
    ),
    KeyDoc(
        "`gha-exporter:labelsets:<family>:<label names>`",
        "set: the family's label sets (cardinality guard; the in-flight gauges' too, e.g. "
        "`labelsets:jobs_queued:runs_on,runner_group`)",
        "`worker/ledger.py`",
        "never",
        "0.2 KB per label set",
    ),
    KeyDoc(
        "`gha-exporter:dataset`",
        "string: the dataset's epoch, `<random id> <unix time>`, written by the first process to find it "
        "missing",
        "`shared/dataset.py`",
        "never (when it disappears or changes, Redis lost its data: every process logs it and counts "
        "`redis_dataset_resets_total`)",
        "—",
    ),
    KeyDoc(
        "`gha-exporter:gate:<random>`",
        "string: set by the marks' settle script when every delivery of a batch is still as read, deleted "
        "by the batch's write in the same transaction (without it nothing is written)",
        "`worker/ledger.py` (`shared/marks.settle.lua`, `worker/ledger.write.lua`)",
        "deleted at once; 60 s if the write never ran",
        "—",
    ),
    KeyDoc(
        "`gha-exporter:reconcile`",
        "hash: `next_pass`, `last_success:<hook>`, `hook_id:app/hook`, `rate_limit_remaining`, "
        "`resume:<hook>` (a log read in part: its next page's cursor, how far back it goes, when the "
        "reading began; gone once a reading reaches the log's start)",
        "`worker/reconcile.py`",
        "never (a few fields)",
        "0.2 KB with one hook",
    ),
    KeyDoc(
        "`gha-exporter:reconcile:redelivered:<hook id>:<delivery id>`",
        "string: redeliveries asked for",
        "`worker/reconcile.py`",
        "`github.redelivery_window_seconds`",
        "0.14 KB",
    ),
    KeyDoc(
        "`gha-exporter:reconcile:unrecoverable:<hook id>:<delivery id>`",
        "string: counted as unrecoverable once",
        "`worker/reconcile.py`",
        "three redelivery windows",
        "0.15 KB",
    ),
    KeyDoc(
        "`gha-exporter:lock:reconcile`",
        "string: the lease of the worker running a pass",
        "`worker/reconcile.py` (redis-py's `Lock`)",
        "30 s, renewed while the pass runs",
        "—",
    ),
    KeyDoc(
        "`gha-exporter:runners`",
        "hash: per scope of `github.runners`, its last complete reading (JSON: when, and each runner's id, "
        "name, OS, state, group, labels) and `at:<scope>` (when); `next_poll`",
        "`worker/runner_inventory.py`",
        "never; a scope no longer polled is dropped at the next poll",
        "0.1 KB per runner (5,000 runners: 512 KB)",
    ),
    KeyDoc(
        "`gha-exporter:lock:runners`",
        "string: the lease of the worker polling the runners",
        "`worker/runner_poll.py` (redis-py's `Lock`)",
        "30 s, renewed while the poll runs",
        "—",
    ),
    KeyDoc(
        "`gha-exporter:outbox`",
        "stream: the spans of completed jobs and runs not yet sent (traces on), one entry each",
        "`worker/ledger.py` adds, `worker/outbox.py` sends and deletes",
        "deleted once the collector took it; past `traces.max_pending` or `traces.max_pending_bytes` the "
        "oldest are dropped",
        "0.6 KB per job (1.3 KB with `traces.steps`), 0.4 KB per run",
    ),
    KeyDoc(
        "`gha-exporter:outbox:bytes`, `gha-exporter:outbox:sending`, `gha-exporter:outbox:dropped`, "
        "`gha-exporter:lock:outbox`",
        "the outbox's size, the last entry being sent (never dropped), the entries dropped by reason, "
        "the lease of the worker sending",
        "`worker/outbox.py`",
        "`sending` and the lease: seconds after the last send; the others never",
        "—",
    ),
    KeyDoc(
        "`gha-exporter:claimed:<queue>`",
        "sorted set: batches a worker took with the one it runs, scored by the last renewal of its lease",
        "`worker/combine.py`",
        "members leave when applied, or go back to the queue when not renewed for `worker.lease_seconds`",
        "0.1 KB per batch",
    ),
    KeyDoc(
        "`gha-exporter:dequeued-seen:<queue>`",
        "hash: batch id → when the sweeper first saw it taken from the queue (RQ's intermediate list) "
        "but not started",
        "`worker/combine.py` (`shared/rqadapter/storage.py`)",
        "entries leave when the job starts, or go back to the head of the queue once seen so for "
        "`worker.lease_seconds` (its worker died between RQ's dequeue and the start)",
        "—",
    ),
    KeyDoc(
        "`gha-exporter:lock:recover:<queue>`",
        "string: held while one worker's sweeper puts a dead worker's batch back",
        "`worker/combine.py`",
        "a third of `worker.lease_seconds`",
        "—",
    ),
    KeyDoc(
        "`rq:queue:<queue>`, `rq:queue:<queue>:intermediate`",
        "lists of batch ids: waiting; taken by a worker, not yet started",
        "RQ (`shared/rqadapter/storage.py` pops and pushes)",
        "never",
        "0.05 KB per batch",
    ),
    KeyDoc(
        "`rq:job:<id>`",
        "hash: one batch, the bodiless envelopes of up to `receiver.max_batch` deliveries",
        "RQ (`shared/queueing.py` sets its options)",
        "deleted once applied (RQ keeps a finished one `queue.result_ttl_seconds`, a failed one "
        "`queue.failure_ttl_seconds`)",
        "1.1 KB for 32 deliveries",
    ),
    KeyDoc(
        "`rq:results:<id>`",
        "stream: a batch's result",
        "RQ",
        "`queue.result_ttl_seconds`",
        "6.5 KB with its finished job's hash (a stream's smallest node is 4 KB): 20 MB at 50 deliveries/s"
        " in batches of one delivery, bounded by the 60 s",
    ),
    KeyDoc(
        "`rq:wip:<queue>`, `rq:finished:<queue>`, `rq:failed:<queue>`, `rq:scheduled:<queue>`, "
        "`rq:deferred:<queue>`, `rq:canceled:<queue>`",
        "sorted sets: RQ's registries",
        "RQ",
        "their members expire with their jobs",
        "0.1 KB per batch",
    ),
    KeyDoc(
        "`rq:executions:<id>`, `rq:execution:<id>:<execution id>`, `rq:worker:<name>`, "
        "`rq:worker:<name>:executions`, `rq:workers`, `rq:workers:<queue>`, `rq:queues`, "
        "`rq:clean_registries:<queue>`, `rq:clean_groups`, `rq:suspended`",
        "RQ's bookkeeping: a batch's runs, the workers' registrations, locks",
        "RQ",
        "runs with their job; registrations minutes after a worker's last heartbeat; locks seconds to "
        "minutes",
        "0.2 KB per batch, 1 KB per worker",
    ),
)
# fmt: on


def reference_markdown() -> str:
    rows = ["| key | type | owner | expires | size per entry |", "|---|---|---|---|---|"]
    rows += [f"| {k.pattern} | {k.kind} | {k.owner} | {k.expires} | {k.size} |" for k in KEYS]
    return "\n".join(rows)


if __name__ == "__main__":
    print(reference_markdown())  # noqa: T201 - a command-line tool
