"""``farcall server``: mounted through the core's hook, admin commands on the database."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from farcall.cli import cli
from farcall.plugins import get_plugin_manager
from farcall_service.settings import Settings
from farcall_service.storage import open_store
from farcall_service.tokens import hash_token


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FARCALL_HOME", str(tmp_path))
    monkeypatch.delenv("FARCALL_SERVICE_DB_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True) -> str:
        result = runner.invoke(cli, ["server", *args], catch_exceptions=False)
        assert (result.exit_code == 0) is ok, result.output
        return result.output.strip()

    return invoke


def test_server_command_comes_from_the_plugin() -> None:
    commands = get_plugin_manager().cli_commands()
    assert commands["server"].command.name == "server"
    assert {"start", "user", "token", "group"} <= set(commands["server"].command.commands)


def test_entry_point_module_is_light() -> None:
    code = (
        "import sys, farcall_service.plugin as p; "
        "heavy = {'fastapi', 'sqlalchemy', 'alembic', 'uvicorn'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_admin_commands(run, tmp_path: Path) -> None:
    alice_id = run("user", "add", "alice")
    assert str(uuid.UUID(alice_id)) == alice_id
    run("user", "add", "bob")
    assert "already exists" in run("user", "add", "alice", ok=False)
    token = run("token", "create", "alice")
    assert token.startswith("fc_") and len(token) > 40
    group_id = run("group", "add", "team")
    assert str(uuid.UUID(group_id)) == group_id
    assert "alice is a member of team" in run("group", "add-member", "team", "alice")
    assert "bob is a member of team" in run("group", "add-member", group_id, "bob")
    assert "no group" in run("group", "add-member", "nope", "bob", ok=False)
    assert "no user" in run("token", "create", "nobody", ok=False)

    store = open_store(Settings(home=tmp_path).database_url)
    try:
        assert store.user_for_token(hash_token(token)).name == "alice"
        assert store.groups_of(alice_id) == {group_id}
        # Only the hash is kept.
        with store.engine.connect() as conn:
            dump = "\n".join(str(row) for row in conn.exec_driver_sql("SELECT * FROM tokens"))
        assert token not in dump
    finally:
        store.close()


def test_user_add_admin_makes_a_dashboard_admin(run, tmp_path: Path) -> None:
    run("user", "add", "root", "--admin")
    run("user", "add", "plain")
    store = open_store(Settings(home=tmp_path).database_url)
    try:
        assert store.get_user("root").admin and not store.get_user("plain").admin
    finally:
        store.close()


def test_db_flag_chooses_the_database(run, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    run("user", "add", "carol", "--db", url)
    assert (tmp_path / "elsewhere.db").exists()
    assert not (tmp_path / "service" / "farcall.db").exists()


def test_settings_from_environment(tmp_path: Path) -> None:
    env = {"FARCALL_HOME": str(tmp_path), "FARCALL_SERVICE_RATE_LIMIT": "7",
           "FARCALL_SERVICE_OFFLINE_TIMEOUT": "2.5", "FARCALL_SERVICE_PORT": "6000"}
    settings = Settings.from_env(env, port=7000)
    assert (settings.rate_limit, settings.offline_timeout, settings.port) == (7, 2.5, 7000)
    assert settings.database_url == f"sqlite:///{tmp_path / 'service' / 'farcall.db'}"
    with pytest.raises(ValueError, match="FARCALL_SERVICE_RATE_LIMIT"):
        Settings.from_env({"FARCALL_SERVICE_RATE_LIMIT": "lots"})


def test_start_takes_the_cap_and_quotas(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each limit of a submission is a flag of ``farcall server start`` and a variable."""
    from click.testing import CliRunner
    from farcall_service import cli

    seen: list[Settings] = []

    def stop_here(settings: Settings) -> None:
        seen.append(settings)
        raise SystemExit(0)

    monkeypatch.setattr("farcall_service.app.create_app", stop_here)
    env = {"FARCALL_HOME": str(tmp_path), "FARCALL_SERVICE_MAX_STORED_BYTES_PER_USER": "0"}
    CliRunner().invoke(cli.server, ["start", "--max-tasks-per-submission", "50",
                                    "--max-queued-tasks-per-user", "70"], env=env)
    assert (seen[0].max_tasks_per_submission, seen[0].max_queued_tasks_per_user,
            seen[0].max_stored_bytes_per_user) == (50, 70, 0)


def test_tasks_prune(run) -> None:
    run("user", "add", "dora")
    assert run("tasks", "prune", "--older-than", "30", "--user", "dora") == "0 ended tasks deleted"
    assert "no user 'nobody'" in run("tasks", "prune", "--older-than", "1", "--user", "nobody",
                                     ok=False)
    assert "0 or more" in run("tasks", "prune", "--older-than", "-1", ok=False)


def test_user_list_shows_every_user_without_secrets(run) -> None:
    assert "no users" in run("user", "list")
    alice_id = run("user", "add", "alice")
    bob_id = run("user", "add", "bob")
    token = run("token", "create", "bob")
    run("user", "remove", "bob")
    header, *rows = run("user", "list").splitlines()
    assert header.split() == ["ID", "CREATED", "PASSWORD", "NAME"]
    assert [row.split()[0] for row in rows] == [alice_id]  # a removed user is not listed
    assert rows[0].split()[2:] == ["no", "alice"]
    assert bob_id not in "\n".join(rows) and token not in "\n".join(rows)


def test_server_start_logs_in_one_format_without_migration_chatter(tmp_path: Path) -> None:
    import re

    from farcall_testkit.service import ServiceProcess

    with ServiceProcess(tmp_path).start() as service:
        pass
    lines = [line for line in service.log().splitlines() if line.strip()]
    assert lines, "the service logged nothing"
    line_format = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ [\w.]+: ")
    assert [line for line in lines if not line_format.match(line)] == []
    assert not [line for line in lines if " alembic" in line]


def test_ctrl_c_stops_the_service_cleanly(tmp_path: Path) -> None:
    import os
    import signal

    from farcall_testkit.service import ServiceProcess

    with ServiceProcess(tmp_path).start() as service:
        assert service.process is not None
        os.killpg(service.process.pid, signal.SIGINT)
        assert service.process.wait(timeout=30) == 0  # a hang detector, not a speed test
    log = service.log()
    assert "Application shutdown complete" in log
    assert "Aborted" not in log and "Traceback" not in log, log


@pytest.mark.parametrize("command", [["user", "list"], ["start", "--port", "1"]])
def test_a_missing_postgresql_driver_says_what_to_install(tmp_path: Path,
                                                         command: list[str]) -> None:
    """Without psycopg (``farcall-service[postgresql]`` brings it), an admin command and
    ``server start`` say so in one line, not in a traceback."""
    blocked = ("import sys; sys.modules['psycopg'] = None; "  # as if it were not installed
               "from farcall.cli import main; main()")
    done = subprocess.run(
        [sys.executable, "-c", blocked, "server", *command,
         "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none"],
        env={"FARCALL_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "Error: the database driver of postgresql+psycopg:// URLs is not installed "
        "(psycopg): pip install 'farcall-service[postgresql]'")
    assert "Traceback" not in done.stderr
