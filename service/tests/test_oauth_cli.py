"""`farcall server` for logins: passwords and clients, and only hashes on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from farcall.cli import cli
from farcall_service.oauth.passwords import verify_password
from farcall_service.settings import Settings
from farcall_service.storage import open_store


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FARCALL_HOME", str(tmp_path))
    monkeypatch.delenv("FARCALL_SERVICE_DB_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None, ok: bool = True) -> str:
        result = runner.invoke(cli, ["server", *args], input=stdin, catch_exceptions=False)
        assert (result.exit_code == 0) is ok, result.output
        return result.output.strip()

    return invoke


def test_passwords_and_clients(run, tmp_path: Path) -> None:
    run("user", "add", "alice", "--password-stdin", stdin="first password\n")
    run("user", "set-password", "alice", "--password-stdin", stdin="second password\n")
    prompted = run("user", "add", "bob", "--password", stdin="bob pw\nbob pw\n")
    assert "bob pw" not in prompted
    assert "may not be empty" in run("user", "set-password", "alice", "--password-stdin",
                                     stdin="\n", ok=False)
    created = json.loads(run("client", "create", "alice", "--name", "robot", "--json"))
    assert set(created) == {"client_id", "client_secret", "identity_id"}
    assert created["client_secret"].startswith("fcs_")
    assert run("client", "list", "alice") == f"{created['client_id']}  robot"
    assert "signs in with its secret" in run(
        "user", "set-password", f"{created['client_id']}@clients.farcall", "--password-stdin",
        stdin="x\n", ok=False)
    assert "'@'" in run("user", "add", "eve@example", ok=False)

    store = open_store(Settings(home=tmp_path).database_url)
    try:
        alice = store.get_user("alice")
        assert verify_password("second password", store.get_password_hash(alice.id))
        assert not verify_password("first password", store.get_password_hash(alice.id))
        assert created["identity_id"] == alice.id  # the client acts for its owner
    finally:
        store.close()
    database = b"".join(p.read_bytes() for p in (tmp_path / "service").glob("farcall.db*"))
    for secret in ("first password", "second password", "bob pw", created["client_secret"]):
        assert secret.encode() not in database

    run("client", "delete", created["client_id"])
    assert run("client", "list", "alice") == ""
    assert "no client" in run("client", "delete", created["client_id"], ok=False)
