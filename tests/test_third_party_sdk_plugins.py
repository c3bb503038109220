"""A third party's SDK plugins (transport, login manager, result cache), shipped as a
wheel: installed into a fresh environment, they pass their contract suites and a
Client uses all three."""

from __future__ import annotations

from pathlib import Path

import pytest
from farcall_testkit.wheels import build_wheels, install_wheel, overlay_venv, run, write_project

pytestmark = pytest.mark.wheels

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
    dist = tmp_path / "dist"
    dist.mkdir()
    build_wheels([write_project(tmp_path / "sdk_plugins", SDK_PLUGINS)], dist)
    (wheel,) = dist.glob("farcall_test_sdk_plugins-0.1.0-*.whl")
    python = overlay_venv(tmp_path / "venv")
    install_wheel(python, wheel)

    tests = write_project(tmp_path / "plugin_tests", {"test_sdk_plugins.py": SDK_PLUGIN_TESTS})
    proc = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                str(tests / "test_sdk_plugins.py")], cwd=tests)
    output = f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, output
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, output
