"""The unmodified official ``globus-compute-endpoint`` against a farcall service.

Research groups run the official endpoint on their clusters; these helpers run it as
they would, to prove it attaches to farcall:

- :func:`endpoint_venv` installs ``globus-compute-endpoint`` (:data:`VERSION`) from the
  package registry into a venv under the repository, built once (under a file lock, so
  parallel test processes wait for one build) and reused by later runs.
- :class:`PosixUser` makes an unprivileged user with ``useradd``: run as root, the
  endpoint assumes multi-user mode (identity mapping), which is not what is tested.
- :class:`OfficialEndpoint` runs ``globus-compute-endpoint configure NAME`` and
  ``start NAME`` as that user, with a HOME of its own and only the environment a user
  would set: the client credentials and ``GLOBUS_SDK_SERVICE_URL_AUTH``. Its config
  says ``local_compute_services: true``, which is ``http://localhost:5000``: the
  service must listen on port 5000.

Nothing of the endpoint's code is replaced. Every process the user runs is killed, and
the user and its home removed, by :meth:`PosixUser.remove`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farcall_testkit.servers import unavailable

VERSION = "4.19.0"
PACKAGE = f"globus-compute-endpoint=={VERSION}"
#: Where ``local_compute_services: true`` points the endpoint and its SDK.
SERVICE_PORT = 5000
#: Held while a test uses :data:`SERVICE_PORT`: the tests that need the port (on other
#: pytest-xdist workers, or in a run of another checkout) take turns.
PORT_LOCK = Path(tempfile.gettempdir()) / f"farcall-test-port-{SERVICE_PORT}.lock"
#: The venv's directory name under the repository (listed in ``.gitignore``).
VENV_NAME = ".venv-official-endpoint"
#: Written into the venv when its install finished; a venv without it is rebuilt.
READY_FILE = "farcall-ready"
#: Interpreters to build the venv on when the running one is out of an unprivileged
#: user's reach (pyenv's under a private ``/root``, for instance).
SYSTEM_PYTHONS = ("/usr/bin/python3", "/usr/local/bin/python3")


# -- the venv -------------------------------------------------------------------------


def reachable_by_others(path: Path) -> bool:
    """Whether any user can reach ``path``: every directory on the way searchable by
    others, and ``path`` itself searchable (a directory) or readable (a file)."""
    path = path.resolve()
    if not all(parent.stat().st_mode & stat.S_IXOTH for parent in path.parents):
        return False
    mode = path.stat().st_mode
    return bool(mode & (stat.S_IXOTH if stat.S_ISDIR(mode) else stat.S_IROTH))


def venv_path(repository: Path) -> Path:
    """Where the official endpoint's venv lives: under the repository when an
    unprivileged user can reach it there, else in a folder of the system's temporary
    directory named after the version (a clone under a private ``mktemp -d``, say).
    That folder must be this user's and writable by nobody else; a test fails
    (``unavailable``) rather than run code from one another user could have made."""
    if reachable_by_others(repository):
        return repository / VENV_NAME
    shared = Path(tempfile.gettempdir()) / f"farcall-official-endpoint-{VERSION}"
    try:
        shared.mkdir(mode=0o755)
    except FileExistsError:
        info = shared.lstat()
        if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
                or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)):
            unavailable(f"{shared} is not a folder of this user's that only it may write: "
                        "remove it, or clone the repository where other users can reach it")
    if not reachable_by_others(shared):
        unavailable(f"neither {repository} nor {shared} is in an unprivileged user's reach")
    return shared / VENV_NAME


def base_python() -> str | None:
    """An interpreter an unprivileged user can run, to build the venv on."""
    own = Path(getattr(sys, "_base_executable", sys.executable))
    for candidate in (own, *map(Path, SYSTEM_PYTHONS)):
        if candidate.exists() and reachable_by_others(candidate):
            return str(candidate)
    return None


def _open_to_others(root: Path) -> None:
    """Let the unprivileged user read and run the venv, whatever the umask was."""
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            path = Path(directory, name)
            if not path.is_symlink():
                mode = path.stat().st_mode
                extra = stat.S_IROTH | stat.S_IRGRP
                if stat.S_ISDIR(mode) or mode & stat.S_IXUSR:
                    extra |= stat.S_IXOTH | stat.S_IXGRP
                path.chmod(mode | extra)
    root.chmod(root.stat().st_mode | stat.S_IROTH | stat.S_IXOTH)


def endpoint_venv(path: Path, timeout: float = 1800) -> Path:
    """The venv at ``path`` with the official endpoint installed, built if needed.

    A lock file beside it makes a second test process wait for the first one's build
    instead of building over it. Returns the ``globus-compute-endpoint`` script.
    """
    script = path / "bin" / "globus-compute-endpoint"
    ready = path / READY_FILE
    if ready.exists() and ready.read_text().strip() == VERSION:
        return script
    python = base_python()
    if python is None:
        unavailable(
            "no Python interpreter that an unprivileged user can run (tried "
            f"{sys.executable} and {', '.join(SYSTEM_PYTHONS)})"
        )
    with open(path.parent / f"{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists() and ready.read_text().strip() == VERSION:
            return script
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(path)], check=True, timeout=300)
        done = subprocess.run(
            [
                str(path / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PACKAGE,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"could not install {PACKAGE}:\n{done.stderr[-4000:]}")
        _open_to_others(path)
        ready.write_text(VERSION + "\n")
        ready.chmod(0o644)
    return script


# -- the unprivileged user ------------------------------------------------------------


def can_make_users() -> str | None:
    """Why users cannot be made here, or None."""
    if os.geteuid() != 0:
        return "making the endpoint's unprivileged user with useradd needs root"
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        return "useradd/userdel are not installed"
    return None


@dataclass(frozen=True)
class PosixUser:
    """A user made for one test, with a home of its own under /tmp."""

    name: str
    uid: int
    gid: int
    home: Path

    @classmethod
    def create(cls) -> PosixUser:
        name = "fcep" + secrets.token_hex(4)
        home = Path("/tmp") / f"farcall-{name}"
        subprocess.run(
            [
                "useradd",
                "--create-home",
                "--home-dir",
                str(home),
                "--user-group",
                "--shell",
                "/bin/sh",
                "--no-log-init",
                name,
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        entry = pwd.getpwnam(name)
        home.chmod(0o700)
        return cls(name, entry.pw_uid, entry.pw_gid, home)

    def pids(self) -> list[int]:
        """Every live process this user runs (the user exists for one test only);
        zombies are left to their parents to reap."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    if entry.stat().st_uid != self.uid:
                        continue
                    state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
        return found

    def kill_all(self, timeout: float = 30) -> None:
        """SIGKILL each of the user's processes, by id, until none is left."""
        deadline = time.monotonic() + timeout
        while pids := self.pids():
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes of {self.name} would not die: {pids}")
            time.sleep(0.1)

    def remove(self) -> None:
        """Kill the user's processes, then remove the user and its home."""
        self.kill_all()
        # --force: zombies of the user's processes (reaped by nobody in a container
        # whose first process does not) must not keep the account.
        done = subprocess.run(
            ["userdel", "--force", "--remove", self.name],
            capture_output=True,
            text=True,
            timeout=60,
        )
        shutil.rmtree(self.home, ignore_errors=True)
        if done.returncode not in (0, 12):  # 12: the home was gone already
            raise RuntimeError(f"userdel {self.name} failed: {done.stderr.strip()}")


