"""`farcall login` through the real login page in headless Chromium, then `farcall whoami`:
pasting the code the page shows (``--no-browser``), the page's redirect caught on a
loopback port, and a device code approved (or denied) on the device page (``--device``).

Skipped, with the reason, where Chromium, chromedriver or selenium is missing
(.ci/run installs Debian's chromium and chromium-driver).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from farcall_testkit.browser import headless_chromium, needs_browser

pytest.importorskip("farcall_service")
from farcall_service.oauth import NATIVE_CLIENT_ID
from farcall_testkit.service import (  # noqa: E402
    FARCALL,
    ServiceProcess,
    pkce_pair,
    service_env,
)

pytestmark = needs_browser

PASSWORD = "a long browser password"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    home = tmp_path_factory.mktemp("browser-service")
    subprocess.run([*FARCALL, "server", "user", "add", "alice", "--password-stdin"],
                   input=PASSWORD + "\n", env=service_env(home), check=True,
                   capture_output=True, text=True, timeout=60)
    # Device logins poll every second here rather than every five.
    with ServiceProcess(home, env={"FARCALL_SERVICE_LOG_LEVEL": "WARNING",
                                   "FARCALL_SERVICE_DEVICE_POLL_INTERVAL": "1"}) as proc:
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


def _sign_in(browser: Any, url: str, username: str, password: str,
             forge_csrf: bool = False) -> None:
    from selenium.webdriver.common.by import By

    browser.delete_all_cookies()
    browser.get(url)
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(password)
    if forge_csrf:
        browser.execute_script(
            "document.querySelector(\"input[name='csrf_token']\").value = 'forged' + 'x'.repeat(40)"
        )
    browser.find_element(By.ID, "sign-in").click()


def _text(browser: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, 20).until(
        expected_conditions.presence_of_element_located((By.ID, element_id))
    )
    return browser.find_element(By.ID, element_id).text


def _authorize_url(service: ServiceProcess, challenge: str) -> str:
    from urllib.parse import urlencode

    params = {"client_id": NATIVE_CLIENT_ID, "redirect_uri": f"{service.url}/auth/v2/web/auth-code",
              "response_type": "code", "code_challenge": challenge,
              "code_challenge_method": "S256", "access_type": "offline"}
    return f"{service.url}/auth/v2/oauth2/authorize?{urlencode(params)}"


def _cli_env(home: Path, service: ServiceProcess) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FARCALL_", "GLOBUS_", "FUNCX_", "SSH_"))}
    env.update(FARCALL_HOME=str(home), FARCALL_BASE_URL=service.url)
    return env


def test_login_in_a_browser_then_whoami(service: ServiceProcess, browser: Any,
                                        tmp_path: Path) -> None:
    env = _cli_env(tmp_path, service)
    login = subprocess.Popen([*FARCALL, "login", "--no-browser"], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        url = ""
        while not url:
            line = login.stdout.readline()
            assert line, login.stderr.read()
            found = re.search(r"(https?://\S+/auth/v2/oauth2/authorize\S+)", line)
            url = found.group(1) if found else ""

        _sign_in(browser, url, "alice", "not the password")
        assert _text(browser, "error") == "Wrong user name or password."

        _sign_in(browser, url, "alice", PASSWORD, forge_csrf=True)
        assert "CSRF check failed" in _text(browser, "error")

        _sign_in(browser, url, "alice", PASSWORD)
        code = _text(browser, "auth-code")
        assert code.startswith("fcc_")
        out, err = login.communicate(code + "\n", timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode == 0, err
    assert "Logged in" in out

    whoami = subprocess.run([*FARCALL, "whoami"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert whoami.returncode == 0, whoami.stderr
    assert whoami.stdout.startswith("alice (")
    assert (tmp_path / "tokens.json").stat().st_mode & 0o077 == 0

    # The SDK's Client() finds the stored login through the login-manager chain.
    check = "from farcall import Client; print(Client().get_endpoints())"
    ran = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True,
                         timeout=60)
    assert ran.returncode == 0 and ran.stdout.strip() == "[]", ran.stderr

    # The code has been redeemed by `farcall login`: a second use is refused (and, as
    # only a thief would replay a code, the tokens issued for it are revoked).
    token_url = f"{service.url}/auth/v2/oauth2/token"
    replay = requests.post(token_url, timeout=30, data={
        "grant_type": "authorization_code", "code": code, "client_id": NATIVE_CLIENT_ID,
        "code_verifier": "x" * 43})
    assert replay.status_code == 400 and "already used" in replay.json()["error_description"]

    # A code redeemed with the wrong PKCE verifier is refused.
    _verifier, challenge = pkce_pair()
    _sign_in(browser, _authorize_url(service, challenge), "alice", PASSWORD)
    stolen = _text(browser, "auth-code")
    wrong_verifier, _ = pkce_pair()
    refused = requests.post(token_url, data={"grant_type": "authorization_code", "code": stolen,
                                             "client_id": NATIVE_CLIENT_ID,
                                             "code_verifier": wrong_verifier}, timeout=30)
    assert refused.status_code == 400
    assert "PKCE" in refused.json()["error_description"]

    # Logged out: the tokens are revoked and forgotten.
    out = subprocess.run([*FARCALL, "logout"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "Logged out" in out.stdout, out.stderr
    again = subprocess.run([*FARCALL, "whoami"], env=env, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode != 0 and "farcall login" in again.stderr


def test_chromium_follows_the_sign_in_redirect_back_to_the_loopback_port(
        service: ServiceProcess, browser: Any, tmp_path: Path) -> None:
    """The browser `farcall login` opens is Chromium, driven here: ``$BROWSER`` is a
    command that succeeds without showing anything, so the test opens the printed URL."""
    env = {**_cli_env(tmp_path, service), "BROWSER": f"{shutil.which('true')} %s"}
    login = subprocess.Popen([*FARCALL, "login"], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = ""
        while not url:
            line = login.stdout.readline()
            assert line, login.stderr.read()
            found = re.search(r"(https?://\S+/auth/v2/oauth2/authorize\S+)", line)
            url = found.group(1) if found else ""
        assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A" in url
        _sign_in(browser, url, "alice", PASSWORD)
        assert _text(browser, "login-result") == "Logged in"
        assert browser.current_url.startswith("http://127.0.0.1:")
        out, err = login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode == 0, err
    assert "Logged in" in out and "Paste" not in out
    whoami = subprocess.run([*FARCALL, "whoami"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert whoami.returncode == 0 and whoami.stdout.startswith("alice ("), whoami.stderr


def _device_prompt(login: subprocess.Popen[str]) -> tuple[str, str, str]:
    """The page, the user code and the complete link `farcall login --device` prints."""
    printed = ""
    while "Waiting for your approval" not in printed:
        line = login.stdout.readline()  # type: ignore[union-attr]
        assert line, printed + login.stderr.read()  # type: ignore[union-attr]
        printed += line
    page = re.search(r"^  (http\S+/auth/v2/oauth2/device)$", printed, re.M)
    code = re.search(r"enter the code:\s+([A-Z]{4}-[A-Z]{4})$", printed, re.M)
    complete = re.search(r"^  (http\S+\?user_code=\S+)$", printed, re.M)
    assert page and code and complete, printed
    return page.group(1), code.group(1), complete.group(1)


def _finish(login: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return login.communicate(timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()


def test_device_login_approved_in_chromium_then_whoami(service: ServiceProcess, browser: Any,
                                                       tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    env = _cli_env(tmp_path, service)
    login = subprocess.Popen([*FARCALL, "login", "--device"], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        page, code, complete = _device_prompt(login)
        assert page == f"{service.url}/auth/v2/oauth2/device"
        assert complete == f"{page}?user_code={code}"

        # On "another device": open the page, type the code as a person might.
        browser.delete_all_cookies()
        browser.get(page)
        browser.find_element(By.ID, "user-code").send_keys(code.lower().replace("-", " "))
        browser.find_element(By.ID, "continue").click()
        assert _text(browser, "user-code") == code
        assert "farcall's own app" in _text(browser, "client")
        assert "run tasks, as you" in _text(browser, "scopes")
        browser.find_element(By.ID, "username").send_keys("alice")
        browser.find_element(By.ID, "password").send_keys("not the password")
        browser.find_element(By.ID, "approve").click()
        assert _text(browser, "error") == "Wrong user name or password."
        browser.find_element(By.ID, "username").clear()
        browser.find_element(By.ID, "username").send_keys("alice")
        browser.find_element(By.ID, "password").send_keys(PASSWORD)
        browser.find_element(By.ID, "approve").click()
        assert _text(browser, "device-result").startswith("The device finishes logging in")
        out, err = _finish(login)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode == 0, err
    assert f"Logged in to {service.url}/auth/" in out
    whoami = subprocess.run([*FARCALL, "whoami"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert whoami.returncode == 0 and whoami.stdout.startswith("alice ("), whoami.stderr
    assert (tmp_path / "tokens.json").stat().st_mode & 0o077 == 0


def test_device_login_denied_in_chromium_ends_with_a_clear_message(
        service: ServiceProcess, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    env = _cli_env(tmp_path, service)
    login = subprocess.Popen([*FARCALL, "login", "--device"], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        _page, code, complete = _device_prompt(login)
        browser.delete_all_cookies()
        browser.get(complete)  # the link that holds the code: no typing
        assert _text(browser, "user-code") == code
        browser.find_element(By.ID, "deny").click()  # no password needed to refuse
        assert _text(browser, "device-result").startswith("The device is told that you refused")
        out, err = _finish(login)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode != 0 and "Logged in" not in out
    assert "the login was denied on the verification page" in err, err
    assert not (tmp_path / "tokens.json").exists()
