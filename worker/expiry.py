"""In-flight entries whose state expired, counted and dropped (``state.*_ttl_seconds`` after the
state's last write: lost deliveries made visible as ``state_expired_total``)."""

from __future__ import annotations

from redis import Redis

from shared import keys
from shared.scripts import LuaScript
from worker import codec
from worker.metrics import LabelPolicy
from worker.state import INFLIGHT_PHASES


class Expiry:
    def __init__(self, connection: Redis, policy: LabelPolicy, *, job_ttl: int, run_ttl: int) -> None:
        self._connection = connection
        self._policy = policy
        self._job_ttl = job_ttl
        self._run_ttl = run_ttl
        self._sweep = LuaScript("worker", "expiry.sweep")

    def sweep(self, now: float) -> int:
        """Count and drop in-flight entries whose state expired (``state.*_ttl_seconds`` after its
        last write); safe to run on every worker."""
        zsets, args = [], [repr(now), keys.state(""), codec.SEPARATOR]
        expired_key = self._policy.aggregate_key("state_expired_total")
        expired_names = self._policy.names["state_expired_total"]
        for kind, phases in INFLIGHT_PHASES.items():
            ttl = self._run_ttl if kind == "run" else self._job_ttl  # a busy runner: as its job
            for phase in phases:
                zsets.append(keys.inflight(kind, phase))
                labels = codec.label_text(expired_names, [kind, phase])
                args += [str(ttl), expired_key, codec.field_name(labels, codec.VALUE)]
        return int(self._sweep(self._connection, zsets, args))
