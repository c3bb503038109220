"""Owner-only files and folders: everything farcall writes is 0600, every folder 0700.

farcall's files hold token hashes, refresh tokens, everyone's code and results. The rule
holds whoever creates a file first and whatever the umask: files are created with mode
0600 (and tightened if an older farcall left them wider), folders are created 0700.

Folders farcall owns (``$FARCALL_HOME`` and the folders farcall makes under it) are
also tightened when they already exist; a folder the user chose (the parent of a
``--db`` path, of a ``cache_path``) is created 0700 when missing but otherwise left as
the user set it.

SQLite creates a database's ``-wal``, ``-shm`` and ``-journal`` files itself, with the
permissions of the database file on Unix: :func:`private_sqlite` creates the database
file 0600 before SQLite opens it, so they follow.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


def private_dir(
    path: str | os.PathLike[str], *, tighten: bool = True, home: Path | None = None
) -> Path:
    """Create ``path`` (and any missing parents) 0700; return it.

    ``tighten`` also takes group and other access away from the existing folders farcall
    owns: ``path`` itself and, when ``path`` lies in farcall's home (``home``, default
    ``$FARCALL_HOME`` or ``~/.farcall``), every folder from the home down to it. Pass
    ``tighten=False`` for a folder the user chose (see :func:`in_farcall_home`).
    """
    path = Path(path).expanduser()
    missing: list[Path] = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, DIR_MODE)
            os.chmod(folder, DIR_MODE)  # whatever the umask
    if tighten:
        for folder in _owned_chain(path, home):
            _tighten(folder, DIR_MODE)
    return path


def farcall_home() -> Path:
    """``$FARCALL_HOME``, or ``~/.farcall``: the folder farcall owns."""
    raw = os.environ.get("FARCALL_HOME", "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".farcall"


def in_farcall_home(path: str | os.PathLike[str], home: Path | None = None) -> bool:
    """Whether ``path`` is farcall's home or lies in it (so farcall owns it)."""
    return _relative(Path(path).expanduser(), home or farcall_home()) is not None


def private_file(path: str | os.PathLike[str]) -> Path:
    """Make sure ``path`` exists, 0600: create it empty, or tighten the one there."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        _fchmod_private(fd)
    finally:
        os.close(fd)
    return path


def tighten_file(path: str | os.PathLike[str]) -> None:
    """Take group and other access away from ``path`` if it exists and is ours: for
    files another library writes (it keeps the mode of a file it overwrites)."""
    with contextlib.suppress(FileNotFoundError):
        _tighten(Path(path), FILE_MODE)


def open_private(path: str | os.PathLike[str], mode: str = "ab", **kwargs: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file created (or tightened to) 0600.

    ``mode`` is ``"a"``, ``"w"`` or ``"x"`` with optional ``"b"``/``"+"``: for logs
    a child process keeps, and for files written in place.
    """
    flags = os.O_CREAT | os.O_CLOEXEC | (os.O_RDWR if "+" in mode else os.O_WRONLY)
    if "a" in mode:
        flags |= os.O_APPEND
    elif "w" in mode:
        flags |= os.O_TRUNC
    elif "x" in mode:
        flags |= os.O_EXCL
    else:
        raise ValueError(f"open_private writes: mode {mode!r} has no 'a', 'w' or 'x'")
    fd = os.open(path, flags, FILE_MODE)
    try:
        _fchmod_private(fd)
        return os.fdopen(fd, mode, **kwargs)
    except BaseException:
        os.close(fd)
        raise


def write_private(path: str | os.PathLike[str], text: str) -> None:
    """Replace ``path`` with ``text`` atomically, owner-only (a temp file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover from a crash may be wider than 0600
    with open_private(tmp, "x", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)


def private_sqlite(path: str | os.PathLike[str]) -> Path:
    """Prepare a SQLite database file so it and the files SQLite adds are 0600.

    Creates the file 0600 (SQLite gives ``-wal``/``-shm``/``-journal`` the database's
    mode) and tightens companions an older run left wider. The folder is not touched.
    """
    path = private_file(path)
    for suffix in SQLITE_COMPANIONS:
        tighten_file(path.with_name(path.name + suffix))
    return path


def _relative(path: Path, home: Path) -> Path | None:
    try:
        return path.resolve().relative_to(home.expanduser().resolve())
    except (ValueError, OSError):
        return None


def _owned_chain(path: Path, home: Path | None) -> list[Path]:
    """``path``, and the folders from farcall's home down to it when it lies there."""
    root = (home or farcall_home()).expanduser()
    relative = _relative(path, root)
    if relative is None:
        return [path]
    chain = [root]
    for part in relative.parts:
        chain.append(chain[-1] / part)
    return chain


def _fchmod_private(fd: int) -> None:
    info = os.fstat(fd)
    if info.st_mode & 0o777 != FILE_MODE and info.st_uid == os.geteuid():
        os.fchmod(fd, FILE_MODE)


def _tighten(path: Path, mode: int) -> None:
    """Give ``path`` exactly ``mode`` if it is ours and wider; leave others' alone."""
    info = path.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o777 & ~mode:
        os.chmod(path, (info.st_mode & 0o777) & mode)
