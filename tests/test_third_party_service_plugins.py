"""A third party's service and endpoint plugins (store, broker, endpoint link, engine),
shipped as one wheel: installed into a fresh environment, each passes its contract
suite, and a real ``farcall server`` and endpoint use all four to run a Client's task.

Each plugin is a first-party one under another name that notes in a log file
(``TRACED_PLUGINS_LOG``) when it is used, so the test can tell it was chosen: the
store by its URL scheme, the broker and link and engine by name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from farcall_testkit.wheels import build_wheels, install_wheel, overlay_venv, run, write_project

pytestmark = pytest.mark.wheels

TRACED_PLUGINS = {
    "pyproject.toml": """
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "farcall-traced-plugins"
        version = "0.1.0"
        dependencies = ["farcall-service", "farcall-endpoint"]

        [project.entry-points.farcall]
        traced = "farcall_traced_plugins"

        [tool.hatch.build.targets.wheel]
        packages = ["farcall_traced_plugins"]
    """,
    # The entry-point module: records only, the implementations load when built.
    "farcall_traced_plugins/__init__.py": """
        from farcall.plugins import hookimpl
        from farcall_endpoint.kinds import EngineType, LinkType
        from farcall_service.kinds import BrokerType, StoreType


        @hookimpl
        def farcall_stores():
            return [StoreType("traced-sql", ("tracedsqlite",), _store, "SQLite, noted")]


        @hookimpl
        def farcall_brokers():
            return [BrokerType("traced-local", _broker, "the local broker, noted")]


        @hookimpl
        def farcall_endpoint_links():
            return [LinkType("traced", _link, "the farcall link, noted")]


        @hookimpl
        def farcall_engines():
            return [EngineType("traced-thread", _engine, "the thread engine, noted")]


        def _store(url, *, migrate=True):
            from farcall_traced_plugins.impl import open_traced_store

            return open_traced_store(url, migrate=migrate)


        def _broker(settings, store):
            from farcall_traced_plugins.impl import TracedBroker

            return TracedBroker(settings.database_url)


        def _link(context):
            from farcall_traced_plugins.impl import TracedLink

            return TracedLink(context)


        def _engine(options):
            from farcall_traced_plugins.impl import TracedEngine

            return TracedEngine(options)
    """,
    "farcall_traced_plugins/impl.py": """
        import os

        from farcall_endpoint.engines.thread import ThreadEngine
        from farcall_endpoint.links.handoff import HandOffLink
        from farcall_service.brokers.local import LocalBroker
        from farcall_service.storage.sql import open_sql_store


        def note(line):
            path = os.environ.get("TRACED_PLUGINS_LOG")
            if path:
                with open(path, "a", encoding="utf-8") as log:
                    log.write(line + "\\n")


        def open_traced_store(url, *, migrate=True):
            note("store opened")
            return open_sql_store("sqlite" + url[len("tracedsqlite"):], migrate=migrate)


        class TracedBroker(LocalBroker):
            def start(self, loop=None):
                note("broker started")
                super().start(loop)


        class TracedLink(HandOffLink):
            def register(self, registration):
                note("link registered")
                return super().register(registration)

            def report(self, session, results, timeout, meanwhile=None):
                note(f"link reported {len(results)}")
                return super().report(session, results, timeout, meanwhile)


        class TracedEngine(ThreadEngine):
            def submit(self, tasks):
                note(f"engine ran {len(tasks)}")
                super().submit(tasks)
    """,
}

# Run with pytest inside the environment the wheel was installed into.
TRACED_PLUGIN_TESTS = """
    import pytest
    from farcall import Client
    from farcall_endpoint.testing.engine_contract import EngineContract
    from farcall_endpoint.testing.link_contract import LinkContract
    from farcall_service.settings import Settings
    from farcall_service.storage import open_store
    from farcall_service.testing.broker_contract import BrokerContract
    from farcall_service.testing.store_contract import StoreContract
    from farcall_testkit.endpoint import EndpointProcess
    from farcall_testkit.service import ServiceProcess, admin


    class TestStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            store = open_store(f"tracedsqlite:///{tmp_path}/contract.db")
            yield store
            store.close()


    class TestBroker(BrokerContract):
        name = "traced-local"


    class TestLink(LinkContract):
        link_name = "traced"


    class TestEngine(EngineContract):
        engine_name = "traced-thread"
        engine_options = {"workers": 2}


    def test_a_service_and_an_endpoint_use_all_four(tmp_path, monkeypatch):
        log = tmp_path / "traced.log"
        monkeypatch.setenv("TRACED_PLUGINS_LOG", str(log))
        home = tmp_path / "home"
        home.mkdir()
        env = {"FARCALL_SERVICE_DB_URL": f"tracedsqlite:///{home}/traced.db",
               "TRACED_PLUGINS_LOG": str(log)}
        admin(home, "user", "add", "tara", env=env)
        token = admin(home, "token", "create", "tara", env=env).splitlines()[-1].strip()
        with ServiceProcess(home, args=["--broker", "traced-local"], env=env) as service:
            endpoint = EndpointProcess(home, "traced", service.url, token, link="traced",
                                       engine={"type": "traced-thread", "workers": 1})
            with endpoint:
                client = Client(service.url, token=token)
                function_id = client.register_source_code(
                    "def triple(x):\\n    return 3 * x\\n", "triple")
                task_id = client.run(5, endpoint_id=endpoint.endpoint_id,
                                     function_id=function_id)
                assert client.wait([task_id], timeout=60, progress=False)[task_id]["result"] == 15
        assert (home / "traced.db").exists()
        notes = log.read_text().splitlines()
        for expected in ("store opened", "broker started", "link registered", "engine ran 1",
                         "link reported 1"):
            assert expected in notes, (expected, notes)
"""


def test_a_third_partys_service_plugins_pass_their_contracts_and_run_a_task(
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    build_wheels([write_project(tmp_path / "traced_plugins", TRACED_PLUGINS)], dist)
    (wheel,) = dist.glob("farcall_traced_plugins-0.1.0-*.whl")
    python = overlay_venv(tmp_path / "venv")
    install_wheel(python, wheel)

    tests = write_project(tmp_path / "plugin_tests", {"test_traced.py": TRACED_PLUGIN_TESTS})
    proc = run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                str(tests / "test_traced.py")], cwd=tests, timeout=900)
    output = f"{proc.stdout[-5000:]}\n{proc.stderr[-2000:]}"
    assert proc.returncode == 0, output
    assert " passed" in proc.stdout and "skipped" not in proc.stdout, output
