"""Preloaded into each worker of the endpoint's LocalCluster (Dask's ``preload``).

Ctrl-C on a foreground endpoint reaches its whole process group, workers included:
a worker would die of it with a ``KeyboardInterrupt`` traceback while the endpoint is
still shutting the cluster down in order. Workers ignore it; the endpoint stops them.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def dask_setup(worker: Any) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
