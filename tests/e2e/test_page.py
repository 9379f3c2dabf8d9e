"""The worker's page in a real browser: Debian's headless Chromium, driven through WebDriver, against
the real receiver and worker. A queued job appears within a refresh, leaves when it completes and
shows under the recent failures; a hostile job name stays text; the page asks no other host for
anything. A screenshot is kept (``$GHA_EXPORTER_ARTIFACTS``, default ``artifacts/``)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stack.browser import chromium_available, headless_chromium
from stack.redis_server import RedisServer
from tests.corpus import KRZKO, load
from tests.e2e.system import ROOT, System
from worker.trace_entries import job_trace_url

pytestmark = pytest.mark.e2e
SECRET = "e2e-page-secret"
HOSTILE = "<img src=x onerror=alert(1)>"
WAIT = 20.0  # at most this for a change to show: four refreshes; a guard, not a measure
ARTIFACTS = Path(os.environ.get("GHA_EXPORTER_ARTIFACTS", ROOT / "artifacts"))


TRACE_UI = "https://tempo.example/trace/{trace_id}?span={span_id}"  # traces.ui_url
TRACE_LINK = job_trace_url(TRACE_UI, 6454805877, 1, 4242)  # the job below: run 6454805877, attempt 1


@pytest.fixture(name="browser")
def _browser() -> Iterator[Any]:
    if not chromium_available():
        pytest.skip("needs Debian's chromium and chromium-driver (.ci/run installs them)")
    driver = headless_chromium()
    yield driver
    driver.quit()


@pytest.fixture(name="system")
def _system(tmp_path: Path) -> Iterator[System]:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    system = System(redis.url, SECRET, tmp_path)
    system.extra_env.update(GHA_EXPORTER_TRACES__UI_URL=TRACE_UI)
    system.start("receiver")
    system.start("worker")
    yield system
    system.stop_all()
    redis.stop()


def job(action: str, name: str, conclusion: str | None = None) -> bytes:
    step = {"queued": "1_workflow_job_queued", "completed": "9_workflow_job_completed"}[action]
    data = load(KRZKO.format("job", step)).data
    data["workflow_job"].update(id=4242, name=name, run_attempt=1)
    moment = time.time() - 95  # a job of a minute and a half ago, so the page reads as in real use
    for field in ("created_at", "started_at"):
        data["workflow_job"][field] = iso(moment)
    if action == "completed":
        data["workflow_job"]["completed_at"] = iso(moment + 80)
    if conclusion:
        data["workflow_job"]["conclusion"] = conclusion
    return json.dumps(data).encode()


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def requested_urls(driver: Any) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_a_queued_job_shows_as_text_then_leaves_for_the_recent_failures(system, browser):
    from selenium.common.exceptions import NoAlertPresentException  # noqa: PLC0415
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    base = f"http://127.0.0.1:{system.worker_port}/"
    browser.get(base)
    WebDriverWait(browser, WAIT).until(lambda d: d.find_element(By.ID, "status").text.startswith("updated"))
    assert browser.find_elements(By.CSS_SELECTOR, "#jobs tbody tr") == []

    assert system.send("workflow_job", job("queued", HOSTILE)) == 202
    row = WebDriverWait(browser, WAIT).until(
        lambda d: d.find_element(By.CSS_SELECTOR, '#jobs tr[data-job-id="4242"]')
    )
    cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
    assert cells[0] == "queued"
    assert cells[2:6] == ["krzko/webhook-testing", "Tests", f"{HOSTILE} trace", "ubuntu-latest"]
    assert row.find_element(By.TAG_NAME, "a").get_attribute("href").startswith("https://github.com/krzko/")
    assert row.find_element(By.CSS_SELECTOR, "a.trace").get_attribute("href") == TRACE_LINK
    assert browser.find_elements(By.TAG_NAME, "img") == []  # the name stayed text: no element made of it
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 - its onerror never ran
    summary = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#summary tbody td")]
    assert summary[:4] == ["ubuntu-latest", "1", "0", "0"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "inflight-page.png"))

    assert system.send("workflow_job", job("completed", HOSTILE, "failure")) == 202
    WebDriverWait(browser, WAIT).until(
        lambda d: (
            not d.find_elements(By.CSS_SELECTOR, '#jobs tr[data-job-id="4242"]')
            and d.find_elements(By.CSS_SELECTOR, '#recent tr[data-job-id="4242"]')
        )
    )
    failed = [td.text for td in browser.find_elements(By.CSS_SELECTOR, '#recent tr[data-job-id="4242"] td')]
    assert failed[0] == "failure"
    assert failed[5] == f"{HOSTILE} trace"
    trace = browser.find_element(By.CSS_SELECTOR, '#recent tr[data-job-id="4242"] a.trace')
    assert trace.get_attribute("href") == TRACE_LINK
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018
    others = [url for url in requested_urls(browser) if not url.startswith(base)]
    assert others == []  # no script, font or style from anywhere else


def test_a_right_to_left_override_in_a_name_is_shown_not_obeyed(system, browser):
    """U+202E in a job name would show "evil" as "live": the page shows the control as its code
    point and the letters in the order they were sent, each cell isolated from its neighbours."""
    from selenium.webdriver.common.by import By  # noqa: PLC0415
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    browser.get(f"http://127.0.0.1:{system.worker_port}/")
    assert system.send("workflow_job", job("queued", "\u202eevil")) == 202
    row = WebDriverWait(browser, WAIT).until(
        lambda d: d.find_element(By.CSS_SELECTOR, '#jobs tr[data-job-id="4242"]')
    )
    name = row.find_elements(By.TAG_NAME, "td")[4]
    assert name.text == "[U+202E]evil trace"
    assert name.value_of_css_property("unicode-bidi") == "isolate"
    # where Chromium drew each letter of "evil": left to right, as sent
    lefts = browser.execute_script(
        """const node = document.createTreeWalker(arguments[0], NodeFilter.SHOW_TEXT).nextNode();
        const start = node.data.indexOf("evil"), lefts = [];
        for (let i = start; i < start + 4; i++) {
          const range = document.createRange(); range.setStart(node, i); range.setEnd(node, i + 1);
          lefts.push(range.getBoundingClientRect().left);
        }
        return lefts;""",
        name,
    )
    assert lefts == sorted(lefts)
    assert len(set(lefts)) == 4
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "inflight-page-bidi.png"))


def queued_on(job_id: int, labels: list[str]) -> bytes:
    data = load(KRZKO.format("job", "1_workflow_job_queued")).data
    data["workflow_job"].update(id=job_id, name=f"build-{job_id}", labels=labels)
    for field in ("created_at", "started_at"):
        data["workflow_job"][field] = iso(time.time() - 300)
    return json.dumps(data).encode()


def test_each_queued_label_set_says_which_runners_could_take_it(tmp_path, browser):
    """With the runners polled from a fake GitHub: a label set whose runners are busy, one that a
    runner could take now, and one no online runner has (a typo) said plainly."""
    from selenium.webdriver.support.ui import WebDriverWait  # noqa: PLC0415

    from bench.fake_github import FakeGitHub, runner  # noqa: PLC0415

    redis = RedisServer(tmp_path / "redis")
    redis.start()
    with FakeGitHub(tokens=("ghp_page",)) as github:
        github.set_runners("orgs/krzko", [
            runner(1, "gpu-1", ("self-hosted", "Linux", "gpu"), busy=True),
            runner(2, "gpu-2", ("self-hosted", "Linux", "gpu"), busy=True),
            runner(3, "cpu-1", ("self-hosted", "Linux")),
            runner(4, "cpu-2", ("self-hosted", "Linux"), busy=True),
        ])  # fmt: skip
        system = System(redis.url, SECRET, tmp_path)
        system.extra_env.update(
            GHA_EXPORTER_GITHUB__API_URL=github.url,
            GHA_EXPORTER_GITHUB__TOKEN="ghp_page",
            GHA_EXPORTER_GITHUB__RUNNERS='["orgs/krzko"]',
        )
        system.start("receiver")
        system.start("worker")
        try:
            for job_id, labels in ((1, ["self-hosted", "gpu"]), (2, ["self-hosted", "linux"]),
                                   (3, ["self-hosted", "lnux"]), (4, ["ubuntu-latest"])):  # fmt: skip
                assert system.send("workflow_job", queued_on(job_id, labels)) == 202
            browser.get(f"http://127.0.0.1:{system.worker_port}/")

            def runners_column(driver: Any) -> dict[str, str]:
                cells = driver.execute_script(  # read at once: a refresh replaces the rows
                    "return [...document.querySelectorAll('#summary tbody tr')]"
                    ".map((row) => [...row.cells].map((td) => td.textContent));"
                )
                found = {row[0]: row[5] for row in cells}
                return found if len(found) == 4 and found.get("lnux,self-hosted") else {}

            column = WebDriverWait(browser, WAIT).until(runners_column)
            assert column == {
                "gpu,self-hosted": "2 online / 0 idle (all busy)",
                "linux,self-hosted": "4 online / 1 idle",
                "lnux,self-hosted": "no online runner has these labels",
                "ubuntu-latest": "",  # GitHub's own runners: not judged
            }
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(str(ARTIFACTS / "inflight-page-runners.png"))
        finally:
            system.stop_all()
            redis.stop()
