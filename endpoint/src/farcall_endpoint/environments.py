"""How a worker process is started for a task's execution environment.

No environment: this interpreter. ``venv``: the interpreter at the location (or
``bin/python`` under a venv directory). ``docker``, ``podman``, ``apptainer``: the
endpoint's command template for that type, with ``{location}`` the image and
``{worker}`` the worker command inside it. Every worker speaks the same framed
protocol on its stdin and stdout, so the pool treats them all alike.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

WORKER_MODULE = "farcall_endpoint.engines.worker"


class UnsupportedEnvironment(ValueError):
    """An environment this endpoint cannot start workers for."""


def environment_key(container: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """Tasks with equal keys share workers."""
    if not container:
        return None
    return (str(container.get("type", "")), str(container.get("location", "")))


def worker_command(
    key: tuple[str, str] | None,
    templates: Mapping[str, str],
    container_worker: str,
) -> list[str]:
    if key is None:
        return [sys.executable, "-m", WORKER_MODULE]
    kind, location = key
    if kind == "venv":
        python = Path(location)
        if python.is_dir():
            python = python / "bin" / "python"
        return [str(python), "-m", WORKER_MODULE]
    if location.startswith("-") or not location.isprintable() or " " in location:
        # The service refuses such locations; an older one may have stored them, and
        # in a command line ``--privileged`` would be read as an option.
        raise UnsupportedEnvironment(
            f"this endpoint does not start {kind} environments whose location starts "
            f"with '-' or holds whitespace or control characters: {location[:100]!r}")
    template = templates.get(kind)
    if not template:
        known = ", ".join(sorted({"venv", *templates})) or "venv"
        raise UnsupportedEnvironment(
            f"this endpoint has no command template for {kind!r} environments "
            f"(it knows: {known}); add one under [container_commands] in its config"
        )
    return shlex.split(
        template.format(
            location=shlex.quote(location),
            worker=container_worker,
            python=shlex.quote(sys.executable),
        )
    )


def describe(key: tuple[str, str] | None) -> str:
    return "the endpoint's own Python" if key is None else f"{key[0]} environment {key[1]!r}"
