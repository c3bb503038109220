"""Headless Chromium for the tests of web pages (the sign-in page, the dashboard),
through Selenium and Debian's ``chromium`` and ``chromium-driver``."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401

    SELENIUM = True
except ImportError:
    SELENIUM = False

#: Marks a test module or test that drives the browser; it skips, saying why, without one.
needs_browser = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER and SELENIUM),
    reason="the browser test needs Chromium, chromedriver (Debian: apt-get install chromium "
    "chromium-driver) and the selenium package",
)

#: Flags for a quiet headless browser in a container (no sandbox, no /dev/shm).
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage")


@contextlib.contextmanager
def headless_chromium(*extra_flags: str, page_load_timeout: float = 30) -> Iterator[Any]:
    """A Selenium driver of a headless Chromium, quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or "chromium"
    for flag in (*FLAGS, *extra_flags):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()
