"""Shell commands as functions: the official SDK's ``ShellFunction`` and ``ShellResult``.

A ``ShellFunction`` is registered and submitted like any function; on the endpoint it
formats its command with the call's keyword arguments, runs it with ``/bin/bash`` and
returns the command's exit code and the last ``snippet_lines`` lines of its output.
A non-zero exit is a result, not an exception, exactly as in the official SDK: the
caller reads ``returncode`` (and ``exception_name``).

Where the official implementation misbehaves, this one does better, on purpose:

- a command past its ``walltime`` is killed with its whole process group (the
  official one stops waiting and leaves it running);
- output captured to temporary files is removed afterwards (the official one leaves
  two files per task in the worker's directory);
- the sandbox directory (``GC_TASK_SANDBOX_DIR``) is the command's working directory
  without changing the worker's own, and no warning is written into ``stderr`` when
  the endpoint has none;
- the command's stdin is empty, never the endpoint's terminal.

Everything here runs on the endpoint too, so it imports only the standard library.
"""

from __future__ import annotations

import contextlib
import keyword
import os
import signal
import subprocess
import tempfile
from collections import deque
from pathlib import Path
from typing import IO, Any

__all__ = ["ShellFunction", "ShellResult"]

#: The exit code of a command stopped at its walltime, as timeout(1) reports it.
TIMEOUT_RETURNCODE = 124
#: How much of the output ``str(result)`` shows.
SUMMARY_CHARS = 1024
SUMMARY_LINES = 10


def _tail(text: str, what: str) -> str:
    """The last lines of ``text`` for a summary, saying where the rest is."""
    full = text.lstrip("\n").rstrip()
    shown = "\n".join(full[-SUMMARY_CHARS:].splitlines()[-SUMMARY_LINES:])
    if shown != full:
        shown = f"[... truncated; see .{what} for full output ...]\n{shown}"
    return shown


class ShellResult:
    """What a shell command left: its (formatted) command line, the last lines of its
    stdout and stderr, its exit code, and the exception name for a failed one."""

    def __init__(
        self, cmd: str, stdout: str, stderr: str, returncode: int, exception_name: str | None = None
    ) -> None:
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        self.returncode = returncode
        self.exception_name = exception_name

    def __str__(self) -> str:
        msg = f"exit code: {self.returncode}\n   stdout:\n{_tail(self.stdout, 'stdout')}"
        if self.returncode != 0:
            msg += f"\n\n   stderr:\n{_tail(self.stderr, 'stderr')}"
            if self.exception_name:
                msg += f"\n\nexception: {self.exception_name}"
        return msg

    def __repr__(self) -> str:
        parts = [f"returncode={self.returncode!r}", f"cmd={self.cmd!r}"]
        if self.exception_name is not None:
            parts.append(f"exception_name={self.exception_name!r}")
        parts += [f"stdout={self.stdout!r}", f"stderr={self.stderr!r}"]
        return f"{type(self).__name__}({', '.join(parts)})"


class ShellFunction:
    """A command line to run on an endpoint; ``{name}`` fields are filled from the
    call's keyword arguments.

    ``stdout``/``stderr`` name files (on the endpoint) that keep the whole output,
    appended to; ``walltime`` is in seconds; ``snippet_lines`` lines of each stream
    come back; ``name`` is the name it is registered under; ``return_dict`` returns a
    plain dict (JSON-compatible: fine for endpoints whose results run no code) instead
    of a :class:`ShellResult`.
    """

    def __init__(
        self,
        cmd: str,
        stdout: str | None = None,
        stderr: str | None = None,
        walltime: float | None = None,
        snippet_lines: int = 1000,
        name: str | None = None,
        return_dict: bool = False,
    ) -> None:
        if walltime is not None and walltime < 0:
            raise ValueError(f"walltime must not be negative, not {walltime}")
        name = name or type(self).__name__
        if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
            raise ValueError(f"the name must be a valid Python name, not {name!r}")
        self.cmd = cmd
        self.stdout = stdout
        self.stderr = stderr
        self.walltime = walltime
        self.snippet_lines = snippet_lines
        self.__name__ = name
        self.return_dict = return_dict

    def __repr__(self) -> str:
        parts = [] if self.__name__ == type(self).__name__ else [f"name={self.__name__!r}"]
        for field in ("walltime", "stdout", "stderr"):
            if getattr(self, field) is not None:
                parts.append(f"{field}={getattr(self, field)!r}")
        parts += [f"snippet_lines={self.snippet_lines}", f"cmd={self.cmd!r}"]
        return f"{type(self).__name__}({', '.join(parts)})"

    def __str__(self) -> str:
        parts = [self.__name__]
        if self.walltime is not None:
            parts.append(f" wall time: {self.walltime}")
        for field in ("stdout", "stderr"):
            if getattr(self, field) is not None:
                parts.append(f"    {field}: {getattr(self, field)!r}")
        parts.append(f"     lines: {self.snippet_lines!r}")
        header = "   command: "
        full = self.cmd.strip()
        cmd = "\n".join(full[:SUMMARY_CHARS].splitlines()[:SUMMARY_LINES])
        if cmd != full:
            cmd += "\n[... truncated; see .cmd for full script ...]"
        if "\n" in cmd:
            indent = "\n" + " " * len(header)
            cmd = cmd.strip().replace("\n", indent)
            cmd = f"-----{indent}{cmd}{indent}-----"
        parts.append(header + cmd)
        return "\n".join(parts)

    def __call__(self, **kwargs: Any) -> ShellResult | dict[str, Any]:
        """Run the command with ``kwargs`` filled in (on the endpoint)."""
        return self.execute_cmd_line(self.cmd.format(**kwargs))

    def execute_cmd_line(self, cmd: str) -> ShellResult | dict[str, Any]:
        """Run ``cmd`` with bash and collect what it left."""
        cwd = os.environ.get("GC_TASK_SANDBOX_DIR") or None
        if cwd:
            os.makedirs(cwd, exist_ok=True)
        with _stream(self.stdout, cwd) as out, _stream(self.stderr, cwd) as err:
            returncode, exception_name = self._run(cmd, out, err, cwd)
            result = ShellResult(
                cmd, self._snippet(out), self._snippet(err), returncode, exception_name
            )
        return dict(vars(result)) if self.return_dict else result

    def _run(self, cmd: str, out: IO[str], err: IO[str], cwd: str | None) -> tuple[int, str | None]:
        # A session of its own, so that a timeout stops everything the command started;
        # no stdin, so that nothing (mpiexec forwards it) reads the endpoint's terminal.
        proc = subprocess.Popen(
            cmd,
            shell=True,
            executable="/bin/bash",
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            cwd=cwd,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=self.walltime)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return TIMEOUT_RETURNCODE, "subprocess.TimeoutExpired"
        if proc.returncode != 0:
            return proc.returncode, "subprocess.CalledProcessError"
        return 0, None

    def _snippet(self, stream: IO[str]) -> str:
        if self.snippet_lines <= 0:
            return ""
        stream.flush()
        stream.seek(0)
        return "".join(deque(stream, maxlen=self.snippet_lines))


class _stream:
    """A named output file (kept, appended to) or a temporary one (removed after)."""

    def __init__(self, path: str | None, cwd: str | None) -> None:
        self._path = path
        self._cwd = cwd
        self._file: IO[str] | None = None

    def __enter__(self) -> IO[str]:
        if self._path is None:
            self._file = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")
        else:
            path = Path(self._cwd or ".", self._path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("a+", encoding="utf-8", errors="replace")
        return self._file

    def __exit__(self, *_exc: object) -> None:
        if self._file is not None:
            self._file.close()
