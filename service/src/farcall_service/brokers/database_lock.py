"""One service process per database, held by a lock its death releases at once.

The local broker keeps claims, waits and the memory of unfinished tasks in one
process, so a second process on the same database would give wrong answers (a task
reported through one would never wake a wait on the other). It therefore holds a lock
for as long as it runs, one that the operating system or the database server drops the
moment the process dies: a service killed with SIGKILL restarts at once, where a lease
row with an expiry would block the restart until it ran out.

- SQLite: ``flock`` on a file beside the database (``farcall.db.lock``, mode 0600).
- PostgreSQL: a session-level ``pg_try_advisory_lock`` on a connection of its own.

Other databases are not locked (a warning says so). The admin commands
(``farcall server user ...``) take no lock: they write through the database's own
transactions, which every service process sees.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from farcall.private_files import in_farcall_home, private_dir

from farcall_service.brokers.interface import BrokerError

log = logging.getLogger(__name__)

#: The advisory lock's key: the same for every farcall service on any database.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"farcall service").digest()[:8], "big",
                              signed=True)


def refusal(where: str) -> BrokerError:
    return BrokerError(
        f"another farcall service holds the database ({where}); the 'local' broker "
        "serves one service process per database. Stop the other service, or configure "
        "a shared broker (setting 'broker', FARCALL_SERVICE_BROKER) for several processes.")


class DatabaseLock:
    """Held from :meth:`acquire` to :meth:`release` (or the process's death)."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._fd: int | None = None
        self._connection: Any = None
        self._engine: Any = None

    @property
    def held(self) -> bool:
        return self._fd is not None or self._connection is not None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`BrokerError` when another process has it."""
        if self.held:
            return
        from sqlalchemy.engine import make_url

        url = make_url(self._url)
        backend = url.get_backend_name()
        if backend == "sqlite":
            if url.database and url.database != ":memory:" and "mode=memory" not in str(url):
                self._lock_file(Path(url.database).expanduser().resolve())
        elif backend == "postgresql":
            self._lock_postgresql()
        else:
            log.warning("the 'local' broker cannot lock a %s database: nothing stops a "
                        "second service process from serving it", backend)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor releases the flock
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):  # the server is gone: so is the lock
                from sqlalchemy import text

                connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                   {"key": ADVISORY_KEY})
                connection.commit()
            with contextlib.suppress(Exception):
                connection.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _lock_file(self, database: Path) -> None:
        import fcntl

        path = database.with_name(database.name + ".lock")
        private_dir(path.parent, tighten=in_farcall_home(path.parent))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)  # a lock file an older run left wider
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise refusal(str(path)) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _lock_postgresql(self) -> None:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        engine = sa.create_engine(self._url, poolclass=NullPool)
        try:
            connection = engine.connect()
            try:
                got = connection.execute(sa.text("SELECT pg_try_advisory_lock(:key)"),
                                         {"key": ADVISORY_KEY}).scalar()
                connection.commit()  # the lock is the session's: it outlives the transaction
            except BaseException:
                connection.close()
                raise
        except BaseException:
            engine.dispose()
            raise
        if not got:
            connection.close()
            engine.dispose()
            raise refusal(f"PostgreSQL database {engine.url.database!r}")
        self._engine, self._connection = engine, connection
