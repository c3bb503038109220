"""Every file farcall writes is 0600 and every folder 0700, whatever the umask.

A real ``farcall dev`` (service + endpoint as child processes) runs a task for an SDK
client that caches results on disk and logs in with ``farcall login``'s manager; then
every path under ``$FARCALL_HOME`` is checked, while the stack runs (SQLite's WAL and
shared-memory files exist) and after it stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("farcall_dev")
pytest.importorskip("farcall_cache_sqlite")
pytest.importorskip("farcall_auth_native")

from farcall.private_files import open_private, private_dir  # noqa: E402
from farcall_testkit.dev import start_dev, stop_dev  # noqa: E402
from farcall_testkit.service import FARCALL, free_port  # noqa: E402

PASSWORD = "a long enough password"

CLIENT = """
import sys
from farcall import Client

def square(x):
    return x * x

gcc = Client()
fid = gcc.register_function(square)
tid = gcc.run(7, endpoint_id=gcc.profile.endpoint_id, function_id=fid)
gcc.wait([tid], timeout=60, progress=False)
print(gcc.get_result(tid))
"""

LOGIN = """
import json, re, sys
import requests
from urllib.parse import parse_qs, urlsplit
from farcall_auth_native.manager import NativeLoginManager

manager = NativeLoginManager({"base_url": sys.argv[1]})
http = requests.Session()
url = manager.start_flow()
page = http.get(url, timeout=30)
fields = dict(re.findall(r"type='hidden' name='(\\w+)' value='([^']*)'", page.text))
fields["csrf_token"] = re.search(r"name='csrf_token' value='([^']+)'", page.text).group(1)
fields.update(username="dev", password=sys.argv[2])
answer = http.post(url.split("?")[0], data=fields, allow_redirects=False, timeout=30)
assert answer.status_code == 303, answer.text
manager.finish_flow(parse_qs(urlsplit(answer.headers["location"]).query)["code"][0])
print(manager.token_file)
"""


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, for this process and the processes it starts."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def offenders(root: Path) -> list[str]:
    """Every path under ``root`` (and ``root``) that is not 0700 (folder) / 0600 (file)."""
    found = []
    for path in [root, *sorted(root.rglob("*"))]:
        try:
            info = path.lstat()
        except FileNotFoundError:  # removed while walking (a WAL file at close)
            continue
        mode = info.st_mode & 0o777
        wanted = 0o700 if path.is_dir() and not path.is_symlink() else 0o600
        if mode != wanted:
            found.append(f"{oct(mode)} {path.relative_to(root.parent)} (wanted {oct(wanted)})")
    return found


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FARCALL_", "GLOBUS_SDK_"))}
    return {**env, "FARCALL_HOME": str(home), "FARCALL_RESULT_CACHE": "sqlite"}


def _run(home: Path, *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(list(args), env=_env(home), input=stdin, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout.strip()


def test_every_file_farcall_writes_is_owner_only(tmp_path: Path, umask_022: None) -> None:
    home = tmp_path / "farcall-home"  # farcall creates it: nothing is there first
    port = free_port()
    process, _profile = start_dev(home, "--port", str(port), "--workers", "1", env=_env(home))
    try:
        db = f"sqlite:///{home / 'dev' / 'farcall.db'}"
        _run(home, *FARCALL, "server", "user", "set-password", "dev", "--password-stdin",
             "--db", db, stdin=PASSWORD + "\n")
        token_file = Path(_run(home, sys.executable, "-c", LOGIN,
                               f"http://127.0.0.1:{port}", PASSWORD))
        assert token_file == home / "tokens.json"
        assert _run(home, sys.executable, "-c", CLIENT) == "49"
        # what each part wrote is there, so the walk below checks it
        for written in ("dev.json", "tokens.json", "cache/results.db", "dev/farcall.db",
                        "dev/farcall.db.lock", "dev/farcall.db-wal", "dev/service.log",
                        "endpoints/local/config.toml", "endpoints/local/spool.db",
                        "endpoints/local/dev-endpoint.log"):
            assert (home / written).exists(), written
        running = offenders(home)
    finally:
        out = stop_dev(process)
    assert process.returncode == 0, out
    stopped = offenders(home)
    assert not running, "readable by others while farcall dev runs:\n" + "\n".join(running)
    assert not stopped, "readable by others after farcall dev stopped:\n" + "\n".join(stopped)


def test_an_existing_home_folder_and_files_are_tightened(tmp_path: Path,
                                                        umask_022: None) -> None:
    """An older farcall (or a plain mkdir) left the home 0755 and its files 0644."""
    home = tmp_path / "farcall-home"
    (home / "dev").mkdir(parents=True)
    db = f"sqlite:///{home / 'dev' / 'farcall.db'}"
    _run(home, *FARCALL, "server", "user", "add", "dev", "--db", db)
    (home / "endpoints" / "local").mkdir(parents=True)
    (home / "dev" / "service.log").write_text("old\n")
    for path in [home, *home.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert len(offenders(home)) >= 5

    _run(home, *FARCALL, "server", "client", "list", "dev", "--db", db)
    private_dir(home / "endpoints" / "local", home=home)
    with open_private(home / "dev" / "service.log") as log:
        log.write(b"appended\n")
    left = offenders(home)
    assert not left, "still readable by others:\n" + "\n".join(left)
    assert (home / "dev" / "service.log").read_text() == "old\nappended\n"


def test_a_folder_the_user_chose_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    """``--db`` in a folder of the user's: farcall makes the file 0600, not the folder."""
    chosen = tmp_path / "shared-data"
    chosen.mkdir(mode=0o755)
    chosen.chmod(0o755)
    home = tmp_path / "farcall-home"
    _run(home, *FARCALL, "server", "user", "add", "dev", "--db", f"sqlite:///{chosen / 'f.db'}")
    assert oct(chosen.stat().st_mode & 0o777) == "0o755"
    assert oct((chosen / "f.db").stat().st_mode & 0o777) == "0o600"
    fresh = tmp_path / "new" / "deeper"
    _run(home, *FARCALL, "server", "user", "add", "dev", "--db", f"sqlite:///{fresh / 'f.db'}")
    for folder in (tmp_path / "new", fresh):
        assert oct(folder.stat().st_mode & 0o777) == "0o700", folder
