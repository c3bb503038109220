"""Service configuration: defaults, overridden by environment variables, overridden by flags.

Every knob lives here so that the app factory, the CLI and the tests agree on names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from farcall.blob_refs import MIN_THRESHOLD

ENV_HOME = "FARCALL_HOME"

#: Settings field -> environment variable.
ENV_VARS: dict[str, str] = {
    "host": "FARCALL_SERVICE_HOST",
    "port": "FARCALL_SERVICE_PORT",
    "db_url": "FARCALL_SERVICE_DB_URL",
    "broker": "FARCALL_SERVICE_BROKER",
    "broker_management_url": "FARCALL_SERVICE_BROKER_MANAGEMENT_URL",
    "stream_queue_expiry": "FARCALL_SERVICE_STREAM_QUEUE_EXPIRY",
    "stream_credential_ttl": "FARCALL_SERVICE_STREAM_CREDENTIAL_TTL",
    "max_body_bytes": "FARCALL_SERVICE_MAX_BODY_BYTES",
    "max_json_depth": "FARCALL_SERVICE_MAX_JSON_DEPTH",
    "max_field_bytes": "FARCALL_SERVICE_MAX_FIELD_BYTES",
    "max_tasks_per_submission": "FARCALL_SERVICE_MAX_TASKS_PER_SUBMISSION",
    "max_queued_tasks_per_user": "FARCALL_SERVICE_MAX_QUEUED_TASKS_PER_USER",
    "max_stored_bytes_per_user": "FARCALL_SERVICE_MAX_STORED_BYTES_PER_USER",
    "rate_limit": "FARCALL_SERVICE_RATE_LIMIT",
    "rate_window": "FARCALL_SERVICE_RATE_WINDOW",
    "offline_timeout": "FARCALL_SERVICE_OFFLINE_TIMEOUT",
    "requeue_timeout": "FARCALL_SERVICE_REQUEUE_TIMEOUT",
    "max_claim_wait": "FARCALL_SERVICE_MAX_CLAIM_WAIT",
    "cache_ttl": "FARCALL_SERVICE_CACHE_TTL",
    "lock_seconds": "FARCALL_SERVICE_LOCK_SECONDS",
    "log_level": "FARCALL_SERVICE_LOG_LEVEL",
    "access_token_ttl": "FARCALL_SERVICE_ACCESS_TOKEN_TTL",
    "refresh_token_ttl": "FARCALL_SERVICE_REFRESH_TOKEN_TTL",
    "auth_code_ttl": "FARCALL_SERVICE_AUTH_CODE_TTL",
    "device_code_ttl": "FARCALL_SERVICE_DEVICE_CODE_TTL",
    "device_poll_interval": "FARCALL_SERVICE_DEVICE_POLL_INTERVAL",
    "max_header_bytes": "FARCALL_SERVICE_MAX_HEADER_BYTES",
    "header_timeout": "FARCALL_SERVICE_HEADER_TIMEOUT",
    "body_timeout": "FARCALL_SERVICE_BODY_TIMEOUT",
    "keep_alive_timeout": "FARCALL_SERVICE_KEEP_ALIVE_TIMEOUT",
    "max_connections": "FARCALL_SERVICE_MAX_CONNECTIONS",
    "max_connections_per_address": "FARCALL_SERVICE_MAX_CONNECTIONS_PER_ADDRESS",
    "trusted_proxies": "FARCALL_SERVICE_TRUSTED_PROXIES",
    "max_concurrent_hashes": "FARCALL_SERVICE_MAX_CONCURRENT_HASHES",
    "result_retention": "FARCALL_SERVICE_RESULT_RETENTION",
    "purge_batch_size": "FARCALL_SERVICE_PURGE_BATCH_SIZE",
    "purge_interval": "FARCALL_SERVICE_PURGE_INTERVAL",
    "blob_store": "FARCALL_SERVICE_BLOB_STORE",
    "max_result_size": "FARCALL_SERVICE_MAX_RESULT_SIZE",
    "blob_threshold": "FARCALL_SERVICE_BLOB_THRESHOLD",
    "blob_grace": "FARCALL_SERVICE_BLOB_GRACE",
}

#: The largest ``max_result_size`` may be.
MAX_RESULT_SIZE_CEILING = 1024**3


#: The deepest ``max_json_depth`` may be, and the depth every stored value is read
#: back with (``storage.json_columns.READ_DEPTH``): well under the answers' encoder's
#: limit.
JSON_DEPTH_CEILING = 128


def farcall_home(environ: Mapping[str, str] = os.environ) -> Path:
    """``$FARCALL_HOME``, or ``~/.farcall``."""
    raw = environ.get(ENV_HOME, "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".farcall"


def default_db_url(home: Path) -> str:
    return f"sqlite:///{home / 'service' / 'farcall.db'}"


@dataclass(frozen=True)
class Settings:
    """What the service needs to know to run. Times are seconds, sizes bytes."""

    home: Path = field(default_factory=farcall_home)
    host: str = "127.0.0.1"
    port: int = 5000
    #: SQLAlchemy URL; empty means the embedded SQLite database under ``home``.
    db_url: str = ""
    #: The broker plugin that moves tasks and results (``farcall_service.brokers``),
    #: by name or by a URL whose scheme selects it (``amqp://user:pass@host/vhost``:
    #: farcall-broker-rabbitmq); ``local`` serves one service process per database.
    broker: str = "local"
    #: The broker's management API, where it has one (RabbitMQ: users and permissions
    #: for result streams); empty: derived from the broker URL (its host, port 15672,
    #: its credentials).
    broker_management_url: str = ""
    #: A task group's result queue is removed after this many seconds unused.
    stream_queue_expiry: float = 24 * 3600.0
    #: Result-stream credentials handed to a user are the same for this long, then
    #: rotate (connections made before keep working).
    stream_credential_ttl: float = 24 * 3600.0
    #: Larger request bodies are refused with 413.
    max_body_bytes: int = 10 * 1024 * 1024
    #: Deepest nesting of a free-form JSON field (metadata, details, options; at most
    #: ``JSON_DEPTH_CEILING``); deeper ones are refused with 400.
    max_json_depth: int = 32
    #: Largest free-form field (JSON, descriptions, ``exception_data``); 413 above.
    max_field_bytes: int = 256 * 1024
    #: Tasks in one submission (413 ``TOO_MANY_TASKS`` above). A submission is one
    #: transaction under the database's write lock: this bounds how long any other
    #: writer waits behind it (docs/service.md, "Limits and errors").
    max_tasks_per_submission: int = 2_000
    #: Unfinished (queued or running) tasks per user; 0 disables the quota.
    max_queued_tasks_per_user: int = 1_000_000
    #: Payload and result bytes stored per user; 0 disables the quota.
    max_stored_bytes_per_user: int = 10 * 1024**3
    #: Requests per identity per ``rate_window``; 0 disables the limit.
    rate_limit: int = 10_000
    rate_window: float = 10.0
    #: An endpoint that sent nothing for this long is reported offline.
    offline_timeout: float = 30.0
    #: Tasks claimed by an endpoint that sent nothing for this long go back to the queue.
    requeue_timeout: float = 120.0
    #: Upper bound of a claim's long-poll ``wait``.
    max_claim_wait: float = 30.0
    #: Lifetime of cached token and permission lookups.
    cache_ttl: float = 5.0
    #: How long ``POST .../lock`` keeps an endpoint from claiming tasks.
    lock_seconds: float = 300.0
    log_level: str = "INFO"
    #: Lifetime of OAuth access tokens (static API tokens do not expire).
    access_token_ttl: float = 3600.0
    #: Lifetime of OAuth refresh tokens; each use replaces the token (rotation).
    refresh_token_ttl: float = 30 * 24 * 3600.0
    #: Lifetime of an authorization code from the login page.
    auth_code_ttl: float = 300.0
    #: Lifetime of a device-flow login's codes (RFC 8628): the time a user has to
    #: approve it in a browser.
    device_code_ttl: float = 600.0
    #: Seconds a device waits between polls of the token endpoint (more: ``slow_down``).
    device_poll_interval: float = 5.0
    #: A request's line and headers together may not be larger (431 above).
    max_header_bytes: int = 16 * 1024
    #: A connection must send a whole request head within this long of opening or of
    #: starting the request (slow headers are closed, with 408 when a part came).
    header_timeout: float = 10.0
    #: A body must arrive within this long of its head, plus a second per KiB sent.
    body_timeout: float = 30.0
    #: An idle keep-alive connection is closed after this long.
    keep_alive_timeout: float = 5.0
    #: Open connections in all (0 = no cap); past it, 503 and close.
    max_connections: int = 2000
    #: Open connections from one client address (0 = no cap); past it, 429 and close.
    max_connections_per_address: int = 128
    #: Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For
    #: names the client; empty: the peer address is the client.
    trusted_proxies: str = ""
    #: Password hashes at once (each scrypt hash holds 32 MiB); more wait, then 429.
    max_concurrent_hashes: int = 4
    #: An ended task and its result are kept this long after it ended, then deleted
    #: (reads of it then answer "expired"); 0 keeps them for ever. Hosted keeps 14 days.
    result_retention: float = 14 * 24 * 3600.0
    #: Tasks the purge looks at in one transaction (``purging``): bounds how long it
    #: holds the database's write lock.
    purge_batch_size: int = 500
    #: Seconds between two purges of ended tasks.
    purge_interval: float = 60.0
    #: The blob store plugin that keeps large results and payloads (``folder``,
    #: ``postgresql``, or an installed one); empty: ``postgresql`` when the database is
    #: PostgreSQL, else ``folder``.
    blob_store: str = ""
    #: Largest result or payload, in bytes, at most ``MAX_RESULT_SIZE_CEILING``; a
    #: larger result fails its task with ``MaxResultSizeExceeded``.
    max_result_size: int = MAX_RESULT_SIZE_CEILING
    #: Results and payloads over this many bytes (at least ``MIN_THRESHOLD``, 64 KiB)
    #: travel as blobs: farcall's clients ask it (``GET /farcall/v1/blobs/limits``)
    #: unless configured with a threshold of their own.
    blob_threshold: int = 1024 * 1024
    #: An uploaded payload blob no task has taken is deleted after this many seconds.
    blob_grace: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_json_depth <= JSON_DEPTH_CEILING:
            raise ValueError(f"max_json_depth must be between 1 and {JSON_DEPTH_CEILING}, "
                             f"not {self.max_json_depth}")
        if self.blob_threshold < MIN_THRESHOLD:
            raise ValueError(f"blob_threshold must be at least {MIN_THRESHOLD} bytes, "
                             f"not {self.blob_threshold}")
        if not 1 <= self.max_result_size <= MAX_RESULT_SIZE_CEILING:
            raise ValueError(f"max_result_size must be between 1 and {MAX_RESULT_SIZE_CEILING} "
                             f"bytes (1 GiB), not {self.max_result_size}")
        if self.max_field_bytes < 1:
            raise ValueError(f"max_field_bytes must be positive, not {self.max_field_bytes}")
        if self.result_retention < 0:
            raise ValueError(f"result_retention must be 0 or more, not {self.result_retention}")
        if self.purge_batch_size < 1 or self.purge_interval <= 0:
            raise ValueError("purge_batch_size and purge_interval must be positive, not "
                             f"{self.purge_batch_size} and {self.purge_interval}")

    @property
    def database_url(self) -> str:
        return self.db_url or default_db_url(self.home)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> Settings:
        """Defaults, then environment variables, then non-None ``overrides``."""
        values: dict[str, Any] = {"home": farcall_home(environ)}
        types = {f.name: f.type for f in fields(cls)}
        for name, var in ENV_VARS.items():
            raw = environ.get(var, "").strip()
            if raw:
                values[name] = _convert(types[name], raw, var)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def _convert(type_name: Any, raw: str, var: str) -> Any:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"{var}={raw!r} is not a valid {kind}") from None
    return raw
