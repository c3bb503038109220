"""An endpoint's configuration: ``$FARCALL_HOME/endpoints/NAME/config.toml``.

Every key is optional; docs/endpoint.md is the reference. Unknown keys are errors,
so a misspelt setting is reported instead of silently ignored.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from farcall.errors import FarcallError
from farcall.sdk.profile import farcall_home

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILE = "config.toml"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

#: The largest result the endpoint sends (the service's default limit, 1 GiB).
DEFAULT_MAX_RESULT_SIZE = 1024**3

#: How a worker is started inside a container; ``{location}`` is the environment's
#: location (an image), ``{worker}`` the worker command inside it.
DEFAULT_CONTAINER_COMMANDS: dict[str, str] = {
    "docker": "docker run --rm -i --network=host {location} {worker}",
    "podman": "podman run --rm -i --network=host {location} {worker}",
    "apptainer": "apptainer exec {location} {worker}",
}
#: The worker command inside a container: the image needs farcall-endpoint installed.
DEFAULT_CONTAINER_WORKER = "python3 -m farcall_endpoint.engines.worker"


class ConfigError(FarcallError):
    """An endpoint configuration that cannot be used as written."""


@dataclass
class EndpointConfig:
    """Everything an endpoint process needs; times are seconds, sizes bytes."""

    name: str
    home: Path = field(default_factory=farcall_home)
    display_name: str | None = None
    #: Service URL; unset means FARCALL_BASE_URL, then the ``farcall dev`` profile.
    base_url: str | None = None
    #: Static token; unset means FARCALL_TOKEN, then the ``farcall dev`` profile.
    token: str | None = None
    #: A login manager by name; unset means the first of the chain that applies.
    login_manager: str | None = None
    #: Extra settings handed to the login manager's factory.
    login: dict[str, Any] = field(default_factory=dict)
    #: The transport plugin requests to the service go through.
    transport: str = "http"
    #: The endpoint link plugin, unless the service names another when it registers.
    link: str = "farcall"
    #: ``type`` names the engine plugin; the other keys go to its factory.
    engine: dict[str, Any] = field(default_factory=lambda: {"type": "process"})
    #: Strategy ids, names or import paths the endpoint deserializes; empty = all.
    allowed_serializers: list[str] = field(default_factory=list)
    #: Function ids this endpoint runs; empty = any.
    allowed_functions: list[str] = field(default_factory=list)
    #: Default per-task time limit; 0 = none. A task's resource_specification may set it.
    task_timeout: float = 0.0
    #: Results larger than this (bytes, serialized) fail with ``MaxResultSizeExceeded``.
    max_result_size: int = DEFAULT_MAX_RESULT_SIZE
    #: Results larger than this go to the service's blob store, not into a report;
    #: 0: the service's threshold (1 MiB unless it says otherwise).
    blob_threshold: int = 0
    heartbeat_period: float = 10.0
    #: How long one claim waits at the service for work (long poll).
    claim_wait: float = 10.0
    #: Most tasks claimed in one request.
    max_batch: int = 500
    #: Tasks held beyond the engine's workers, so workers never wait for a claim.
    prefetch: int = 500
    #: Results are sent when this many are ready, or this long after the first.
    result_batch: int = 500
    result_flush_interval: float = 0.0
    #: Longest wait between attempts while the service is unreachable.
    max_backoff: float = 10.0
    #: Command templates for container environments, by type.
    container_commands: dict[str, str] = field(
        default_factory=lambda: dict(DEFAULT_CONTAINER_COMMANDS)
    )
    container_worker: str = DEFAULT_CONTAINER_WORKER

    # -- paths ------------------------------------------------------------------------

    @property
    def directory(self) -> Path:
        return endpoint_dir(self.name, self.home)

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_FILE

    @property
    def engine_type(self) -> str:
        return str(self.engine.get("type") or "process")

    @property
    def engine_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.engine.items() if k != "type"}

    def validate(self) -> EndpointConfig:
        check_name(self.name)
        for key in ("task_timeout", "heartbeat_period", "claim_wait", "max_backoff",
                    "result_flush_interval"):
            if float(getattr(self, key)) < 0:
                raise ConfigError(f"{key} must not be negative")
        for key in ("max_result_size", "max_batch", "result_batch"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key} must be at least 1")
        if self.prefetch < 0 or self.blob_threshold < 0:
            raise ConfigError("prefetch and blob_threshold must not be negative")
        if self.max_batch > 1000:
            raise ConfigError("max_batch is at most 1000 (the service's claim limit)")
        for key in ("transport", "link"):
            if not isinstance(getattr(self, key), str) or not getattr(self, key):
                raise ConfigError(f"{key} must name a plugin")
        if not isinstance(self.engine, dict):
            raise ConfigError("[engine] must be a table with a 'type' key")
        return self


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise ConfigError(
            f"endpoint name {name!r} must be 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def endpoints_root(home: Path | None = None) -> Path:
    return (home or farcall_home()) / "endpoints"


def endpoint_dir(name: str, home: Path | None = None) -> Path:
    return endpoints_root(home) / check_name(name)


_FIELDS = {f.name for f in fields(EndpointConfig)} - {"name", "home"}


def from_mapping(name: str, data: dict[str, Any], home: Path | None = None) -> EndpointConfig:
    """A config from parsed TOML (or any mapping), rejecting unknown keys."""
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in the configuration of endpoint {name!r}: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_FIELDS))})"
        )
    values = dict(data)
    if "container_commands" in values:
        values["container_commands"] = {
            **DEFAULT_CONTAINER_COMMANDS, **dict(values["container_commands"])
        }
    try:
        config = EndpointConfig(name=name, home=home or farcall_home(), **values)
    except TypeError as exc:
        raise ConfigError(f"endpoint {name!r}: {exc}") from None
    return config.validate()


def load_config(name: str, home: Path | None = None) -> EndpointConfig:
    """Read ``config.toml`` of endpoint ``name``."""
    path = endpoint_dir(name, home) / CONFIG_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"endpoint {name!r} is not configured ({path} does not exist): run "
            f"`farcall endpoint configure {name}`"
        ) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    return from_mapping(name, data, home)


def configured_names(home: Path | None = None) -> list[str]:
    root = endpoints_root(home)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file())

