"""Wheels, installed as users install them: ``pip install farcall farcall-serializer-dill``.

Builds wheels of the core, the dill plugin, a third-party plugin and a broken plugin,
then installs them one at a time into a single fresh virtual environment and checks,
after each install, what the environment can do. The steps run in order in one test
because each builds on the last (and one environment keeps the runtime down).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from farcall.plugins import get_plugin_manager
from farcall.serialize import Serializer
from farcall.serialize.registry import StrategyRegistry

pytestmark = pytest.mark.wheels

REPO = Path(__file__).resolve().parent.parent

# A value only a dill payload carries faithfully (JSON has no tuples).
DILL_VALUE = {"answer": 42, "pair": (1, 2)}

THIRD_PARTY = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "farcall-test-reversed"
        version = "0.1.0"
        dependencies = ["farcall"]

        [project.entry-points.farcall]
        test_reversed = "farcall_test_reversed"

        [tool.hatch.build.targets.wheel]
        packages = ["farcall_test_reversed"]
    """,
    "farcall_test_reversed/__init__.py": """
        import json

        from farcall.plugins import hookimpl
        from farcall.plugins.types import SerializationStrategyType
        from farcall.serialize.base import SerializationStrategy


        class ReversedJSON(SerializationStrategy):
            identifier = "t1"
            for_code = False

            def dumps(self, obj):
                return json.dumps(obj)[::-1]

            def loads(self, body):
                return json.loads(body[::-1])


        @hookimpl
        def farcall_serialization_strategies():
            return [SerializationStrategyType("t1", "ReversedJSON", False,
                                              lambda _registry: ReversedJSON())]
    """,
}

BROKEN = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "farcall-test-broken"
        version = "0.1.0"
        dependencies = ["farcall"]

        [project.entry-points.farcall]
        test_broken = "farcall_test_broken"

        [tool.hatch.build.targets.wheel]
        packages = ["farcall_test_broken"]
    """,
    "farcall_test_broken/__init__.py": """
        raise ImportError("farcall_test_broken is broken on purpose")
    """,
}

# Run inside the fresh environment: JSON must work; the dill payload may or may not.
PROBE = textwrap.dedent(
    """
    import json
    import sys

    from farcall.serialize import DeserializationError, Serializer

    serializer = Serializer()
    out = {
        "code_strategy": serializer.code_strategy,
        "data_strategy": serializer.data_strategy,
        "json": serializer.deserialize(Serializer(data_strategy="11").serialize({"a": [1, 2]})),
    }
    try:
        out["dill_value"] = repr(serializer.deserialize(sys.stdin.read()))
    except DeserializationError as exc:
        out["dill_error"] = str(exc)
    print(json.dumps(out))
    """
)


def write_project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def clean_env() -> dict[str, str]:
    """The caller's environment without anything that would leak into the fresh venv."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("FARCALL_")}


def run(args: list[str], cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, cwd=cwd, env=clean_env(), timeout=300, **kwargs
    )