# -- the farcall side -----------------------------------------------------------------


@dataclass
class FarcallSide:
    """The service the endpoint attaches to: one ``farcall server start`` on
    127.0.0.1:5000 with a scratch PostgreSQL database and RabbitMQ vhost, a user who
    owns the endpoint's client, and that user's API token."""

    home: Path
    service: Any  # farcall_testkit.service.ServiceProcess
    db_url: str
    broker_url: str
    user_name: str
    user_id: str
    token: str
    client: dict[str, str]

    @property
    def url(self) -> str:
        return str(self.service.url)

    def api(self, token: str | None = None) -> Any:
        """A plain HTTP client of the service, as the user (or ``token``)."""
        from farcall_testkit.endpoint import Api

        return Api(self.url, token or self.token)

    def admin(self, *args: str) -> str:
        """``farcall server ARGS... --db <the database>``; its output."""
        from farcall_testkit.service import admin

        return admin(self.home, *args, "--db", self.db_url)


@contextlib.contextmanager
def farcall_on_port(
    home: Path, db_url: str, broker_url: str, user_name: str = "alice", port: int = SERVICE_PORT
) -> Iterator[FarcallSide]:
    """The service on ``port``, its user, an API token and an OAuth client of theirs."""
    from farcall_testkit.scaled import SERVICE_ARGS
    from farcall_testkit.service import ServiceProcess, admin

    home.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> str:
        return admin(home, *args, "--db", db_url)

    user_id = run("user", "add", user_name).split()[-1]
    token = run("token", "create", user_name)
    client = json.loads(run("client", "create", user_name, "--name", "official endpoint", "--json"))
    service = ServiceProcess(
        home, port=port, args=[*SERVICE_ARGS, "--db", db_url, "--broker", broker_url]
    )
    try:
        service.start()
    except RuntimeError:
        if "address already in use" in service.log():
            unavailable(f"port {port} was taken meanwhile, by another test run")
        raise
    with service:
        yield FarcallSide(
            home,
            service,
            db_url,
            broker_url,
            user_name,
            user_id,
            token,
            {k: client[k] for k in ("client_id", "client_secret")},
        )


# -- the endpoint ---------------------------------------------------------------------


