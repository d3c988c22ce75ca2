"""A headless Chromium driven by Selenium through Debian's system chromedriver (no browser
download), shared by the tests that load pages in a real browser. One browser per test module."""

from __future__ import annotations

import json
import shutil
import tempfile

import pytest

CHROMEDRIVER = "/usr/bin/chromedriver"


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def available() -> bool:
    if chromium() is None or shutil.which(CHROMEDRIVER) is None:
        return False
    try:
        import selenium  # noqa: F401
    except ImportError:
        return False
    return True


# The mark of every test that drives the browser (the `driver` fixture of conftest.py).
NEEDED = pytest.mark.skipif(not available(), reason="needs chromium, chromedriver (.ci/run installs them) and selenium")


def start(width: int = 1300, height: int = 1000):
    """A headless Chromium that logs the console (browser log) and the network (performance log)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="attnviz-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver._attnviz_profile = profile
    return driver


def stop(driver) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(getattr(driver, "_attnviz_profile", ""), ignore_errors=True)


def console(driver) -> list[dict]:
    """Console messages since the last call (errors, CSP violations, uncaught exceptions)."""
    return driver.get_log("browser")


def requests(driver) -> list[str]:
    """URLs the page asked for since the last call (from the DevTools Network events)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
