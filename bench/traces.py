"""What traces cost: ``worker_drain`` with traces off and on, alternating (on: a collector on
loopback takes the spans while the worker drains; target: on >= 85 % of off, every workload); the
outbox's Redis bytes per job (the collector unreachable, so every entry stays); and the rate at
which the export loop empties a full outbox into the collector (spans/s).
``BENCH_WORKLOADS`` picks workloads (comma-separated), ``BENCH_ROUNDS`` the alternations (2)."""

from __future__ import annotations

import os
import statistics
import time

from prometheus_client import CollectorRegistry
from redis import Redis

from bench.otlp_sink import Collector
from bench.worker_drain import drain
from shared import keys
from shared.settings_loader import load_settings
from stack.ports import free_port
from worker.otlp import SpanMaker
from worker.otlp_client import OtlpClient
from worker.outbox import Outbox
from worker.trace_export import TraceExport, TraceMetrics

TARGET = 0.85
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))


def traced(endpoint: str) -> dict[str, str]:
    return {"GHA_EXPORTER_TRACES__OTLP_ENDPOINT": endpoint}


def sent_after(connection: Redis) -> dict[str, float | str]:
    """Seconds from the drain's end until the worker has sent every span (the outbox empty)."""
    drained = time.monotonic()
    while connection.xlen(keys.OUTBOX) > 0:
        time.sleep(0.02)
    return {"spans_sent_after_seconds": round(time.monotonic() - drained, 2)}


def outbox_figures(connection: Redis) -> dict[str, float | str]:
    """Bytes per entry in the outbox (its entries' own bytes, and Redis's MEMORY USAGE of the stream),
    then how fast the export loop sends them all to a collector on loopback."""
    waiting = Outbox(connection).waiting()
    memory = int(connection.memory_usage(keys.OUTBOX, samples=0) or 0)
    figures: dict[str, float | str] = {
        "outbox_entries": waiting.entries,
        "entry_bytes": round(waiting.bytes / max(1, waiting.entries)),
        "redis_bytes_per_entry": round(memory / max(1, waiting.entries)),
    }
    with Collector(decode=False) as collector:
        settings = load_settings(environ={"GHA_EXPORTER_WEBHOOK__SECRETS": "bench", **traced(collector.url)})
        metrics = TraceMetrics(CollectorRegistry(), "bench_")
        export = TraceExport(Outbox(connection), SpanMaker("bench"), OtlpClient(settings.traces), metrics)
        started = time.monotonic()
        export.send_all(lambda: True)
        elapsed = time.monotonic() - started
        figures["export_spans_per_second"] = round(metrics.exported._value.get() / elapsed)
        figures["export_seconds"] = round(elapsed, 2)
    return figures


def main() -> list[dict[str, float | str]]:
    chosen = os.environ.get("BENCH_WORKLOADS", "distinct,lifecycles,repetition").split(",")
    results: list[dict[str, float | str]] = []
    for workload in chosen:
        rates: dict[str, list[float]] = {"off": [], "on": []}
        with Collector(decode=False) as collector:
            for _ in range(ROUNDS):
                for mode in ("off", "on"):
                    env = traced(collector.url) if mode == "on" else {}
                    result = drain(1, workload=workload, settings_env=env, after=sent_after if env else None)
                    rates[mode].append(float(result["deliveries_per_second"]))
                    results.append({**result, "traces": mode})
        off, on = statistics.mean(rates["off"]), statistics.mean(rates["on"])
        followed = [r["spans_sent_after_seconds"] for r in results[-2 * ROUNDS :] if r["traces"] == "on"]
        verdict = "met" if on >= TARGET * off else "not met"
        print(  # noqa: T201 - a benchmark prints its figures
            f"traces workload={workload}: off {rates['off']} on {rates['on']} deliveries/s,"
            f" on/off {on / off:.2f} (target >= {TARGET}: {verdict}); every span sent {followed} s after"
            " the drain"
        )
    unreachable = f"http://127.0.0.1:{free_port()}/v1/traces"  # nothing listens: every entry stays
    for steps in ("false", "true"):
        env = {**traced(unreachable), "GHA_EXPORTER_TRACES__STEPS": steps}
        kept = drain(1, workload="distinct", settings_env=env, after=outbox_figures)
        print(f"traces outbox (steps {steps}): {kept}")  # noqa: T201
        results.append({**kept, "steps": steps})
    return results


if __name__ == "__main__":
    main()