@contextlib.contextmanager
def port_turn(timeout: float = 1800) -> Iterator[None]:
    """Hold :data:`PORT_LOCK` for the ``with`` block, once whoever holds it lets go.
    Skips (fails, where servers are required) if something else listens on the port."""
    fd = os.open(PORT_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    unavailable(f"port {SERVICE_PORT} stayed taken by other tests for "
                                f"{timeout:.0f} s ({PORT_LOCK})")
                time.sleep(0.5)
        if not port_free(SERVICE_PORT):
            unavailable(f"port {SERVICE_PORT} is taken: the official endpoint's "
                        "local_compute_services means http://localhost:5000")
        yield
    finally:
        os.close(fd)  # lets go of the lock


def port_free(port: int) -> bool:
    """Whether the service can listen on ``port`` (as it does, with SO_REUSEADDR: the
    closed connections of a test just before do not hold it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class OfficialEndpoint:
    """``globus-compute-endpoint`` as ``user``, logging in with a farcall client.

    ``start`` runs the endpoint in the foreground of a process of its own (as its
    users do under a process supervisor); ``stop`` is its own ``stop`` command,
    ``kill`` is SIGKILL of every process the user runs, ``restart`` is ``stop``
    then ``start``.
    """

    def __init__(self, script: Path, user: PosixUser, name: str, farcall: FarcallSide) -> None:
        self.script = script
        self.user = user
        self.name = name
        self.farcall = farcall
        self.env = {
            "HOME": str(user.home),
            "USER": user.name,
            "LOGNAME": user.name,
            "PATH": f"{script.parent}:/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "GLOBUS_COMPUTE_CLIENT_ID": farcall.client["client_id"],
            "GLOBUS_COMPUTE_CLIENT_SECRET": farcall.client["client_secret"],
            "GLOBUS_SDK_SERVICE_URL_AUTH": f"{farcall.url}/auth/",
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._written = ""
        self._settings: dict[str, Any] = {}

    @property
    def ep_dir(self) -> Path:
        return self.user.home / ".globus_compute" / self.name

    @property
    def log_path(self) -> Path:
        """The endpoint's own log (``endpoint.log`` in its directory)."""
        return self.ep_dir / "endpoint.log"

    @property
    def console_path(self) -> Path:
        """What ``start`` printed (every start appends), before its log exists too."""
        return self.user.home / "console.log"

    @property
    def endpoint_id(self) -> str | None:
        """The id the endpoint keeps in ``endpoint.json`` once it has started."""
        try:
            return str(json.loads((self.ep_dir / "endpoint.json").read_text())["endpoint_id"])
        except (OSError, ValueError, KeyError):
            return None

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``globus-compute-endpoint ARGS...`` as the user, to completion."""
        return subprocess.run(
            [str(self.script), *args],
            env=self.env,
            cwd=self.user.home,
            user=self.user.uid,
            group=self.user.gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def configure(self) -> None:
        """``configure NAME``, then ``local_compute_services: true`` in its config."""
        done = self.run("configure", self.name)
        if done.returncode != 0:
            raise RuntimeError(f"configure failed:\n{done.stdout}\n{done.stderr}")
        self._written = (self.ep_dir / "config.yaml").read_text()
        self.config(local_compute_services=True)

    def config(self, **settings: Any) -> None:
        """Set top-level keys of ``config.yaml`` (``heartbeat_period=2``, ...): the
        file ``configure`` wrote, then every setting made so far (JSON is YAML)."""
        self._settings.update(settings)
        lines = "".join(f"{key}: {json.dumps(value)}\n" for key, value in self._settings.items())
        self.write_file("config.yaml", self._written + lines)

    def write_file(self, name: str, text: str) -> Path:
        """Write a file of the endpoint's directory (``user_config_template.yaml.j2``,
        ...), owned by the user and private to it."""
        path = self.ep_dir / name
        path.write_text(text)
        os.chown(path, self.user.uid, self.user.gid)
        path.chmod(0o600)
        return path

    def start(self) -> subprocess.Popen[bytes]:
        """``start NAME`` in the background; its output goes to :attr:`console_path`."""
        with open(self.console_path, "ab") as console:
            os.fchown(console.fileno(), self.user.uid, self.user.gid)
            self.process = subprocess.Popen(
                [str(self.script), "start", self.name],
                env=self.env,
                cwd=self.user.home,
                user=self.user.uid,
                group=self.user.gid,
                extra_groups=[],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        return self.process

    def exited(self) -> int | None:
        """The exit code of the last ``start``, or None while it runs."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 60) -> None:
        """``stop NAME``, and wait for the started process to end."""
        self.run("stop", self.name, timeout=timeout)
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL of every process the user runs: the endpoint and its children."""
        self.user.kill_all()
        if self.process is not None:
            self.process.wait(30)

    def restart(self) -> subprocess.Popen[bytes]:
        self.stop()
        return self.start()

    def logs(self, tail: int = 8000) -> str:
        """The console output and the log's end, for assertion messages."""
        parts = []
        for path in (self.console_path, self.log_path):
            with contextlib.suppress(OSError):
                parts.append(f"== {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)


@contextlib.contextmanager
def official_endpoint(
    script: Path, farcall: FarcallSide, name: str = "official"
) -> Iterator[OfficialEndpoint]:
    """A configured (not yet started) endpoint run by a new unprivileged user with
    ``farcall``'s client; the user, its processes and its home are removed after."""
    user = PosixUser.create()
    try:
        endpoint = OfficialEndpoint(script, user, name, farcall)
        endpoint.configure()
        yield endpoint
    finally:
        user.remove()
