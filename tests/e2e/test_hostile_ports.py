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
PROBE_SECONDS = 1.0  # the probes' timeout: stricter than the Kubernetes liveness probe's 3 s
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


def probe(url: str) -> float | None:
    """Seconds until the whole answer arrived, or None if it did not within PROBE_SECONDS."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=PROBE_SECONDS) as answer:  # noqa: S310 - loopback
            answer.read()
    except (OSError, urllib.error.URLError):
        return None
    elapsed = time.monotonic() - started
    return elapsed if elapsed <= PROBE_SECONDS else None


def test_the_worker_answers_its_probes_under_3000_slowloris_connections_and_300_descriptors(system, figures):
    """Expected: with 3,000 connections trickling a header line every 10 s and the worker limited to
    300 descriptors, every /health and /metrics probe is answered within a second, the worker's
    memory stays bounded, and the connections it closed are counted (slow_request, shed)."""
    system.start("worker", descriptors=300)
    worker = system.processes["worker"]
    base = f"http://127.0.0.1:{system.worker_port}"
    before = rss_mb(worker.pid)
    answered: list[float] = []
    failed: Counter[str] = Counter()
    peak = before
    with Trickle(system.worker_port, 3000, b"GET /metrics HTTP/1.1\r\nHost: x\r\n") as attack:
        assert attack.established.wait(120), f"{attack.opened} connections made"
        deadline = time.monotonic() + ATTACK_SECONDS
        while time.monotonic() < deadline:
            for path in ("/health", "/metrics"):
                seconds = probe(base + path)
                if seconds is None:
                    failed[f"{path} at {ATTACK_SECONDS - (deadline - time.monotonic()):.1f} s"] += 1
                else:
                    answered.append(seconds)
            peak = max(peak, rss_mb(worker.pid))
        opened, closed = attack.opened, attack.closed
    samples = scrape(base + "/metrics")
    shed = total(samples, "github_actions_http_refusals_total", reason="shed")
    slow = total(samples, "github_actions_http_refusals_total", reason="slow_request")
    figures.append(
        f"worker, 3,000 slowloris connections, 300 descriptors, {ATTACK_SECONDS:.0f} s:"
        f" {len(answered)} probes answered (slowest {max(answered):.3f} s),"
        f" {sum(failed.values())} not within {PROBE_SECONDS:.0f} s;"
        f" {opened} connections made, {closed} closed by the worker (shed {shed:.0f}, slow_request"
        f" {slow:.0f}); RSS {before:.0f} -> peak {peak:.0f} MB"
    )
    assert not failed, f"probes not answered within {PROBE_SECONDS} s: {dict(failed)}"
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
