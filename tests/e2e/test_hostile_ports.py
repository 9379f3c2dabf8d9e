"""Slow and greedy clients against the real processes on loopback: slowloris on the worker's port
under a container's descriptor limit, and bodies that never arrive on the receiver's. Each figure is
printed at the end of the run (``hostile client figures``) and kept in the README."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from bench.cluster import rss_mb
from bench.load import SECRET as LOAD_SECRET
from bench.load import sends
from bench.slowloris import Trickle, post_once
from bench.workload import deliveries
from stack.redis_server import RedisServer
from tests.e2e.system import System, scrape, total

pytestmark = pytest.mark.e2e
SECRET = LOAD_SECRET  # what the load generator signs with
PROBE_SECONDS = 3.0  # the chart's liveness probe: timeoutSeconds 3, failureThreshold 3, every 10 s
PROMPT_SECONDS = 1.0  # how soon a probe is answered as a rule (reported, not a bound: see below)
ATTACK_SECONDS = 30.0  # three rounds of trickled lines
SLOW_BODIES = 1_200


@pytest.fixture(name="system")
def _system(tmp_path: Path):
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    system = System(redis.url, SECRET, tmp_path)
    system.extra_env.update(GHA_EXPORTER_LOG__LEVEL="info")
    yield system
    system.stop_all()
    redis.stop()


def probe(url: str) -> float | str:
    """Seconds until the whole answer arrived, or why it did not within PROBE_SECONDS."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS) as answer:  # noqa: S310 - loopback
            answer.read()
    except (OSError, urllib.error.URLError) as error:
        reason = getattr(error, "reason", error)
        return f"{type(reason).__name__} after {time.monotonic() - started:.2f} s"
    elapsed = time.monotonic() - started
    return elapsed if elapsed <= PROBE_SECONDS else f"answered in {elapsed:.2f} s"


def test_the_worker_answers_its_probes_under_3000_slowloris_connections_and_300_descriptors(system, figures):
    """Expected: with 3,000 connections trickling a header line every 10 s and the worker limited to
    300 descriptors, no /health or /metrics probe fails twice in a row (the kubelet restarts the
    worker after three failures in a row of probes 10 s apart; these are a few milliseconds apart)
    and nearly all are answered within a second, the worker's memory stays bounded, and the
    connections it closed are counted (slow_request, shed).

    Not every probe: the attack's ~2,700 reconnections arrive at once every 10 s, and when they
    exhaust the descriptors libuv (uvloop's loop) closes what waits in the backlog (its EMFILE
    reserve), so a probe caught there can fail; two CI runs out of about thirty saw one probe in
    ~9,700 fail (the reason is printed with the figures)."""
    system.start("worker", descriptors=300)
    worker = system.processes["worker"]
    base = f"http://127.0.0.1:{system.worker_port}"
    before = rss_mb(worker.pid)
    answered: list[float] = []
    failed: list[str] = []
    in_a_row: Counter[str] = Counter()  # failures in a row, by path
    worst_run = 0
    peak = before
    with Trickle(system.worker_port, 3000, b"GET /metrics HTTP/1.1\r\nHost: x\r\n") as attack:
        assert attack.established.wait(120), f"{attack.opened} connections made"
        deadline = time.monotonic() + ATTACK_SECONDS
        while time.monotonic() < deadline:
            for path in ("/health", "/metrics"):
                seconds = probe(base + path)
                if isinstance(seconds, str):
                    at = ATTACK_SECONDS - (deadline - time.monotonic())
                    failed.append(f"{path} at {at:.1f} s: {seconds}")
                    in_a_row[path] += 1
                    worst_run = max(worst_run, in_a_row[path])
                else:
                    answered.append(seconds)
                    in_a_row[path] = 0
            peak = max(peak, rss_mb(worker.pid))
        opened, closed = attack.opened, attack.closed
    samples = scrape(base + "/metrics")
    shed = total(samples, "github_actions_http_refusals_total", reason="shed")
    slow = total(samples, "github_actions_http_refusals_total", reason="slow_request")
    late = sum(1 for seconds in answered if seconds > PROMPT_SECONDS)
    figures.append(
        f"worker, 3,000 slowloris connections, 300 descriptors, {ATTACK_SECONDS:.0f} s:"
        f" {len(answered)} probes answered (slowest {max(answered):.3f} s, {late} after"
        f" {PROMPT_SECONDS:.0f} s), {len(failed)} failed {failed};"
        f" {opened} connections made, {closed} closed by the worker (shed {shed:.0f}, slow_request"
        f" {slow:.0f}); RSS {before:.0f} -> peak {peak:.0f} MB"
    )
    assert worst_run < 2, f"probes failed in a row: {failed}"
    assert len(failed) + late <= len(answered) // 1000, f"failed {failed}, {late} after {PROMPT_SECONDS} s"
    assert worker.poll() is None  # still running
    assert shed + slow >= 2_700  # the attack's connections were closed, not held
    assert peak < 384 * 0.5  # half the Kubernetes memory limit (deploy/kubernetes: 384 MiB)


def test_slow_bodies_do_not_keep_signed_deliveries_out_of_the_receiver(system, figures):
    """Expected: 1,200 connections that announce a 1,000-byte body and send 2 bytes, past the default
    receiver.limit_concurrency (1,000): every signed delivery sent meanwhile is answered 202, and
    the slow connections are closed and counted. (Before, every delivery was answered 503.)"""
    system.start("receiver")
    port = system.receiver_port
    opening = b"POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    opening += b"Content-Length: 1000\r\n\r\nab"  # and never the other 998 bytes
    real = sends(deliveries(10), prefix="slow-bodies")
    # one after the other, as a slow attacker would: a burst is answered 503 by its own excess
    with Trickle(port, SLOW_BODIES, opening, line=b"c", stagger=0.002) as attack:
        assert attack.established.wait(60), f"{attack.opened} connections made"
        started = time.monotonic()
        answers = Counter(post_once(port, send) for send in real)
        elapsed = time.monotonic() - started
    samples = scrape(system.receiver_metrics_url)
    refused = {
        reason: total(samples, "github_actions_webhook_rejections_total", reason=reason)
        for reason in ("shed", "slow_request")
    }
    figures.append(
        f"receiver, {SLOW_BODIES:,} slow bodies at limit_concurrency 1,000: {len(real)} signed deliveries"
        f" {dict(answers)} in {elapsed:.2f} s; slow connections closed: {refused}"
    )
    assert answers == {"202": len(real)}
    assert refused["shed"] >= 1  # the cap was reached: a delivery made room by closing a slow body