def check(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    output = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{proc.args} failed:\n{output}"
    return proc


def test_wheels_install_and_plugins_are_discovered(tmp_path: Path) -> None:
    # -- build the four wheels in one pip run ---------------------------------------
    dist = tmp_path / "dist"
    third_party = write_project(tmp_path / "third_party", THIRD_PARTY)
    broken = write_project(tmp_path / "broken", BROKEN)
    check(run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
               "--quiet", "-w", str(dist), str(REPO / "core"),
               str(REPO / "plugins" / "serializer_dill"), str(third_party), str(broken)],
              cwd=tmp_path))

    def wheel(prefix: str) -> str:
        (found,) = dist.glob(f"{prefix}-0.1.0-*.whl")
        return str(found)

    # -- one fresh environment, without pip of its own: the running pip installs into it
    venv = tmp_path / "venv"
    check(run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path))
    python = venv / "bin" / "python"
    farcall_command = venv / "bin" / "farcall"

    def pip_install(path: str) -> None:
        check(run([sys.executable, "-m", "pip", "--python", str(python), "install",
                   "--disable-pip-version-check", "--quiet", path], cwd=tmp_path))

    dill_payload = Serializer(
        data_strategy="00", registry=StrategyRegistry(get_plugin_manager())
    ).serialize(DILL_VALUE)
    assert dill_payload.startswith("00\n")

    def probe() -> dict:
        proc = check(run([str(python), "-c", PROBE], cwd=tmp_path, input=dill_payload))
        return json.loads(proc.stdout)

    def plugins_json() -> dict:
        proc = check(run([str(farcall_command), "plugins", "--json"], cwd=tmp_path))
        return json.loads(proc.stdout)

    # (a) the core alone: JSON works, a dill payload says what to install ---------------
    pip_install(wheel("farcall"))
    core_only = probe()
    assert core_only["json"] == {"a": [1, 2]}
    assert (core_only["code_strategy"], core_only["data_strategy"]) == (None, "11")
    assert "dill_value" not in core_only
    assert "unknown strategy header '00'" in core_only["dill_error"]
    assert "farcall-serializer-dill" in core_only["dill_error"]
    listing = plugins_json()
    assert listing["serialization strategies"] == ["11", "12", "13"]
    assert {entry["distribution"] for entry in listing["plugins"]} == {"farcall"}

    # (b) pip install the dill plugin: the same script now reads the payload -------------
    pip_install(wheel("farcall_serializer_dill"))
    with_dill = probe()
    assert with_dill["dill_value"] == repr(DILL_VALUE)
    assert "dill_error" not in with_dill
    assert (with_dill["code_strategy"], with_dill["data_strategy"]) == ("01", "00")
    listing = plugins_json()
    assert {"name": "serializer_dill", "distribution": "farcall-serializer-dill"} in listing[
        "plugins"
    ]
    assert {"00", "01", "sd"} <= set(listing["serialization strategies"])

    # (c) a third-party plugin is discovered by being installed -------------------------
    assert "t1" not in listing["serialization strategies"]
    pip_install(wheel("farcall_test_reversed"))
    listing = plugins_json()
    assert "t1" in listing["serialization strategies"]
    assert {"name": "test_reversed", "distribution": "farcall-test-reversed"} in listing["plugins"]

    # (d) a broken plugin stops the command with a message naming it --------------------
    pip_install(wheel("farcall_test_broken"))
    proc = run([str(farcall_command), "plugins"], cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "'test_broken'" in proc.stderr
    assert "farcall-test-broken" in proc.stderr
    assert "broken on purpose" in proc.stderr
    assert "FARCALL_BLOCK_PLUGINS=test_broken" in proc.stderr

    # ... and blocking it, as the message says, brings the command back.
    proc = subprocess.run(
        [str(farcall_command), "plugins", "--json"], capture_output=True, text=True,
        cwd=tmp_path, env={**clean_env(), "FARCALL_BLOCK_PLUGINS": "test_broken"}, timeout=120,
    )
    check(proc)
    assert "t1" in json.loads(proc.stdout)["serialization strategies"]


# -- a third party's SDK plugins: transport, login manager, result cache ---------------------

SDK_PLUGINS = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "farcall-test-sdk-plugins"
        version = "0.1.0"
        dependencies = ["farcall"]

        [project.entry-points.farcall]
        test_sdk_plugins = "farcall_test_sdk_plugins"

        [tool.hatch.build.targets.wheel]
        packages = ["farcall_test_sdk_plugins"]
    """,
    "farcall_test_sdk_plugins/__init__.py": """
        from pathlib import Path

        from farcall.plugins import hookimpl
        from farcall.plugins.types import LoginManagerType, ResultCacheType, TransportType


        def _transport(base_url, authorizer, settings):
            from farcall_test_sdk_plugins.parts import UrllibTransport

            return UrllibTransport(base_url, authorizer)


        def _cache(settings):
            from farcall_test_sdk_plugins.parts import FileResultCache

            return FileResultCache()


        def _login(settings):
            from farcall_test_sdk_plugins.parts import TokenFileLoginManager

            path = Path(settings.get("token_path") or "~/.site-token").expanduser()
            return TokenFileLoginManager(path) if path.exists() else None


        @hookimpl
        def farcall_transports():
            return [TransportType("test-urllib", _transport)]


        @hookimpl
        def farcall_result_caches():
            return [ResultCacheType("test-files", _cache)]


        @hookimpl
        def farcall_login_managers():
            return [LoginManagerType("test-token-file", _login)]


        @hookimpl
        def farcall_login_manager(settings):
            return _login(settings)
    """,
    "farcall_test_sdk_plugins/parts.py": """
        import json as jsonlib
        import urllib.error
        import urllib.request
        from urllib.parse import urlencode

        from farcall.sdk.errors import FarcallAPIError, ServiceUnreachable
        from farcall.sdk.login import StaticTokenAuthorizer
        from farcall.sdk.profile import farcall_home


        class UrllibTransport:
            def __init__(self, base_url, authorizer):
                self.base_url, self.authorizer = base_url.rstrip("/"), authorizer
                self.paths = []

            def request(self, method, path, *, json=None, params=None, timeout=None):
                self.paths.append(path)
                url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
                headers = {"Content-Type": "application/json"}
                header = self.authorizer and self.authorizer.get_authorization_header()
                if header:
                    headers["Authorization"] = header
                body = None if json is None else jsonlib.dumps(json).encode()
                request = urllib.request.Request(url, data=body, headers=headers, method=method)
                try:
                    with urllib.request.urlopen(request, timeout=timeout or 60) as answer:
                        data = answer.read()
                except urllib.error.HTTPError as exc:
                    error = jsonlib.loads(exc.read() or b"{}")
                    raise FarcallAPIError(method, path, exc.code, error.get("code", "ERROR"),
                                          error.get("message", "")) from None
                except OSError as exc:
                    raise ServiceUnreachable(f"{method} {path}: {exc}") from None
                return jsonlib.loads(data) if data else None

            def open_channel(self, path, fallback, on_push=None):
                return None

            def close(self):
                pass


        class FileResultCache:
            def __init__(self):
                self.root = farcall_home() / "test-results"
                self.root.mkdir(parents=True, exist_ok=True)

            def get(self, task_id):
                path = self.root / f"{task_id}.json"
                return jsonlib.loads(path.read_text()) if path.exists() else None

            def put(self, task_id, document):
                (self.root / f"{task_id}.json").write_text(jsonlib.dumps(document))

            def clear(self):
                for path in self.root.glob("*.json"):
                    path.unlink()


        class TokenFileLoginManager:
            def __init__(self, path):
                self.path = path

            def ensure_logged_in(self):
                if not self.path.exists():
                    raise RuntimeError(f"no token in {self.path}")
                return True

            def get_authorizer(self):
                return StaticTokenAuthorizer(self.path.read_text().strip())

            def logout(self):
                existed = self.path.exists()
                self.path.unlink(missing_ok=True)
                return existed
    """,
}

# Run with pytest inside the environment the wheel was installed into.
SDK_PLUGIN_TESTS = """
    import pytest
    from farcall import Client
    from farcall.testing.login_manager_contract import LoginManagerContract
    from farcall.testing.result_cache_contract import ResultCacheContract
    from farcall.testing.transport_contract import TransportContract
    from farcall_testkit.service import MiniWorker, ServiceProcess, admin


    @pytest.fixture(scope="module")
    def service(tmp_path_factory):
        home = tmp_path_factory.mktemp("service")
        admin(home, "user", "add", "tara")
        token = admin(home, "token", "create", "tara").splitlines()[-1].strip()
        with ServiceProcess(home) as process:
            yield process.url, token


    class TestTransport(TransportContract):
        transport_name = "test-urllib"


    class TestResultCache(ResultCacheContract):
        name = "test-files"
        persistent = True


    class TestLoginManager(LoginManagerContract):
        name = "test-token-file"

        @pytest.fixture
        def settings(self, service, tmp_path):
            (tmp_path / "token").write_text(service[1])
            return {"base_url": service[0], "token_path": str(tmp_path / "token")}

        @pytest.fixture
        def no_credentials(self, tmp_path):
            return {"token_path": str(tmp_path / "missing")}


    def test_a_client_uses_all_three(service, tmp_path, monkeypatch):
        url, token = service
        monkeypatch.setenv("FARCALL_HOME", str(tmp_path / "home"))
        (tmp_path / "token").write_text(token)
        client = Client(url, transport="test-urllib", result_cache="test-files",
                        token_path=str(tmp_path / "token"))
        assert type(client.login_manager).__name__ == "TokenFileLoginManager"
        endpoint_id = client.transport.request(
            "POST", "/v3/endpoints", json={"endpoint_name": "wheel"})["endpoint_id"]
        worker = MiniWorker(url, token, endpoint_id, wait=1.0)
        worker.start()
        try:
            function_id = client.register_source_code(
                "def triple(x):\\n    return 3 * x\\n", "triple")
            task_id = client.run(5, endpoint_id=endpoint_id, function_id=function_id)
            assert client.wait([task_id], timeout=60, progress=False)[task_id]["result"] == 15
        finally:
            worker.stop()
        assert (tmp_path / "home" / "test-results" / f"{task_id}.json").exists()
        assert f"/v3/endpoints/{endpoint_id}/submit" in client.transport.paths
        assert client.get_result(task_id) == 15  # from the cache: the service is not asked
        assert client.transport.paths[-1] != f"/v2/tasks/{task_id}"
"""


def test_a_third_partys_sdk_plugins_pass_their_contracts_from_a_wheel(tmp_path: Path) -> None:
    """A transport, a login manager and a result cache in one wheel, installed into a
    fresh environment that sees this one's packages (farcall, the service, the test
    kit): found through their entry point, they pass their contract suites, and a
    Client uses all three."""
    pytest.importorskip("farcall_service")
    pytest.importorskip("farcall_testkit")
    import sysconfig

    dist = tmp_path / "dist"
    project = write_project(tmp_path / "sdk_plugins", SDK_PLUGINS)
    check(run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
               "--quiet", "-w", str(dist), str(project)], cwd=tmp_path))
    (wheel,) = dist.glob("farcall_test_sdk_plugins-0.1.0-*.whl")

    venv = tmp_path / "venv"
    check(run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path))
    python = venv / "bin" / "python"
    site_packages = check(run([str(python), "-c", "import sysconfig; "
                               "print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path))
    # This environment's packages (editable installs included) come after the venv's own.
    ours = sysconfig.get_paths()["purelib"]
    Path(site_packages.stdout.strip(), "outer.pth").write_text(
        f"import site; site.addsitedir({ours!r})\n", encoding="utf-8")
    check(run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
               "--disable-pip-version-check", "--quiet", str(wheel)], cwd=tmp_path))

    tests = tmp_path / "plugin_tests"
    write_project(tests, {"test_sdk_plugins.py": SDK_PLUGIN_TESTS})
    proc = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                str(tests / "test_sdk_plugins.py")], cwd=tests)
    output = f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, output
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, output
