"""``farcall.Executor``: the standard ``concurrent.futures`` interface over farcall.

``submit`` registers each function once, submissions made while a batch is being
sent travel together in the next one (so a lone submission leaves at once and a burst
leaves in a few large requests), and futures complete as the service reports
results (a long-poll: no fixed polling sleep).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Executor as _BaseExecutor
from concurrent.futures import Future
from itertools import islice
from typing import Any

from farcall.sdk.batch import canonical_id
from farcall.sdk.client import WAIT_WINDOW, Client

MAX_BATCH = 5_000
WAIT_S = 10.0


class Executor(_BaseExecutor):
    def __init__(self, endpoint_id: Any, client: Any = None, *, batch_size: int = MAX_BATCH) -> None:
        if client is None:
            client = Client()
        self.client = client
        self.endpoint_id = canonical_id(endpoint_id, "endpoint_id")
        self.batch_size = batch_size
        self._function_ids: dict[Callable[..., Any], str] = {}
        self._register_lock = threading.Lock()
        self._lock = threading.Condition()
        self._queued: list[tuple[Future, str, tuple, dict]] = []
        self._running: dict[str, Future] = {}
        self._shutdown = False
        self._submitter = threading.Thread(target=self._submit_loop, name="farcall-submit", daemon=True)
        self._collector = threading.Thread(target=self._collect_loop, name="farcall-collect", daemon=True)
        self._submitter.start()
        self._collector.start()

    # -- public API ---------------------------------------------------------------------

    def function_id(self, fn: Callable[..., Any]) -> str:
        """Register ``fn`` on first use and remember its id."""
        fid = self._function_ids.get(fn)
        if fid is not None:
            return fid
        with self._register_lock:
            fid = self._function_ids.get(fn)
            if fid is None:
                fid = self._function_ids[fn] = self.client.register_function(fn)
            return fid

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        if self._shutdown:
            raise RuntimeError("cannot submit to an Executor after shutdown")
        fid = self.function_id(fn)
        future: Future = Future()
        with self._lock:
            self._queued.append((future, fid, args, kwargs))
            self._lock.notify_all()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                for future, *_ in self._queued:
                    future.cancel()
                self._queued.clear()
                for future in self._running.values():
                    future.cancel()
                self._running.clear()
            self._lock.notify_all()
        if wait:
            self._submitter.join()
            self._collector.join()

    # -- background work ----------------------------------------------------------------

    def _submit_loop(self) -> None:
        while True:
            with self._lock:
                while not self._queued and not self._shutdown:
                    self._lock.wait()
                if not self._queued and self._shutdown:
                    self._lock.notify_all()
                    return
                work, self._queued = self._queued[: self.batch_size], self._queued[self.batch_size :]
            work = [item for item in work if not item[0].cancelled()]
            if not work:
                continue
            batch = self.client.create_batch()
            for _future, fid, args, kwargs in work:
                batch.add(*args, endpoint_id=self.endpoint_id, function_id=fid, **kwargs)
            try:
                # Not followed: the results are awaited on the collector's channel,
                # not on this thread's (where pushes would be read only by the next batch).
                task_ids = self.client._batch_run(batch, follow=False)
            except BaseException as exc:  # the service refused: fail these futures
                for future, *_ in work:
                    if future.set_running_or_notify_cancel():
                        future.set_exception(exc)
                continue
            with self._lock:
                for (future, *_), tid in zip(work, task_ids):
                    future.task_id = tid  # type: ignore[attr-defined]
                    self._running[tid] = future
                self._lock.notify_all()

    def _collect_loop(self) -> None:
        while True:
            with self._lock:
                while not self._running and not (self._shutdown and not self._queued):
                    self._lock.wait()
                if not self._running and self._shutdown and not self._queued:
                    return
                waiting = list(islice(self._running, WAIT_WINDOW))  # the oldest: see WAIT_WINDOW
            try:
                finished = self.client.wait_any(waiting, timeout=WAIT_S)
            except BaseException as exc:
                with self._lock:
                    futures = [self._running.pop(t) for t in waiting if t in self._running]
                for future in futures:
                    if future.set_running_or_notify_cancel():
                        future.set_exception(exc)
                continue
            with self._lock:
                ended = [(self._running.pop(tid, None), entry) for tid, entry in finished.items()]
            for future, entry in ended:
                if future is None or not future.set_running_or_notify_cancel():
                    continue
                if entry["status"] == "success":
                    future.set_result(entry["result"])
                else:
                    future.set_exception(entry["exception"])
