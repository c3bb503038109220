"""The dashboard in headless Chromium against `farcall dev` (the demo's stack): sign in
at the login page, see the endpoint online, run a batch from the SDK and find it,
read a failed task's traceback, search functions, sign out; a second user sees none
of the first's private things. Screenshots of each page go to ``tmp_path`` (and to
``$FARCALL_DASHBOARD_SCREENSHOTS`` when set: ``docs/images`` is made so).

Skipped, with the reason, where Chromium, chromedriver or selenium is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from farcall_testkit.browser import headless_chromium, needs_browser

pytest.importorskip("farcall_dev")
from farcall_testkit.service import FARCALL, free_port  # noqa: E402

pytestmark = needs_browser

PASSWORD = "a long dashboard password"

RUN_BATCH = """
from farcall import Client

def square(x):
    return x * x

def divide(a, b):
    return a / b

gcc = Client()
ep = gcc.profile.endpoint_id
sq = gcc.register_function(square, description="squares a number")
div = gcc.register_function(divide, description="divides, sometimes by zero")
batch = gcc.create_batch()
for x in range(5):
    batch.add(x, endpoint_id=ep, function_id=sq)
batch.add(1, 0, endpoint_id=ep, function_id=div)
ids = gcc.batch_run(batch)
gcc.wait(ids, timeout=120)
print(ids[-1])
"""


@dataclass
class Dev:
    url: str
    home: Path


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    from farcall_service import admin
    from farcall_service.storage import open_store

    home = tmp_path_factory.mktemp("dashboard-dev")
    (home / "dev").mkdir()
    with contextlib.closing(open_store(f"sqlite:///{home / 'dev' / 'farcall.db'}")) as store:
        admin.add_user(store, "dev", PASSWORD, is_admin=True)
        admin.add_user(store, "mallory", PASSWORD)
        admin.create_token(store, "mallory")
    port = free_port()
    env = {**os.environ, "FARCALL_HOME": str(home)}
    proc = subprocess.Popen([*FARCALL, "dev", "--port", str(port), "--workers", "1"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _ready(home / "dev.json"):
            assert proc.poll() is None and time.monotonic() < deadline, "farcall dev did not start"
            time.sleep(0.2)
        yield Dev(f"http://127.0.0.1:{port}", home)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _ready(profile: Path) -> bool:
    try:
        return "endpoint_id" in json.loads(profile.read_text())
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium("--window-size=1100,720") as driver:
        yield driver


def _by_id(browser: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 30).until(
        expected_conditions.presence_of_element_located((By.ID, element_id)))


def _click(browser: Any, css: str) -> None:
    """Click the element ``css`` finds, again if a live update replaced it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def clicked(b: Any) -> bool:
        try:
            b.find_element(By.CSS_SELECTOR, css).click()
        except StaleElementReferenceException:
            return False
        return True

    WebDriverWait(browser, 30, ignored_exceptions=()).until(clicked)


