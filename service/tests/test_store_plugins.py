"""Stores are plugins chosen by the database URL's scheme (``farcall_stores``).

Third-party stores are installed the way pip would leave them: a ``*.dist-info``
directory with an entry point in the ``farcall`` group, beside the plugin's module.
"""

from __future__ import annotations

import importlib
import os
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from farcall.cli import cli
from farcall.errors import PluginConflictError, UnknownPluginError
from farcall.plugins import PROJECT_NAME, get_plugin_manager
from farcall.plugins.manager import ENV_BLOCK_PLUGINS, ENV_DISABLE_AUTOLOAD
from farcall_service.storage import Store, open_store, store_for_url, url_scheme
from farcall_service.storage.sql import SqlStore
from farcall_testkit.service import ServiceProcess

# A store for "memo:" URLs: the SQL store on the SQLite file the URL names, which
# remembers that it opened it, so a test can tell which factory ran.
MEMO_STORE = """
    from farcall_service.kinds import StoreType
    from farcall.plugins import hookimpl

    opened = []


    def open_memo(url, *, migrate=True):
        from farcall_service.storage.sql import open_sql_store

        opened.append(url)
        return open_sql_store("sqlite:" + url.partition(":")[2], migrate=migrate)


    @hookimpl
    def farcall_stores():
        return [StoreType("{name}", {schemes!r}, open_memo)]
"""

InstallStore = Callable[[str, str, tuple[str, ...]], Path]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BLOCK_PLUGINS, raising=False)
    monkeypatch.delenv(ENV_DISABLE_AUTOLOAD, raising=False)


@pytest.fixture
def install_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InstallStore]:
    """``install_store(dist, store_name, schemes)``: a distribution with one store;
    returns the folder it is installed in."""
    modules: list[str] = []

    def install(dist: str, name: str, schemes: tuple[str, ...]) -> Path:
        module = dist.replace("-", "_")
        site = tmp_path / f"site-{dist}"
        info = site / f"{module}-1.0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n", encoding="utf-8"
        )
        (info / "entry_points.txt").write_text(
            f"[{PROJECT_NAME}]\n{module} = {module}\n", encoding="utf-8"
        )
        source = textwrap.dedent(MEMO_STORE.format(name=name, schemes=schemes))
        (site / f"{module}.py").write_text(source, encoding="utf-8")
        modules.append(module)
        monkeypatch.syspath_prepend(str(site))
        importlib.invalidate_caches()
        return site

    yield install
    for module in modules:
        sys.modules.pop(module, None)


@pytest.mark.parametrize("url", [
    "sqlite:///tmp/farcall.db",
    "sqlite+pysqlite:///:memory:",
    "postgresql://farcall@db.example/farcall",
    "postgresql+psycopg://farcall:secret@db.example:5432/farcall",
    "PostgreSQL://db.example/farcall",
])
def test_the_sql_store_serves_sqlite_and_postgresql_urls(url: str) -> None:
    assert store_for_url(url).name == "sql"


def test_the_scheme_is_the_url_s_without_its_driver() -> None:
    assert url_scheme("postgresql+psycopg://h/db") == "postgresql"
    with pytest.raises(ValueError, match="starts with its scheme"):
        url_scheme("/var/lib/farcall.db")


def test_open_store_opens_the_store_of_the_url_s_scheme(
        tmp_path: Path, install_store: InstallStore) -> None:
    install_store("farcall-store-memo", "memo", ("memo",))
    url = f"memo:///{tmp_path / 'memo.db'}"
    store = open_store(url, plugin_manager=get_plugin_manager())
    try:
        assert isinstance(store, Store)
        assert store.create_user("ada") == store.get_user("ada")
    finally:
        store.close()
    assert sys.modules["farcall_store_memo"].opened == [url]


def test_the_admin_cli_opens_the_store_of_its_db_url(
        tmp_path: Path, install_store: InstallStore, monkeypatch: pytest.MonkeyPatch) -> None:
    install_store("farcall-store-memo", "memo", ("memo",))
    monkeypatch.setenv("FARCALL_HOME", str(tmp_path))
    url = f"memo:///{tmp_path / 'memo.db'}"
    result = CliRunner().invoke(cli, ["server", "user", "add", "ada", "--db", url],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert sys.modules["farcall_store_memo"].opened == [url]
    store = open_store(f"sqlite:///{tmp_path / 'memo.db'}")
    try:
        user = store.get_user("ada")
        assert user is not None and user.id == result.output.strip()
    finally:
        store.close()


def test_a_running_service_keeps_its_records_in_the_store_of_its_url(
        tmp_path: Path, install_store: InstallStore, monkeypatch: pytest.MonkeyPatch) -> None:
    site = install_store("farcall-store-memo", "memo", ("memo",))
    monkeypatch.setenv("FARCALL_HOME", str(tmp_path))
    url = f"memo:///{tmp_path / 'memo.db'}"

    def admin(*args: str) -> str:
        result = CliRunner().invoke(cli, ["server", *args, "--db", url], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output.strip()

    admin("user", "add", "ada")
    token = admin("token", "create", "ada")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    with ServiceProcess(tmp_path, args=["--db", url], env=env) as service:
        answer = requests.get(f"{service.url}/v2/endpoints",
                              headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert answer.status_code == 200, answer.text
    assert not (tmp_path / "service" / "farcall.db").exists()  # not the default store


def test_an_unknown_scheme_names_the_schemes_installed() -> None:
    with pytest.raises(UnknownPluginError) as caught:
        open_store("mysql://farcall:secret@db.example/farcall")
    message = str(caught.value)
    assert "'mysql'" in message
    assert "(installed: postgresql, sqlite)" in message
    assert "secret" not in message


def test_two_stores_claiming_one_scheme_name_both_distributions(
        install_store: InstallStore) -> None:
    install_store("farcall-store-rival", "rival", ("sqlite", "rival"))
    with pytest.raises(PluginConflictError) as caught:
        store_for_url("rival:///x", get_plugin_manager())
    message = str(caught.value)
    assert "'sqlite'" in message
    assert "farcall-service" in message
    assert "farcall-store-rival" in message
    assert ENV_BLOCK_PLUGINS in message


def test_the_service_has_its_store_without_entry_points(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_DISABLE_AUTOLOAD, "1")
    store = open_store(f"sqlite:///{tmp_path / 'f.db'}")
    try:
        assert isinstance(store, SqlStore)
    finally:
        store.close()
