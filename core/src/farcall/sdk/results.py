"""The Client's results: task documents read, decoded, and waited for.

Terminal documents come from the result cache first (results pushed down the channel
land there), the rest from the service. A wait is a long-poll: the service answers
the moment one of the tasks ends, so nobody sleeps between checks.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from farcall.sdk.batch import canonical_id
from farcall.sdk.blobs import with_result
from farcall.sdk.errors import (
    FarcallAPIError,
    TaskCancelled,
    TaskExecutionFailed,
    TaskExpired,
    TaskPending,
    UntrustedResultError,
)
from farcall.sdk.progress import Progress
from farcall.sdk.session import TERMINAL

if TYPE_CHECKING:
    from farcall.plugins.types import ResultCache, Transport
    from farcall.sdk.session import ChannelSession
    from farcall.sdk.trust import EndpointTrust
    from farcall.serialize import Serializer

#: Tasks asked about in one status request.
STATUS_CHUNK = 2_000
#: Tasks named in one results long-poll. Results arrive roughly in submission order,
#: so waiting on the oldest unfinished tasks keeps every request small however many
#: tasks are outstanding (10,000 ids would be 380 kB per request).
WAIT_WINDOW = 1000
#: Seconds one long-poll of ``wait`` lasts at most.
WAIT_STEP = 10.0
#: The ``code`` of the service's answer for a task it no longer keeps.
EXPIRED = "TASK_EXPIRED"

Entry = dict[str, Any]


class ResultCalls:
    """Part of :class:`farcall.Client`: reading and waiting for results."""

    transport: Transport
    serializer: Serializer
    session: ChannelSession
    result_cache: ResultCache
    trust: EndpointTrust
    _long_poll: bool

    # -- documents and entries ------------------------------------------------------------

    def keep_result(self, task_id: str, document: dict[str, Any]) -> None:
        """Keep an ended task's document in the result cache (marked as from the
        caller's endpoint where that is known: see ``EndpointTrust.mark``)."""
        self.result_cache.put(task_id, self.trust.mark(document))

    def _documents(self, task_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Task documents, terminal ones from the result cache, the rest from the service."""
        self.session.collect()  # results pushed meanwhile
        documents: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for tid in task_ids:
            cached = self.result_cache.get(tid)
            if cached is not None:
                documents[tid] = cached
            else:
                missing.append(tid)
        for start in range(0, len(missing), STATUS_CHUNK):
            chunk = missing[start : start + STATUS_CHUNK]
            if len(chunk) == 1:
                answer = {chunk[0]: self._task_document(chunk[0])}
            else:
                answer = self.transport.request(
                    "POST", "/v2/batch_status", json={"task_ids": chunk}
                )["results"]
            for tid in chunk:
                document = answer.get(tid) or {"task_id": tid, "status": "unknown"}
                if document.get("status") in TERMINAL:
                    self.keep_result(tid, document)
                documents[tid] = document
        return documents

    def _task_document(self, task_id: str) -> dict[str, Any]:
        """One task's document; an expired task's reads as a batch status shows it."""
        try:
            # A large result comes as its blob reference, fetched streamed afterwards.
            document: dict[str, Any] = self.transport.request(
                "GET", f"/v2/tasks/{task_id}", params={"result": "reference"})
        except FarcallAPIError as exc:
            if exc.code != EXPIRED:
                raise
            return {"task_id": task_id, "status": "failed", "expired": True,
                    "exception": exc.message}
        return document

    def result_entry(self, document: dict[str, Any]) -> Entry:
        """The User Guide's per-task dict of a task document (as ``get_batch_result``
        gives it): ``pending``, ``status``, and ``result`` or ``exception`` once it
        has ended. Raises when a result cannot be deserialized here. A result the
        Client may not read (a code-capable strategy from an endpoint it does not
        trust) makes a failed entry whose ``exception`` is an
        :class:`~farcall.sdk.errors.UntrustedResultError`: one such task does not
        hide the others of a batch."""
        status = str(document.get("status", "unknown")).lower()
        if status not in TERMINAL:
            return {"pending": True, "status": status}
        if status == "cancelled" or document.get("cancelled") is True:
            return {"pending": False, "status": "cancelled",
                    "completion_t": document.get("completion_t"),
                    "exception": TaskCancelled(str(document.get("exception") or "cancelled"),
                                               document.get("completion_t"))}
        entry: Entry = {
            "pending": False,
            "status": status,
            "completion_t": document.get("completion_t"),
        }
        if status == "success":
            try:
                entry["result"] = self.trust.read_result(with_result(self.transport, document))
            except UntrustedResultError as exc:
                entry["status"] = "failed"
                entry["exception"] = exc
        else:
            entry["exception"] = self._exception(document)
        return entry

    def _exception(self, document: dict[str, Any]) -> BaseException:
        """The remote exception itself when it can (and may) be rebuilt, else
        TaskExecutionFailed with the remote traceback text; TaskExpired for a task
        the service no longer keeps."""
        text = str(document.get("exception") or document.get("reason") or "unknown failure")
        if document.get("expired"):
            return TaskExpired(str(document.get("task_id")), text)
        exc = self.trust.read_exception(document)
        if exc is not None:
            exc.remote_traceback = text  # type: ignore[attr-defined]
            if hasattr(exc, "add_note"):
                exc.add_note(f"Remote traceback:\n{text}")
            return exc
        return TaskExecutionFailed(text, document.get("completion_t"))

    # -- reading ----------------------------------------------------------------------------

    def get_task(self, task_id: Any) -> dict[str, Any]:
        """The status of one task, with its result or exception once it has ended."""
        tid = canonical_id(task_id, "task_id")
        document = self._documents([tid])[tid]
        return {"task_id": tid, **self.result_entry(document), "details": document.get("details")}

    def get_result(self, task_id: Any) -> Any:
        """The task's result; raises TaskPending while it runs, or the remote exception."""
        tid = canonical_id(task_id, "task_id")
        entry = self.result_entry(self._documents([tid])[tid])
        if entry["pending"]:
            raise TaskPending(entry["status"])
        if entry["status"] in ("failed", "cancelled"):
            raise entry["exception"]
        return entry["result"]

    def get_batch_result(self, task_id_list: Iterable[Any]) -> dict[str, Entry]:
        """Every requested task, keyed by id; failed tasks carry their ``exception``."""
        ids = [canonical_id(t, "task_id") for t in task_id_list]
        documents = self._documents(ids)
        return {tid: self.result_entry(documents[tid]) for tid in ids}

    # -- waiting ----------------------------------------------------------------------------

    def wait_any(self, task_ids: Iterable[Any], timeout: float = 10.0) -> dict[str, Entry]:
        """Entries of the given tasks that have ended, waiting up to ``timeout`` for one.

        The service answers the moment any of them ends (a long-poll), so callers do not
        sleep between checks; results it pushes to this thread's channel (tasks
        submitted here) are read as they come, without a request. Against a service
        without that route, polls with backoff.
        """
        ids = [canonical_id(t, "task_id") for t in task_ids]
        done = {tid: doc for tid in ids if (doc := self.result_cache.get(tid)) is not None}
        remaining = [tid for tid in ids if tid not in done]
        if remaining and not done and self.session.following().issuperset(remaining):
            deadline = time.monotonic() + timeout
            if self.session.listen(remaining, timeout):  # their results are pushed here
                done = {tid: doc for tid in remaining
                        if (doc := self.result_cache.get(tid)) is not None}
            timeout = max(0.0, deadline - time.monotonic())
        if remaining and not done:
            if self._long_poll:
                try:
                    answer = self.session.ask(
                        "wait", {"task_ids": remaining, "timeout": timeout}, timeout + 30
                    )
                except FarcallAPIError as exc:
                    if exc.http_status not in (404, 405):
                        raise
                    self._long_poll = False
                else:
                    for tid, document in answer["results"].items():
                        self.keep_result(tid, document)
                        done[tid] = document
            if not self._long_poll:
                done = self._poll_until_any(remaining, timeout)
        return {tid: self.result_entry(document) for tid, document in done.items()}

    def _poll_until_any(self, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        deadline, delay = time.monotonic() + timeout, 0.005
        while True:
            documents = self._documents(ids)
            done = {t: d for t, d in documents.items() if d.get("status") in TERMINAL}
            if done or time.monotonic() >= deadline:
                return done
            time.sleep(delay)
            delay = min(delay * 2, 0.25)

    def wait(
        self, task_ids: Iterable[Any], timeout: float | None = None, progress: bool = True
    ) -> dict[str, Entry]:
        """Wait until every task has ended and return their ``get_batch_result`` entries.

        Shows a progress line on a terminal (nothing otherwise): tasks done and
        failed, the rate and the time left (:mod:`farcall.sdk.progress`). Raises
        TimeoutError after ``timeout`` seconds.
        """
        ids = [canonical_id(t, "task_id") for t in task_ids]
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = Progress(len(ids)) if progress and sys.stderr.isatty() else None
        results: dict[str, Entry] = {}
        failed = 0
        try:
            while True:
                remaining = [tid for tid in ids if tid not in results]
                if bar is not None:
                    bar.update(len(results) - failed, failed)
                if not remaining:
                    return {tid: results[tid] for tid in ids}
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    from farcall.sdk.pending import pending_message

                    raise TimeoutError(pending_message(
                        remaining, len(ids), self._documents,
                        lambda eid: self.transport.request("GET",
                                                           f"/v2/endpoints/{eid}/status")))
                window = remaining[:WAIT_WINDOW]
                ended = self.wait_any(window, timeout=min(left or WAIT_STEP, WAIT_STEP))
                failed += sum(entry["status"] != "success" for entry in ended.values())
                results.update(ended)
        finally:
            if bar is not None:
                bar.close()
