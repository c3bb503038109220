"""Creating an endpoint: its documented config file and its stable id.

The id lives in ``endpoint.json`` beside the config, not in it, so copying a config
to make a second endpoint does not make two endpoints share one id.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

from farcall.plugins.manager import FarcallPluginManager, get_plugin_manager
from farcall.private_files import private_dir, write_private

from farcall_endpoint.config import (
    CONFIG_FILE,
    ConfigError,
    EndpointConfig,
    endpoint_dir,
    from_mapping,
    load_config,
)
from farcall_endpoint.kinds import ENGINES

ID_FILE = "endpoint.json"

TEMPLATE = """\
# Configuration of the farcall endpoint {name!r}.
# Every key is optional; the reference is docs/endpoint.md ("The config file").

# display_name = "my laptop"
{display_name}
# Service and credentials. Unset: FARCALL_BASE_URL / FARCALL_TOKEN, then the
# profile `farcall dev` writes. A token here is a secret: this file is mode 0600.
{base_url}
{token}
# login_manager = "static-token"
{login_manager}
# The transport plugin that carries requests to the service, and the endpoint link
# plugin (the service may name another link when the endpoint registers).
transport = {transport}
link = {link}

# Which serialization strategies tasks may use (ids like "01", names like
# "DillCode", or official import paths / wildcards); empty: every installed one.
allowed_serializers = {allowed_serializers}
# Function ids this endpoint runs; empty: any function. Also registered with the service.
allowed_functions = {allowed_functions}

# Per-task time limit in seconds (0: none); a task's resource_specification
# {{"timeout": s}} overrides it. Results larger than max_result_size bytes (at most
# the service's own limit, 1 GiB by default) fail with MaxResultSizeExceeded; results
# larger than blob_threshold bytes (0: the service's threshold, 1 MiB by default) are
# streamed to the service's blob store.
task_timeout = {task_timeout}
max_result_size = {max_result_size}
blob_threshold = {blob_threshold}

# Heartbeat period, claim long-poll wait and batching (seconds / task counts).
heartbeat_period = {heartbeat_period}
claim_wait = {claim_wait}
max_batch = {max_batch}
prefetch = {prefetch}
result_batch = {result_batch}
result_flush_interval = {result_flush_interval}
max_backoff = {max_backoff}
container_worker = {container_worker}

# The engine that runs tasks: `type` names its plugin, the other keys are its own.
[engine]
{engine}

# How workers start inside container environments ({{location}}: the image,
# {{worker}}: container_worker, the worker command in it).
[container_commands]
{container_commands}
{login}"""


def _toml(value: Any) -> str:
    """A TOML literal for the simple values a config holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (f"{json.dumps(str(k))} = {_toml(v)}" for k, v in value.items())
        return "{ " + ", ".join(pairs) + " }"
    raise ConfigError(f"cannot write {value!r} to a config file")


def _engine_table(config: EndpointConfig, template: str) -> str:
    """The ``[engine]`` table: the engine's commented template when the config sets
    nothing beyond the worker count, else the config's own keys."""
    if template and set(config.engine) <= {"type", "workers"}:
        workers = int(config.engine.get("workers") or os.cpu_count() or 1)
        return f"type = {_toml(config.engine_type)}\n" + template.format(workers=workers)
    return "\n".join(f"{k} = {_toml(v)}" for k, v in config.engine.items())


def render(config: EndpointConfig, engine_template: str = "") -> str:
    """The config file text for ``config``, comments included; ``engine_template`` is
    the engine plugin's (:attr:`farcall_endpoint.kinds.EngineType.template`)."""

    def optional(key: str, value: Any) -> str:
        return f"{key} = {_toml(value)}" if value else ""

    return TEMPLATE.format(
        name=config.name,
        display_name=optional("display_name", config.display_name),
        base_url=optional("base_url", config.base_url),
        token=optional("token", config.token),
        login_manager=optional("login_manager", config.login_manager),
        transport=_toml(config.transport),
        link=_toml(config.link),
        container_worker=_toml(config.container_worker),
        login=(
            "\n# Settings for the login manager.\n[login]\n"
            + "\n".join(f"{k} = {_toml(v)}" for k, v in config.login.items()) + "\n"
            if config.login else ""
        ),
        allowed_serializers=_toml(config.allowed_serializers),
        allowed_functions=_toml(config.allowed_functions),
        task_timeout=_toml(config.task_timeout),
        max_result_size=_toml(config.max_result_size),
        blob_threshold=_toml(config.blob_threshold),
        heartbeat_period=_toml(config.heartbeat_period),
        claim_wait=_toml(config.claim_wait),
        max_batch=_toml(config.max_batch),
        prefetch=_toml(config.prefetch),
        result_batch=_toml(config.result_batch),
        result_flush_interval=_toml(config.result_flush_interval),
        max_backoff=_toml(config.max_backoff),
        engine=_engine_table(config, engine_template),
        container_commands="\n".join(
            f"{k} = {_toml(v)}" for k, v in config.container_commands.items()
        ),
    ).replace("\n\n\n", "\n\n")


def configure_endpoint(
    name: str,
    *,
    home: Path | None = None,
    endpoint_id: str | None = None,
    overwrite: bool = False,
    plugin_manager: FarcallPluginManager | None = None,
    **settings: Any,
) -> EndpointConfig:
    """Write the config file of endpoint ``name`` and give it an id; return the config.

    ``settings`` are config keys (``engine={"type": "thread", "workers": 2}``,
    ``base_url=...``, ``task_timeout=...``). An existing config is kept unless
    ``overwrite``; ``endpoint_id`` adopts an id registered elsewhere. An engine no
    installed plugin provides is refused now, naming those that are, not at start.
    """
    directory = endpoint_dir(name, home)
    path = directory / CONFIG_FILE
    if path.exists() and not overwrite:
        raise ConfigError(f"endpoint {name!r} is already configured at {path}")
    config = from_mapping(name, settings, home)
    engine = (plugin_manager or get_plugin_manager()).select(ENGINES, config.engine_type)
    private_dir(directory, home=config.home)
    write_private(path, render(config, engine.template))
    ensure_endpoint_id(config, endpoint_id)
    return load_config(name, config.home)


def read_endpoint_id(directory: Path) -> str | None:
    try:
        data = json.loads((directory / ID_FILE).read_text())
        return str(uuid.UUID(str(data["endpoint_id"])))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def ensure_endpoint_id(config: EndpointConfig, endpoint_id: str | None = None) -> str:
    """The endpoint's id, created once and kept for every later start."""
    if endpoint_id is not None:
        try:
            wanted = str(uuid.UUID(str(endpoint_id)))
        except ValueError:
            raise ConfigError(f"endpoint id {endpoint_id!r} is not a UUID") from None
    else:
        existing = read_endpoint_id(config.directory)
        if existing:
            return existing
        wanted = str(uuid.uuid4())
    private_dir(config.directory, home=config.home)
    write_private(config.directory / ID_FILE, json.dumps({"endpoint_id": wanted}) + "\n")
    return wanted
