"""``farcall.Executor``: the standard ``concurrent.futures`` interface over farcall.

``submit`` registers each function once; submissions made while a batch is being
sent travel together in the next one (so a lone submission leaves at once and a burst
leaves in a few large requests). One thread sends them and asks the service to
follow them: their results are pushed down that thread's channel, and the thread
reads them whenever it has nothing to send (a new submission wakes it). Tasks the
service does not follow (no channel, more than it follows at a time, a connection
that dropped) are awaited by a second thread with long-polls.

It needs nothing from the Client beyond its public API: ``batch_run``, ``wait_any``,
``result_entry`` and the channel session (``client.session``: ``on_results``,
``listen``, ``following``).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor as _BaseExecutor
from concurrent.futures import Future
from itertools import islice
from typing import Any

from farcall.sdk.batch import canonical_id
from farcall.sdk.client import Client
from farcall.sdk.errors import ServiceUnreachable
from farcall.sdk.results import WAIT_WINDOW

log = logging.getLogger(__name__)

MAX_BATCH = 5_000
#: Seconds one read of pushes or one long-poll waits before looking again.
WAIT_S = 10.0
#: Seconds the service may stay unreachable before the futures it holds fail.
GIVE_UP_S = 120.0

_Work = tuple[Future[Any], str, tuple[Any, ...], dict[str, Any]]


class Executor(_BaseExecutor):
    def __init__(self, endpoint_id: Any, client: Client | None = None, *,
                 batch_size: int = MAX_BATCH) -> None:
        if client is None:
            client = Client()
        self.client = client
        self.endpoint_id = canonical_id(endpoint_id, "endpoint_id")
        self.batch_size = batch_size
        self._function_ids: dict[Callable[..., Any], str] = {}
        self._register_lock = threading.Lock()
        self._lock = threading.Condition()
        self._queued: list[_Work] = []
        self._followed: dict[str, Future[Any]] = {}  # results pushed to the sender's channel
        self._waited: dict[str, Future[Any]] = {}  # results the collector asks for
        self._early: dict[str, dict[str, Any]] = {}  # results in before their task's id
        self._shutdown = False
        # The sender waits for pushes on its channel's socket and this one: a byte
        # written here (under the lock, while it listens) ends the wait.
        self._wake_r, self._wake_w = socket.socketpair()
        self._listening = False
        self._sender = threading.Thread(target=self._send_loop, name="farcall-submit", daemon=True)
        self._collector = threading.Thread(target=self._collect_loop, name="farcall-collect",
                                           daemon=True)
        self._sender.start()
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

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._shutdown:
            raise RuntimeError("cannot submit to an Executor after shutdown")
        fid = self.function_id(fn)
        future: Future[Any] = Future()
        with self._lock:
            if self._shutdown:  # again: the sender may be gone, and nothing would send it
                raise RuntimeError("cannot submit to an Executor after shutdown")
            self._queued.append((future, fid, args, kwargs))
            self._wake()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                for future, *_ in self._queued:
                    future.cancel()
                self._queued.clear()
                for running in (self._followed, self._waited):
                    for future in running.values():
                        future.cancel()
                    running.clear()
            self._wake()
        if wait:
            self._sender.join()
            self._collector.join()

    # -- background work ----------------------------------------------------------------

    def _wake(self) -> None:
        """Wake the background threads (called holding the lock)."""
        self._lock.notify_all()
        if self._listening:
            self._listening = False
            self._wake_w.send(b"\0")

    def _sender_done(self) -> bool:
        return self._shutdown and not self._queued and not self._followed

    def _send_loop(self) -> None:
        self.client.session.on_results(self._heard)
        try:
            while True:
                with self._lock:
                    while not self._queued and not self._followed and not self._shutdown:
                        self._lock.wait()
                    if self._sender_done():
                        self._lock.notify_all()  # the collector may be done too
                        return
                    work = self._queued[: self.batch_size]
                    del self._queued[: self.batch_size]
                    self._listening = not work
                if work:
                    self._send(work)
                else:
                    self._listen()
        except BaseException as exc:  # a bug: fail what would otherwise wait forever
            log.exception("the Executor's sending thread failed")
            with self._lock:
                self._shutdown = True
                futures = [item[0] for item in self._queued] + list(self._followed.values())
                self._queued.clear()
                self._followed.clear()
                self._lock.notify_all()
            for future in futures:
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)
        finally:
            self.client.session.on_results(None)
            with self._lock:
                self._listening = False
                self._wake_r.close()
                self._wake_w.close()

    def _send(self, work: list[_Work]) -> None:
        work = [item for item in work if not item[0].cancelled()]
        if not work:
            return
        batch = self.client.create_batch()
        for _future, fid, args, kwargs in work:
            batch.add(*args, endpoint_id=self.endpoint_id, function_id=fid, **kwargs)
        try:
            task_ids = self.client.batch_run(batch)
        except BaseException as exc:  # the service refused: fail these futures
            for future, *_ in work:
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)
            return
        following = self._following()
        early, self._early = self._early, {}
        ended = []
        with self._lock:
            for (future, *_), tid in zip(work, task_ids, strict=True):
                future.task_id = tid  # type: ignore[attr-defined]
                if tid in following:
                    self._followed[tid] = future
                elif tid in early:  # in the answer, or pushed while a later part was sent
                    ended.append((future, early[tid]))
                else:
                    self._waited[tid] = future
            self._lock.notify_all()
        for future, document in ended:
            self._settle(future, self._entry(document))
        self._hand_over_unfollowed(following)

    def _listen(self) -> None:
        """Read pushed results until one comes, a submission wakes us, or WAIT_S."""
        self.client.session.listen(None, WAIT_S, self._wake_r)
        with self._lock:
            woken, self._listening = not self._listening, False
        if woken:
            self._wake_r.recv(64)
        self._hand_over_unfollowed(self._following())

    def _following(self) -> set[str]:
        return self.client.session.following()

    def _hand_over_unfollowed(self, following: set[str]) -> None:
        """Tasks the channel stopped following before their results came (its
        connection dropped): the collector asks for them."""
        with self._lock:
            if len(self._followed) > len(following):  # the channel follows only ours
                for tid in [tid for tid in self._followed if tid not in following]:
                    self._waited[tid] = self._followed.pop(tid)
                self._lock.notify_all()

    def _heard(self, documents: dict[str, dict[str, Any]]) -> None:
        """Results pushed to the sender's channel, or brought by a submission's answer."""
        ended = []
        with self._lock:
            for tid, document in documents.items():
                future = self._followed.pop(tid, None)
                if future is None:
                    self._early[tid] = document
                else:
                    ended.append((future, document))
            if not self._followed:
                self._lock.notify_all()
        for future, document in ended:
            self._settle(future, self._entry(document))

    def _entry(self, document: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.client.result_entry(document)
        except Exception as exc:  # a result this interpreter cannot rebuild
            return {"status": "failed", "exception": exc}

    @staticmethod
    def _settle(future: Future[Any] | None, entry: dict[str, Any]) -> None:
        """Complete ``future`` with a ``get_batch_result`` entry (unless cancelled)."""
        if future is not None and future.set_running_or_notify_cancel():
            if entry["status"] == "success":
                future.set_result(entry["result"])
            else:
                future.set_exception(entry["exception"])

    def _collect_loop(self) -> None:
        unreachable_since: float | None = None
        while True:
            with self._lock:
                while not self._waited and not self._sender_done():
                    self._lock.wait()
                if not self._waited and self._sender_done():
                    return
                waiting = list(islice(self._waited, WAIT_WINDOW))  # the oldest: see WAIT_WINDOW
            try:
                finished = self.client.wait_any(waiting, timeout=WAIT_S)
                unreachable_since = None
            except ServiceUnreachable as exc:
                # The tasks are the service's to keep: ride out a restart before giving up.
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since < GIVE_UP_S:
                    log.warning("%s; asking again", exc)
                    with self._lock:
                        self._lock.wait(min(5.0, 0.2 + (now - unreachable_since) / 4))
                    continue
                self._fail(waiting, exc)
                continue
            except BaseException as exc:
                self._fail(waiting, exc)
                continue
            with self._lock:
                ended = [(self._waited.pop(tid, None), entry) for tid, entry in finished.items()]
            for future, entry in ended:
                self._settle(future, entry)

    def _fail(self, task_ids: list[str], exc: BaseException) -> None:
        with self._lock:
            futures = [self._waited.pop(t) for t in task_ids if t in self._waited]
        for future in futures:
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)
