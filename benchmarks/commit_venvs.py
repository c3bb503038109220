"""A virtual environment per commit compared by ``compare_commits.py``.

Each side gets ``benchmarks/.venvs/<short-sha>/`` (the working tree:
``benchmarks/.venvs/worktree/``) with every distribution its Makefile lists installed
non-editable, without extras, from an export of that commit (or a copy of the working
tree's files), so no side imports another's code. A venv is reused while the stamp
written after its install names the same source: the commit, or for the working tree
a hash of its distributions' files.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

VENVS = Path(__file__).resolve().parent / ".venvs"
STAMP = ".farcall-source"
DISTRIBUTIONS = re.compile(r"^DISTRIBUTIONS\s*:?=\s*(.+)$", re.MULTILINE)


class BuildError(Exception):
    """A side's venv could not be built."""


@dataclass(frozen=True)
class Side:
    """One side of the comparison: a commit, or the working tree when ``sha`` is None."""

    label: str
    description: str
    sha: str | None
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def resolve(repo: Path, ref: str | None, label: str) -> Side:
    """The side for ``ref``, or for the working tree when ``ref`` is None."""
    head = git(repo, "rev-parse", "--short=7", "HEAD").strip()
    if ref is None:
        return Side(label, f"the working tree (at {head})", None, VENVS / "worktree")
    try:
        sha = git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except BuildError:
        raise BuildError(f"{ref!r} is not a commit of this repository (a shallow clone? "
                         "fetch its history first)") from None
    short = sha[:7]
    return Side(label, short if ref.startswith(short) else f"{ref} ({short})", sha, VENVS / short)


def distributions(repo: Path, sha: str | None) -> list[str]:
    """The distribution folders the side's own Makefile installs."""
    if sha is None:
        makefile = (repo / "Makefile").read_text()
    else:
        makefile = git(repo, "show", f"{sha}:Makefile")
    match = DISTRIBUTIONS.search(makefile)
    if not match:
        raise BuildError(f"no DISTRIBUTIONS list in the Makefile of {sha or 'the working tree'}")
    return match.group(1).split()


def tree_files(repo: Path, folders: list[str]) -> list[str]:
    """The working tree's files in ``folders``: tracked and untracked, not ignored."""
    listed = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--",
                 *folders)
    return sorted({name for name in listed.split("\0") if name and (repo / name).is_file()})


def source_stamp(repo: Path, side: Side, folders: list[str]) -> str:
    if side.sha is not None:
        return side.sha
    digest = hashlib.sha256()
    for name in tree_files(repo, folders):
        digest.update(name.encode() + b"\0" + (repo / name).read_bytes() + b"\0")
    return f"worktree {digest.hexdigest()}"


def export(repo: Path, side: Side, folders: list[str], into: Path) -> None:
    """The side's distribution folders, written under ``into``."""
    if side.sha is None:
        for name in tree_files(repo, folders):
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(repo / name, target)
        return
    archive = subprocess.Popen(["git", "-C", str(repo), "archive", "--format=tar", side.sha,
                                "--", *folders], stdout=subprocess.PIPE)
    unpacked = subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout)
    assert archive.stdout is not None
    archive.stdout.close()
    if archive.wait() != 0 or unpacked.returncode != 0:
        raise BuildError(f"could not export {side.sha} with git archive")


def ensure_venv(repo: Path, side: Side, number: int, total: int) -> None:
    """Build the side's venv unless the one there was built from the same source."""
    folders = distributions(repo, side.sha)
    stamp = source_stamp(repo, side, folders)
    stamp_path = side.venv / STAMP
    if side.python.exists() and stamp_path.exists() and stamp_path.read_text() == stamp:
        print(f"reusing the venv for {side.description} ({side.venv})", flush=True)
        return
    print(f"building the venv for {side.description} ({number}/{total})...", flush=True)
    shutil.rmtree(side.venv, ignore_errors=True)
    side.venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(side.venv)], check=True)
    with tempfile.TemporaryDirectory(prefix="farcall-compare-src-") as tmp:
        source = Path(tmp)
        export(repo, side, folders, source)
        missing = [name for name in folders if not (source / name / "pyproject.toml").exists()]
        if missing:
            raise BuildError(f"{side.description} has no pyproject.toml in {', '.join(missing)}")
        # pip's output only on failure: it would bury the progress lines.
        installed = subprocess.run([str(side.python), "-m", "pip", "install", "--quiet",
                                    *(str(source / folder) for folder in folders)],
                                   capture_output=True, text=True)
    if installed.returncode != 0:
        tail = "\n".join((installed.stdout + installed.stderr).strip().splitlines()[-20:])
        raise BuildError(f"pip could not install {side.description} into {side.venv}:\n{tail}")
    stamp_path.write_text(stamp)
