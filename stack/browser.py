"""Debian's headless Chromium driven through WebDriver (selenium, a dev dependency): the browser of
the in-flight page's test and benchmark. ``.ci/run`` installs ``chromium`` and ``chromium-driver``."""

from __future__ import annotations

import shutil
from typing import Any


def chromium_available() -> bool:
    return shutil.which("chromium") is not None and shutil.which("chromedriver") is not None


def headless_chromium() -> Any:
    """A WebDriver session on a new headless Chromium (1400x900) that logs its network requests
    (``driver.get_log("performance")``); the caller quits it."""
    from selenium import webdriver  # noqa: PLC0415 - only with a browser at hand
    from selenium.webdriver.chrome.service import Service  # noqa: PLC0415

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or ""))
