"""Keep secrets out of the service log.

Authorization codes travel in query strings (OAuth redirects put them there), and
uvicorn's access log prints full paths, so query strings are cut from access-log
lines; WebSocket handshake headers logged at DEBUG lose their credentials. SQL
statements carry token hashes and users' code, so SQLAlchemy's statement log stays
off even when the service logs at DEBUG.
"""

from __future__ import annotations

import logging
import re


class DropQueryStrings(logging.Filter):
    """uvicorn access records are ``(client, method, path?query, http_version, status)``."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            path, sep, _query = args[2].partition("?")
            if sep:
                record.args = (*args[:2], path + "?<redacted>", *args[3:])
        return True


class DropCredentialHeaders(logging.Filter):
    """At DEBUG, uvicorn has websockets log each WebSocket handshake's headers (an
    endpoint channel's carry its token): their values are cut."""

    HEADER = re.compile(r"(?i)^([<>]\s*(?:authorization|cookie|proxy-authorization)\s*:).*$")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            message = record.getMessage()
            redacted = self.HEADER.sub(r"\1 <redacted>", message)
            if redacted != message:
                record.msg, record.args = redacted, ()
        return True


def install() -> None:
    logging.getLogger("uvicorn.access").addFilter(DropQueryStrings())
    logging.getLogger("uvicorn.error").addFilter(DropCredentialHeaders())
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
