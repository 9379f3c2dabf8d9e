"""Receiver: signed 12 KB deliveries from wrk on loopback at 16 and 64 connections: acknowledged
deliveries/s and latency p50/p99, against a bare Starlette endpoint that only verifies the HMAC and
answers 202, started the same way in the same run (the ratio is what to compare across machines).

The server runs pinned to CPU 0 and wrk to CPU 1 where the machine has two. Needs ``wrk``
(Debian's package: ``apt-get install wrk``). ``BENCH_MIN_REPLICAS_ACK=1`` runs the receiver with
``redis.min_replicas_ack`` 1 against a Redis with one replica (the cost of Redis's ``WAIT``);
``BENCH_COMPRESS_BODIES=true`` (or ``false``) sets ``queue.compress_bodies``.

Each connection count is measured ``BENCH_RECEIVER_RUNS`` times (5), bare endpoint and receiver in turn, and
the summary says in how many runs the receiver met the targets: at least ``TARGET_RATIO`` of the
bare endpoint's deliveries per second, with a p99 at most ``TARGET_P99`` times the bare endpoint's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from shared.signing import sign
from stack.ports import free_port
from stack.redis_server import RedisServer

SECRET = "bench-secret"
DURATION = os.environ.get("BENCH_SECONDS", "10")
RUNS = int(os.environ.get("BENCH_RECEIVER_RUNS", "5"))
TARGET_RATIO = 0.65
TARGET_P99 = 2.0
SAMPLE = Path(__file__).resolve().parent.parent / "stack" / "samples" / "9-workflow_job-completed.json"
# wrk: a new delivery id per request; the body (and so its signature) stays the same.
LUA = """
counter = 0
request = function()
  counter = counter + 1
  local id = tostring(os.time()) .. "-" .. tostring(counter) .. "-" .. tostring(math.random(1e9))
  wrk.headers["X-GitHub-Delivery"] = "bench-" .. id
  return wrk.format("POST", "/webhook")
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.errors.status,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
"""


def body_of_size(size: int) -> bytes:
    data = json.loads(SAMPLE.read_text())
    data["padding"] = "x" * max(0, size - len(json.dumps(data)))
    return json.dumps(data).encode()


def pin(pid: int, cpu: int) -> None:
    """Keep server and load generator on different cores where there are two."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(pid, {cpu})


def wait_up(port: int, path: str = "/health") -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing on port {port}")


def wrk(port: int, connections: int, body: bytes, workdir: Path) -> dict[str, float]:
    script = workdir / "deliveries.lua"
    headers = [
        "-H",
        "Content-Type: application/json",
        "-H",
        "X-GitHub-Event: workflow_job",
        "-H",
        "X-GitHub-Hook-ID: 1",
        "-H",
        f"X-Hub-Signature-256: {sign(SECRET, body)}",
    ]
    script.write_text(LUA + f'\nwrk.method = "POST"\nwrk.body = {json.dumps(body.decode())}\n')
    command = ["wrk", "-t", "2", "-c", str(connections), "-d", f"{DURATION}s", "-s", str(script), *headers,
               f"http://127.0.0.1:{port}/webhook"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pin(process.pid, 1)
    stdout, stderr = process.communicate()
    found = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+)", stdout)
    if not found:
        raise RuntimeError(stdout + stderr)
    requests, bad, p50, p99, micros = (int(x) for x in found.groups())
    return {
        "per_second": round((requests - bad) / (micros / 1e6)),
        "non_2xx": bad,
        "p50_ms": p50 / 1000,
        "p99_ms": p99 / 1000,
    }


def batch_totals(port: int) -> tuple[float, float]:
    """The receiver's group-commit batches so far: (deliveries, batches)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    found = {
        name: float(value)
        for name, value in re.findall(r"^github_actions_webhook_batch_size_(sum|count) (\S+)$", text, re.M)
    }
    return found.get("sum", 0.0), found.get("count", 0.0)


def main() -> dict[str, dict[str, float]]:
    if shutil.which("wrk") is None:
        print("receiver skipped: install wrk (apt-get install wrk)")  # noqa: T201
        return {}
    body = body_of_size(12 * 1024)
    results: dict[str, dict[str, float]] = {}
    replicas = int(os.environ.get("BENCH_MIN_REPLICAS_ACK", "0"))
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        workdir = Path(tmp)
        replica = RedisServer(workdir / "replica", extra_args=["--replicaof", redis.host, str(redis.port)])
        if replicas:
            replica.start()
        receiver_port, bare_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GHA_EXPORTER_")}
        env.update(
            GHA_EXPORTER_REDIS__URL=redis.url,
            GHA_EXPORTER_WEBHOOK__SECRETS=SECRET,
            GHA_EXPORTER_RECEIVER__HOST="127.0.0.1",
            GHA_EXPORTER_RECEIVER__PORT=str(receiver_port),
            GHA_EXPORTER_LOG__LEVEL="warning",
            GHA_EXPORTER_REDIS__MIN_REPLICAS_ACK=str(replicas),
        )
        if "BENCH_COMPRESS_BODIES" in os.environ:
            env["GHA_EXPORTER_QUEUE__COMPRESS_BODIES"] = os.environ["BENCH_COMPRESS_BODIES"]
        servers = {
            "receiver": subprocess.Popen([sys.executable, "-m", "receiver"], env=env),
            "bare": subprocess.Popen([sys.executable, "-m", "bench.bare_app", str(bare_port), SECRET]),
        }
        for server in servers.values():
            pin(server.pid, 0)
        try:
            wait_up(receiver_port)
            wait_up(bare_port, "/webhook")
            for connections in (16, 64):
                met = []
                for run in range(1, RUNS + 1):
                    pair = {}
                    for name, port in (("bare", bare_port), ("receiver", receiver_port)):
                        before = batch_totals(port) if name == "receiver" else (0.0, 0.0)
                        result = wrk(port, connections, body, workdir)
                        if name == "receiver":
                            done = (a - b for a, b in zip(batch_totals(port), before, strict=True))
                            deliveries, batches = done
                            result["mean_batch"] = round(deliveries / max(1.0, batches), 1)
                        pair[name] = results[f"{name}_{connections}_{run}"] = result
                        label = f"{name} min_replicas_ack={replicas}" if name == "receiver" else name
                        print(f"receiver run={run} {label} connections={connections} {result}")  # noqa: T201
                    ratio = pair["receiver"]["per_second"] / pair["bare"]["per_second"]
                    p99 = pair["receiver"]["p99_ms"] / max(pair["bare"]["p99_ms"], 0.001)
                    met.append(ratio >= TARGET_RATIO and p99 <= TARGET_P99)
                    line = f"connections={connections} ratio {ratio:.2f} p99 {p99:.2f}x bare"
                    print(f"receiver run={run} {line}")  # noqa: T201
                targets = f"ratio >= {TARGET_RATIO}, p99 <= {TARGET_P99}x bare"
                summary = f"connections={connections} targets ({targets}) met in {sum(met)} of {RUNS} runs"
                print(f"receiver {summary}")  # noqa: T201
        finally:
            for process in servers.values():
                process.terminate()
                process.wait(30)
            replica.stop()
    return results


if __name__ == "__main__":
    main()
