"""``python -m farcall_dev.tether FD COMMAND...``: run COMMAND for as long as the
process holding the write end of the pipe whose read end is FD lives.

``farcall dev`` starts its service and endpoint in sessions of their own (Ctrl-C in
its terminal must reach ``farcall dev`` alone, which then stops them in order), so
nothing stops them when ``farcall dev`` itself is killed: they would keep the port and
the next ``farcall dev`` would fail. A pipe is how they learn of it: the kernel closes
``farcall dev``'s write end however it dies, SIGKILL included, and the read end then
reads end-of-file. That works on every POSIX system (``farcall dev`` runs on
developers' laptops, macOS among them), and unlike Linux's ``PR_SET_PDEATHSIG`` it
does not fire when merely the thread that started the child ends. The tether is a
small process of its own so that the service and endpoint commands stay exactly what
a deployment runs.

When the pipe closes, COMMAND gets SIGTERM (the endpoint then stops its engine and
workers) and, after :data:`GRACE` seconds, the whole process group SIGKILL: nothing
started under the tether outlives it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading

#: Seconds COMMAND has to stop on SIGTERM before its process group is killed.
GRACE = 10.0


def _watch(fd: int, child: subprocess.Popen[bytes]) -> None:
    """Block until the pipe's writers are all gone, then stop ``child`` and the group."""
    while True:
        try:
            if not os.read(fd, 1024):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    if child.poll() is None:
        child.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(GRACE)
    os.killpg(os.getpgrp(), signal.SIGKILL)  # the tether too: its work is done


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m farcall_dev.tether FD COMMAND...", file=sys.stderr)
        return 2
    fd = int(argv[0])
    child = subprocess.Popen(argv[1:])  # the pipe is not passed on (close_fds)
    # A signal to the group (``farcall dev`` stopping it) reaches COMMAND as well: the
    # tether waits for COMMAND to finish instead of leaving first. Ignored only now, so
    # that COMMAND does not inherit the ignoring.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch, args=(fd, child), daemon=True).start()
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
