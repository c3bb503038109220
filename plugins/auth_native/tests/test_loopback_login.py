"""`farcall login` opening a browser and catching its redirect on a loopback port, with
a real HTTP client standing in for the browser (``$BROWSER``): it opens the authorize
URL, signs in with the user's password and follows the redirect back to the CLI. And
the fallbacks to pasting the code: ``--no-browser``, a browser that cannot start, SSH.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

pytest.importorskip("farcall_service")
from farcall.errors import FarcallError  # noqa: E402
from farcall_auth_native.loopback import LoopbackRedirect  # noqa: E402
from farcall_testkit.service import FARCALL, ServiceProcess, admin  # noqa: E402

PASSWORD = "loopback login password"

#: The stand-in browser: what a person does in the page `farcall login` opened.
BROWSER_SCRIPT = textwrap.dedent(
    """
    import json, os, re, sys

    import requests

    url = sys.argv[1]
    http = requests.Session()
    page = http.get(url, timeout=30)
    fields = dict(re.findall(r"type='hidden' name='(\\w+)' value='([^']*)'", page.text))
    fields["csrf_token"] = re.search(r"name='csrf_token' value='([^']+)'", page.text).group(1)
    fields.update(username="carol", password=os.environ["STANDIN_PASSWORD"])
    landed = http.post(url.split("?")[0], data=fields, timeout=30)  # follows the redirect
    with open(os.environ["STANDIN_RECORD"], "w") as record:
        json.dump({"opened": url, "landed": landed.url, "status": landed.status_code,
                   "page": landed.text}, record)
    """
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    home = tmp_path_factory.mktemp("loopback-service")
    admin(home, "user", "add", "carol", "--password-stdin", stdin=PASSWORD + "\n")
    with ServiceProcess(home, env={"FARCALL_SERVICE_LOG_LEVEL": "WARNING"}) as proc:
        yield proc


def _env(home: Path, service: ServiceProcess, browser: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FARCALL_", "GLOBUS_", "FUNCX_", "SSH_"))
    }
    env.update(
        FARCALL_HOME=str(home),
        FARCALL_BASE_URL=service.url,
        BROWSER=browser,
        STANDIN_PASSWORD=PASSWORD,
        STANDIN_RECORD=str(home / "browser.json"),
    )
    return env


def _stand_in(tmp_path: Path) -> str:
    script = tmp_path / "browser.py"
    script.write_text(BROWSER_SCRIPT)
    return f"{sys.executable} {script} %s"


def _whoami(env: dict[str, str]) -> str:
    ran = subprocess.run([*FARCALL, "whoami"], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    return ran.stdout


def test_login_opens_the_browser_and_catches_the_redirect(
    service: ServiceProcess, tmp_path: Path
) -> None:
    import json

    env = _env(tmp_path, service, _stand_in(tmp_path))
    login = subprocess.run(
        [*FARCALL, "login"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert login.returncode == 0, login.stderr
    assert "Logged in" in login.stdout and "Paste" not in login.stdout

    seen = json.loads((tmp_path / "browser.json").read_text())
    opened = parse_qs(urlsplit(seen["opened"]).query)
    assert seen["opened"].startswith(f"{service.url}/auth/v2/oauth2/authorize?")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", opened["redirect_uri"][0])
    assert opened["code_challenge_method"] == ["S256"] and len(opened["state"][0]) >= 32
    landed = urlsplit(seen["landed"])
    assert (landed.hostname, seen["status"]) == ("127.0.0.1", 200)
    assert "Logged in" in seen["page"]
    assert _whoami(env).startswith("carol (")
    assert (tmp_path / "tokens.json").stat().st_mode & 0o077 == 0


def _sign_in_for_code(url: str) -> str:
    """The paste flow's page: sign in, read the code the service's page would show."""
    http = requests.Session()
    page = http.get(url, timeout=30)
    fields = dict(re.findall(r"type='hidden' name='(\w+)' value='([^']*)'", page.text))
    fields["csrf_token"] = re.search(r"name='csrf_token' value='([^']+)'", page.text).group(1)
    fields.update(username="carol", password=PASSWORD)
    answer = http.post(url.split("?")[0], data=fields, allow_redirects=False, timeout=30)
    assert answer.status_code == 303, answer.text
    assert urlsplit(answer.headers["location"]).path == "/auth/v2/web/auth-code"
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


@pytest.mark.parametrize(
    ("args", "browser", "extra", "why"),
    [
        (["--no-browser"], "stand-in", {}, None),
        ([], "/nonexistent/browser %s", {}, "could not be started"),
        ([], "stand-in", {"SSH_CONNECTION": "10.0.0.1 5000 10.0.0.2 22"}, "SSH session"),
    ],
    ids=["no-browser", "browser-fails", "ssh"],
)
def test_without_a_browser_login_falls_back_to_pasting_the_code(
    service: ServiceProcess,
    tmp_path: Path,
    args: list[str],
    browser: str,
    extra: dict[str, str],
    why: str | None,
) -> None:
    env = {
        **_env(tmp_path, service, _stand_in(tmp_path) if browser == "stand-in" else browser),
        **extra,
    }
    login = subprocess.Popen(
        [*FARCALL, "login", *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        before = ""
        url = ""
        while not url:
            line = login.stdout.readline()  # type: ignore[union-attr]
            assert line, login.stderr.read()  # type: ignore[union-attr]
            before += line
            found = re.search(r"(https?://\S+/auth/v2/oauth2/authorize\S+)", line)
            url = found.group(1) if found else ""
        out, err = login.communicate(_sign_in_for_code(url) + "\n", timeout=60)
    finally:
        if login.poll() is None:
            login.kill()
            login.wait()
    assert login.returncode == 0, err
    assert "Logged in" in out
    if why:
        assert "Not opening a browser: " in before and why in before
    else:
        assert "Not opening" not in before
    assert not (tmp_path / "browser.json").exists()  # the stand-in never ran
    assert _whoami(env).startswith("carol (")


def test_the_redirect_is_taken_only_with_this_logins_state() -> None:
    with LoopbackRedirect() as redirect:
        base = redirect.redirect_uri
        forged = requests.get(base, params={"code": "forged", "state": "guess"}, timeout=10)
        stray = requests.get(f"{base}/favicon.ico", timeout=10)
        assert (forged.status_code, stray.status_code) == (404, 404)
        real = requests.get(base, params={"code": "fcc_real", "state": redirect.state}, timeout=10)
        assert real.status_code == 200 and "Logged in" in real.text
        assert redirect.wait(timeout=10) == "fcc_real"

    with LoopbackRedirect() as redirect:
        refused = requests.get(
            redirect.redirect_uri,
            timeout=10,
            params={
                "error": "access_denied",
                "error_description": "the user said no",
                "state": redirect.state,
            },
        )
        assert refused.status_code == 400
        with pytest.raises(FarcallError, match="login failed: the user said no"):
            redirect.wait(timeout=10)
