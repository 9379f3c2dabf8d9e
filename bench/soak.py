"""``python -m bench soak [MINUTES] [RATE]``: real-shaped runs played at RATE deliveries a second for
MINUTES minutes through the loopback cluster, then Redis's bytes per delivery by what holds them and
how long it is kept, and what that projects to once every window is full, at 5, 50 and 500
deliveries a second.

Redis is measured key by key (``MEMORY USAGE``) at the end of the play, before RQ's finished jobs
(kept ``queue.result_ttl_seconds``) expire, and again once the worker drained everything and they
expired, by how much ``used_memory`` drops when that kind's keys are deleted (``MEMORY USAGE`` leaves
out some of Redis's own bookkeeping: a key's expiry entry, its slot in the key table). What grows
with the rate is what is kept for a time: the delivery marks and the states of completed jobs and
runs (``webhook.dedupe_ttl_seconds``), RQ's finished jobs (``queue.result_ttl_seconds``); what is in
flight grows with the jobs waiting or running, not the rate (at 0 here: every run completes); the
aggregates grow with the label sets. The projection is, for each kind, its bytes per delivery x the
rate x how long it is kept, plus the aggregates as measured.
"""

from __future__ import annotations

import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

from redis import Redis

from bench.cluster import Cluster, wait_drained
from bench.load import LoadGenerator, Send
from bench.workload import deliveries
from shared.settings_loader import load_settings

RATES = (5, 50, 500)


def kind_of(key: str) -> str:
    if key.startswith("gha-exporter:delivery:"):
        return "marks"
    if key.startswith("gha-exporter:state:"):
        return "states " + key.split(":")[2]
    if key.startswith(("rq:job:", "rq:results:", "rq:finished:", "rq:executions:", "rq:execution:")):
        return "rq finished jobs"
    if key.startswith(("gha-exporter:aggregate:", "gha-exporter:labelsets:", "gha-exporter:recent:")):
        return "aggregates"
    return "other"


def bytes_by_kind(connection: Redis) -> dict[str, int]:
    sizes: dict[str, int] = defaultdict(int)
    for key in connection.scan_iter(count=1000):
        sizes[kind_of(key.decode())] += int(connection.memory_usage(key, samples=0) or 0)
    return dict(sizes)


def freed_by_deleting(connection: Redis, kind: str) -> int:
    """Delete every key of ``kind``; how much ``used_memory`` went down."""
    before = int(connection.info("memory")["used_memory"])
    keys = [key for key in connection.scan_iter(count=1000) if kind_of(key.decode()) == kind]
    for start in range(0, len(keys), 1000):
        connection.delete(*keys[start : start + 1000])
    return before - int(connection.info("memory")["used_memory"])


def main(argv: list[str] | None = None) -> dict[str, object]:
    args = list(argv or [])
    minutes = float(args[0]) if args else 2.0
    rate = float(args[1]) if len(args) > 1 else 50.0
    settings = load_settings(environ={"GHA_EXPORTER_WEBHOOK__SECRETS": "x"})
    kept = {
        "marks": settings.webhook.dedupe_ttl_seconds,
        "states job": settings.webhook.dedupe_ttl_seconds,
        "states run": settings.webhook.dedupe_ttl_seconds,
        "rq finished jobs": settings.queue.result_ttl_seconds,
    }
    runs = max(1, int(minutes * 60 * rate / 9))
    # GitHub's shapes, which the marks' keys are made of: a GUID per delivery, a hook id of 9 digits
    played = [Send(event, body, str(uuid.uuid4())) for event, body in deliveries(runs)]
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), receivers=2, workers=1).start()
        try:
            rss = {name: cluster.rss_mb(name) for name in cluster.processes}
            connection = cluster.connection()
            used_before = int(connection.info("memory")["used_memory"])
            started = time.monotonic()
            generator = LoadGenerator(cluster.receiver_ports, 32, 900, rate, hook_id="512345678")
            stats = generator.play(played)
            seconds = time.monotonic() - started
            wait_drained(connection, len(stats.acknowledged))
            at_end = bytes_by_kind(connection)  # RQ's finished jobs of the last result_ttl still there
            time.sleep(settings.queue.result_ttl_seconds + 2)
            for _key in connection.scan_iter(count=1000):  # a SCAN reclaims what expired meanwhile
                pass
            used = int(connection.info("memory")["used_memory"])
            settled = {
                kind: freed_by_deleting(connection, kind) for kind in ("marks", "states job", "states run")
            }
            settled["aggregates"] = freed_by_deleting(connection, "aggregates")
            rss_after = {name: cluster.rss_mb(name) for name in cluster.processes}
            connection.close()
        finally:
            cluster.shutdown()
    count = len(played)
    per_delivery = {kind: size / count for kind, size in settled.items() if kind in kept}
    # RQ's finished jobs at the end of the play: those of the last result_ttl seconds, at this rate
    rq_window = min(seconds, settings.queue.result_ttl_seconds)
    per_delivery["rq finished jobs"] = at_end.get("rq finished jobs", 0) / max(1.0, rq_window * rate)
    fixed = settled["aggregates"]
    projection = {
        f"{r}/s": round((sum(per_delivery[k] * r * kept[k] for k in per_delivery) + fixed) / 1e9, 2)
        for r in RATES
    }
    result: dict[str, object] = {
        "minutes": round(seconds / 60, 1),
        "rate": rate,
        "deliveries": count,
        "acknowledged": len(stats.acknowledged),
        "bytes_per_delivery": {k: round(v) for k, v in per_delivery.items()},
        "kept_seconds": kept,
        "aggregates_bytes": round(fixed),
        "redis_grew_bytes_per_delivery": round((used - used_before) / count),
        "redis_used_mb_after": round(used / 2**20, 1),
        "projected_gb": projection,
        "rss_mb": {name: (round(rss[name]), round(rss_after[name])) for name in rss},
    }
    print(f"soak {result}")  # noqa: T201 - a benchmark prints its figures
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