def _on(browser: Any, path: str) -> None:
    """Wait until the browser shows ``path`` (the element ids of pages repeat)."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda b: b.current_url.split("?")[0].endswith(path))


def _sign_in(browser: Any, dev: Dev, name: str) -> None:
    browser.delete_all_cookies()
    browser.get(f"{dev.url}/dashboard/")
    _by_id(browser, "sign-in").click()
    _on(browser, "/auth/v2/oauth2/authorize")
    _by_id(browser, "username").send_keys(name)
    _by_id(browser, "password").send_keys(PASSWORD)
    _by_id(browser, "sign-in").click()
    _on(browser, "/dashboard/endpoints")
    assert _by_id(browser, "signed-in-as").text == name


def _shot(browser: Any, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"dashboard-{name}.png"
    browser.save_screenshot(str(path))
    assert path.read_bytes()[:4] == b"\x89PNG"
    keep = os.environ.get("FARCALL_DASHBOARD_SCREENSHOTS")
    if keep:
        shutil.copy(path, Path(keep) / path.name)


def _run_batch(dev: Dev) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FARCALL_", "GLOBUS_"))}
    env["FARCALL_HOME"] = str(dev.home)
    ran = subprocess.run([sys.executable, "-c", RUN_BATCH], env=env, capture_output=True,
                         text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    return ran.stdout.strip().splitlines()[-1]


def test_a_user_signs_in_and_reads_a_traceback(dev: Dev, browser: Any,
                                               tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, dev, "dev")
    cookie = browser.get_cookie("farcall_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/dashboard"
    assert browser.execute_script("return document.cookie") == ""  # scripts never see it

    table = _by_id(browser, "endpoints")
    assert "online" in table.text and "dev" in table.text

    failed_id = _run_batch(dev)
    browser.get(f"{dev.url}/dashboard/endpoints")
    assert "6 of your tasks ended here" in browser.page_source
    _shot(browser, tmp_path, "endpoints")
    browser.get(f"{dev.url}/dashboard/tasks")
    rows = browser.find_elements(By.CSS_SELECTOR, "#task-table tbody tr")
    assert len(rows) == 6 and "failed" in _by_id(browser, "task-table").text
    _shot(browser, tmp_path, "tasks")

    from selenium.webdriver.support.ui import Select

    Select(_by_id(browser, "status")).select_by_value("failed")
    _click(browser, "#filter")
    _on(browser, "/dashboard/tasks")
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 30).until(lambda b: "status=failed" in b.current_url)
    _click(browser, f"tr[data-task='{failed_id}'] a")
    _on(browser, f"/dashboard/tasks/{failed_id}")
    assert "ZeroDivisionError" in _by_id(browser, "traceback").text
    assert "submitted" in _by_id(browser, "timeline").text
    _shot(browser, tmp_path, "task")

    browser.get(f"{dev.url}/dashboard/functions")
    _by_id(browser, "q").send_keys("zero")
    _by_id(browser, "search").click()
    # The search's page, not the one it replaces (same path, same element ids).
    WebDriverWait(browser, 30).until(lambda b: "q=zero" in b.current_url)
    found = _by_id(browser, "functions").text
    assert "divide" in found and "square" not in found and "100%" in found
    _shot(browser, tmp_path, "functions")

    # A form whose CSRF token is not the session's changes nothing.
    browser.execute_script(
        "document.querySelector(\"input[name='csrf_token']\").value = 'f'.repeat(64)")
    _click(browser, "#sign-out")
    _on(browser, "/dashboard/sign-out")
    assert "CSRF" in _by_id(browser, "error").text
    browser.get(f"{dev.url}/dashboard/functions")
    _click(browser, "#sign-out")
    _on(browser, "/dashboard/")
    _by_id(browser, "sign-in")
    browser.get(f"{dev.url}/dashboard/tasks")
    assert browser.find_elements(By.ID, "task-table") == []


def test_the_tasks_page_follows_a_batch_without_reloading(dev: Dev, browser: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    _sign_in(browser, dev, "dev")
    browser.get(f"{dev.url}/dashboard/tasks")
    WebDriverWait(browser, 30).until(
        lambda b: b.find_element("id", "main").get_attribute("data-listening") == "yes")
    browser.execute_script("window.farcallMarker = 'same page'")
    # A keyboard user's place: the link in focus keeps it across updates.
    focused = browser.execute_script(
        "var a = document.querySelector('#task-table a'); a.focus(); return a.getAttribute('href')")
    failed_id = _run_batch(dev)
    WebDriverWait(browser, 60).until(lambda b: failed_id in b.find_element("id", "main")
                                     .get_attribute("innerHTML"))
    assert browser.execute_script("return window.farcallMarker") == "same page"
    assert browser.execute_script(
        "return document.activeElement.getAttribute('href')") == focused
    assert int(browser.find_element("id", "main").get_attribute("data-updates")) >= 1
    assert "Updated" in browser.find_element("id", "live-status").text


def test_a_second_user_sees_none_of_the_first_ones_things(dev: Dev, browser: Any) -> None:
    _sign_in(browser, dev, "dev")
    browser.get(f"{dev.url}/dashboard/tasks")
    first = browser.page_source
    task_ids = [row.get_attribute("data-task") for row in
                browser.find_elements("css selector", "#task-table tbody tr[data-task]")]
    assert task_ids, first
    _sign_in(browser, dev, "mallory")
    for page in ("endpoints", "functions", "tasks"):
        browser.get(f"{dev.url}/dashboard/{page}")
        text = browser.page_source
        assert "divide" not in text and "square" not in text
        assert not any(task_id in text for task_id in task_ids)
    browser.get(f"{dev.url}/dashboard/tasks/{task_ids[0]}")
    assert "not found" in _by_id(browser, "error").text


def test_an_admin_revokes_a_token_from_the_page(dev: Dev, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    _sign_in(browser, dev, "mallory")
    assert browser.find_elements(By.CSS_SELECTOR, "a[href='/dashboard/admin']") == []
    browser.get(f"{dev.url}/dashboard/admin")
    assert "admin" in _by_id(browser, "error").text

    _sign_in(browser, dev, "dev")
    browser.find_element(By.CSS_SELECTOR, "a[href='/dashboard/admin']").click()
    _on(browser, "/dashboard/admin")
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#tokens tbody tr")
               if "mallory" in r.text)
    token_id = row.get_attribute("data-token")
    _shot(browser, tmp_path, "admin")
    row.find_element(By.TAG_NAME, "button").click()
    assert _by_id(browser, "revoked").text == f"Token {token_id} revoked."
    assert f"data-token=\"{token_id}\"" not in browser.page_source
