"""The owner-only helpers on real files: every umask, existing files, SQLite's own files."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from farcall.private_files import (
    in_farcall_home,
    open_private,
    private_dir,
    private_sqlite,
    tighten_file,
    write_private,
)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.fixture(params=[0o000, 0o022, 0o277])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_new_folders_and_files_are_owner_only_whatever_the_umask(tmp_path: Path,
                                                                 umask: int) -> None:
    folder = private_dir(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == mode(folder) == 0o700
    with open_private(folder / "log") as log:
        log.write(b"x")
    write_private(folder / "config.toml", "token = 'secret'\n")
    assert mode(folder / "log") == mode(folder / "config.toml") == 0o600
    assert (folder / "config.toml").read_text() == "token = 'secret'\n"


def test_existing_wide_files_are_tightened_and_keep_their_content(tmp_path: Path) -> None:
    for name in ("log", "config.toml", "tokens.json", "config.toml.tmp"):
        (tmp_path / name).write_text("old\n")
        (tmp_path / name).chmod(0o644)
    with open_private(tmp_path / "log") as log:
        log.write(b"new\n")
    write_private(tmp_path / "config.toml", "new\n")  # a leftover .tmp 0644 is not reused
    tighten_file(tmp_path / "tokens.json")
    tighten_file(tmp_path / "missing.json")  # nothing there: nothing made
    assert (tmp_path / "log").read_text() == "old\nnew\n"
    assert (tmp_path / "config.toml").read_text() == "new\n"
    for name in ("log", "config.toml", "tokens.json"):
        assert mode(tmp_path / name) == 0o600, name
    assert not (tmp_path / "missing.json").exists()


def test_folders_in_the_home_are_tightened_others_only_made(tmp_path: Path) -> None:
    home, chosen = tmp_path / "home", tmp_path / "chosen"
    (home / "endpoints").mkdir(parents=True, mode=0o755)
    chosen.mkdir(mode=0o755)
    for folder in (home, home / "endpoints", chosen):
        folder.chmod(0o755)
    private_dir(home / "endpoints" / "local", home=home)
    assert mode(home) == mode(home / "endpoints") == mode(home / "endpoints" / "local") == 0o700
    assert in_farcall_home(home / "endpoints", home) and not in_farcall_home(chosen, home)
    private_dir(chosen / "sub", tighten=False)
    assert mode(chosen) == 0o755 and mode(chosen / "sub") == 0o700


def test_sqlite_gives_its_wal_and_shm_files_the_database_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = private_sqlite(tmp_path / "spool.db")
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (x)")
        db.commit()
        companions = [tmp_path / "spool.db-wal", tmp_path / "spool.db-shm"]
        assert all(p.exists() for p in companions)
        assert [mode(p) for p in [path, *companions]] == [0o600] * 3
        db.close()
    finally:
        os.umask(old)
    # an older run's wider companions are tightened before SQLite opens the database
    (tmp_path / "old.db-wal").write_bytes(b"")
    (tmp_path / "old.db-wal").chmod(0o644)
    private_sqlite(tmp_path / "old.db")
    assert mode(tmp_path / "old.db-wal") == mode(tmp_path / "old.db") == 0o600
