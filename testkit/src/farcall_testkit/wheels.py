"""Building wheels and installing them as users would, for tests of plugin discovery.

A third party's plugin is tested the way it ships: ``pip wheel`` of a project written
to a temporary folder, installed into a fresh virtual environment, then exercised by a
command or a pytest run in that environment. :func:`overlay_venv` makes an environment
that also sees the running one's packages (farcall and its first-party distributions,
editable installs included), so only the plugin's own wheel has to be installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path
from typing import Any


def write_project(root: Path, files: dict[str, str]) -> Path:
    """Write ``{relative path: text}`` (dedented) under ``root``; return ``root``."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything that would leak into a fresh venv."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("FARCALL_")}
    env.update(extra)
    return env


def run(args: list[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``args`` in ``cwd`` with :func:`clean_env` (unless ``env`` is given), captured."""
    kwargs.setdefault("env", clean_env())
    kwargs.setdefault("timeout", 300)
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, **kwargs)


def check(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """``proc`` if it succeeded; else fail with the end of its output."""
    output = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{proc.args} failed:\n{output}"
    return proc


def build_wheels(projects: list[Path], dist: Path) -> None:
    """``pip wheel --no-deps`` of every project into ``dist``, in one pip run."""
    check(run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
               "--quiet", "-w", str(dist), *map(str, projects)], cwd=dist.parent))


def overlay_venv(root: Path) -> Path:
    """A new virtual environment at ``root`` that also sees this interpreter's packages
    (after its own); returns its ``python``. It has no pip: install with
    :func:`install_wheel`, which runs this interpreter's pip for it."""
    check(run([sys.executable, "-m", "venv", "--without-pip", str(root)], cwd=root.parent))
    python = root / "bin" / "python"
    where = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    own = check(run([str(python), "-c", where], cwd=root.parent)).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    Path(own, "outer.pth").write_text(f"import site; site.addsitedir({ours!r})\n", encoding="utf-8")
    return python


def install_wheel(python: Path, wheel: Path) -> None:
    """Install ``wheel`` (and nothing else) into the environment of ``python``."""
    check(run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
               "--disable-pip-version-check", "--quiet", str(wheel)], cwd=wheel.parent))
