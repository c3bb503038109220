"""Keep secrets out of the service log.

Authorization codes travel in query strings (OAuth redirects put them there), and
uvicorn's access log prints full paths, so query strings are cut from access-log
lines. SQL statements carry token hashes and users' code, so SQLAlchemy's statement
log stays off even when the service logs at DEBUG.
"""

from __future__ import annotations

import logging


class DropQueryStrings(logging.Filter):
    """uvicorn access records are ``(client, method, path?query, http_version, status)``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, sep, _query = args[2].partition("?")
            if sep:
                record.args = (*args[:2], path + "?<redacted>", *args[3:])
        return True


def install() -> None:
    logging.getLogger("uvicorn.access").addFilter(DropQueryStrings())
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
