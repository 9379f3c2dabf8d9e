"""In-flight API: ``GET /api/v1/inflight`` with 10,000 job attempts in flight (queued and in
progress, 50 runner label sets, 200 repositories), applied through the worker's processor; the
answer's time over HTTP (default limit 500, and all 10,000), with a filter, and the Redis memory the
in-flight jobs take. Target: 100 ms or less at 10,000. Then, with Chromium at hand (``.ci/run``
installs it), the page itself: how long until it shows the oldest 500 jobs, and how busy its main
thread is while it refreshes every 5 s and counts ages up every second."""

from __future__ import annotations

import json
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry
from redis import Redis

from shared.envelope import Envelope
from shared.metrics_http import MetricsServer
from shared.settings import load_settings
from stack.browser import chromium_available, headless_chromium
from stack.redis_server import RedisServer
from worker.api import InflightApi, json_route
from worker.page import page_routes

JOBS = 10_000
SAMPLE = Path(__file__).resolve().parent.parent / "stack" / "samples" / "1-workflow_job-queued.json"


def deliveries() -> list[dict[str, Any]]:
    data = json.loads(SAMPLE.read_text())
    data = data.get("payload", data)
    items = []
    for i in range(JOBS):
        job = data["workflow_job"]
        job.update(id=20_000_000 + i, labels=[f"pool-{i % 50}"], name=f"job-{i}")
        data["action"] = "queued" if i % 2 else "in_progress"
        data["repository"]["full_name"] = f"org/repo-{i % 200}"
        body = json.dumps(data).encode()
        items.append(Envelope.from_bytes("workflow_job", f"inflight-{i}", "1", time.time(), body).to_dict())
    return items


def page_in_browser(url: str, watch_seconds: float = 15.0) -> dict[str, float]:
    """The page in headless Chromium: ms from asking for it to its jobs table holding the oldest
    500, then the main thread's busy time (Chromium's own task accounting) per second over three
    refreshes."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415 - only with a browser at hand
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    driver = headless_chromium()
    try:
        started = time.perf_counter()
        driver.get(url)
        WebDriverWait(driver, 60).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")) == 500
        )
        shown_ms = (time.perf_counter() - started) * 1000
        driver.execute_cdp_cmd("Performance.enable", {})
        before, since = task_seconds(driver), time.perf_counter()
        time.sleep(watch_seconds)  # the window measured: three refreshes and fifteen age ticks
        busy = (task_seconds(driver) - before) / (time.perf_counter() - since)
        more = driver.find_element(By.ID, "jobs-more").text
    finally:
        driver.quit()
    print(f"inflight_api page: {more!r}")  # noqa: T201 - a benchmark prints its figures
    return {"page_shown_ms": round(shown_ms), "page_main_thread_busy_ms_per_s": round(busy * 1000, 1)}


def task_seconds(driver: Any) -> float:
    """Chromium's main-thread task time so far (the Performance domain's TaskDuration)."""
    metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


def best_ms(url: str, times: int = 5) -> tuple[float, int]:
    best, size = float("inf"), 0
    for _ in range(times):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - our loopback URL
            size = len(response.read())
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1), size


def main() -> dict[str, Any]:
    from worker.__main__ import build_processor  # noqa: PLC0415 - the worker's own wiring

    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        settings = load_settings(
            environ={"GHA_EXPORTER_REDIS__URL": redis.url, "GHA_EXPORTER_WEBHOOK__SECRETS": "b"}
        )
        connection = Redis.from_url(redis.url)
        built = build_processor(connection, settings, CollectorRegistry())
        empty = int(connection.info("memory")["used_memory"])
        items = deliveries()
        for start in range(0, JOBS, 500):
            built.processor.process_batch(items[start : start + 500])
        used = int(connection.info("memory")["used_memory"]) - empty
        api = InflightApi(built.ledger)
        server = MetricsServer(
            "127.0.0.1", 0, lambda _accept: ([b""], "text/plain"), lambda: True,
            {**page_routes(), "/api/v1/inflight": json_route(api.inflight),
             "/api/v1/recent": json_route(api.recent)},
        )  # fmt: skip
        server.start()
        base = f"http://127.0.0.1:{server.port}/api/v1/inflight"
        try:
            default_ms, default_bytes = best_ms(base)
            all_ms, all_bytes = best_ms(f"{base}?limit={JOBS}")
            filtered_ms, _ = best_ms(f"{base}?runs_on=pool-7&phase=queued")
            page = page_in_browser(f"http://127.0.0.1:{server.port}/") if chromium_available() else {}
        finally:
            server.stop()
            connection.close()
    result = {
        "inflight_jobs": JOBS,
        "limit_500_ms": default_ms,
        "limit_500_bytes": default_bytes,
        "all_ms": all_ms,
        "all_bytes": all_bytes,
        "filtered_ms": filtered_ms,
        "redis_bytes_per_inflight_job": round(used / JOBS),
        **page,
    }
    print(f"inflight_api {result}")  # noqa: T201 - a benchmark prints its figures
    return result


if __name__ == "__main__":
    main()
