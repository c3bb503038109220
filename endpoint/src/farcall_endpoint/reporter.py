"""The reporting threads: finished outcomes to disk and to the service, until
acknowledged.

Two reporters, so that results finished while a report waits for its
acknowledgement (the service's commit) go out at once rather than after it; a
result is in at most one report at a time. The outcomes of a report are written to
the spool while the report is on its way. While the service is unreachable the
reporters keep spooling new outcomes as they finish and only the sending waits for
the backoff. Acknowledged outcomes are deleted from the spool with its next write,
or after ``SPOOL_TIDY_DELAY`` without one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from farcall.blob_refs import DEFAULT_THRESHOLD
from farcall.sdk.errors import FarcallAPIError

from farcall_endpoint.backoff import Backoff, short
from farcall_endpoint.blobs import could_upload
from farcall_endpoint.config import EndpointConfig
from farcall_endpoint.ledger import Ledger
from farcall_endpoint.links.interface import EndpointRefused, Link, ReportTooLarge
from farcall_endpoint.spool import ResultSpool
from farcall_endpoint.tasks import Outcome, failure

log = logging.getLogger(__name__)

#: Results per request and their approximate size: well under the service's body limit.
MAX_RESULTS_PER_REQUEST = 1000
MAX_REQUEST_CHARS = 4 * 1024 * 1024
#: Seconds acknowledged results may wait in the spool for its next write.
SPOOL_TIDY_DELAY = 1.0
#: Reports that may be on their way at once, each from a thread of its own.
REPORTERS = 2
#: A report on its way with this many results means results are plentiful: the next
#: ones batch up behind it (as with one reporter) rather than go in a small second one.
BUSY_REPORT = 16
#: Seconds to wait for a report's acknowledgement; less at shutdown, as what is unsent
#: stays on disk.
REPORT_TIMEOUT = 120.0
LAST_REPORT_TIMEOUT = 10.0


class Reporter:
    """Shared by the ``REPORTERS`` threads that each run :meth:`run`."""

    def __init__(self, link: Link, ledger: Ledger, spool: ResultSpool, config: EndpointConfig,
                 fail: Callable[[EndpointRefused], None]) -> None:
        self.link, self.ledger, self.spool, self.config = link, ledger, spool, config
        self.fail = fail
        #: Shared, as is ``ledger.retry_at``: one unreachable service, one backoff.
        self.backoff = Backoff(ledger.wait_stop, config.max_backoff)

    def run(self) -> None:
        """Each reporter sends what no other report is carrying."""
        ledger = self.ledger
        while True:
            with ledger.lock:
                self._wait_for_reporting()
                fresh, ledger.fresh = ledger.fresh, []
                ledger.fresh_ids.clear()
                for outcome in fresh:
                    ledger.unacked[outcome["task_id"]] = outcome
                stopping = ledger.stopping
                pending = [] if not stopping and time.monotonic() < ledger.retry_at else [
                    o for tid, o in ledger.unacked.items() if tid not in ledger.sending]
                ledger.sending.update(o["task_id"] for o in pending)
            if not pending:
                self.spool.put(fresh)  # backing off, or tidying: nothing to send now
                if stopping:
                    return
                continue
            spool = _Once(self.spool.put, fresh)
            try:
                self._send(pending, stopping, spool)
                with ledger.lock:
                    unanswered = any(o["task_id"] in ledger.unacked for o in pending)
                    if unanswered:  # neither acknowledged nor rejected: do not spin
                        ledger.retry_at = time.monotonic() + self.backoff.next_delay()
                    else:
                        self.backoff.reset()
                        ledger.retry_at = 0.0
            except EndpointRefused as exc:
                self.fail(exc)
                return
            except Exception as exc:
                if stopping:
                    log.warning("%d results stay on disk for the next start (%s)",
                                len(pending), short(exc))
                    return
                log.warning("sending %d results failed (%s); will retry", len(pending),
                            short(exc))
                with ledger.lock:
                    ledger.retry_at = time.monotonic() + self.backoff.next_delay()
                continue
            finally:
                self._release(pending)
                spool()  # if the report failed before it was on its way
            if stopping:
                with ledger.lock:
                    if not ledger.fresh:
                        return

    def _release(self, outcomes: list[Outcome]) -> None:
        """These outcomes are in no report on its way any more."""
        ledger = self.ledger
        with ledger.lock:
            ledger.sending.difference_update(o["task_id"] for o in outcomes)
            if outcomes:
                ledger.results.notify()  # another reporter may take these, or what waited

    def _wait_for_reporting(self) -> None:
        """Under the lock: until a batch is full or due, a retry is due, the spool is
        due a tidy-up, or stopping."""
        ledger, config = self.ledger, self.config
        tidy_at = time.monotonic() + SPOOL_TIDY_DELAY if self.spool.untidy else None
        while not ledger.stopping:
            now = time.monotonic()
            waits = []
            if ledger.fresh:
                due = ledger.fresh_since + config.result_flush_interval
                if len(ledger.fresh) >= config.result_batch:
                    return
                if len(ledger.sending) < BUSY_REPORT:  # else woken when that report is done
                    if now >= due:
                        return
                    waits.append(due - now)
            if any(tid not in ledger.sending for tid in ledger.unacked):
                if not ledger.fresh and now >= ledger.retry_at:
                    return
                if ledger.retry_at > now:
                    waits.append(ledger.retry_at - now)
            if tidy_at is not None:
                if now >= tidy_at:
                    return
                waits.append(tidy_at - now)
            ledger.results.wait(min(waits) if waits else None)

    def _send(self, outcomes: list[Outcome], stopping: bool, spool: Callable[[], None]) -> None:
        """Send in chunks, spooling while the first is on its way."""
        timeout = LAST_REPORT_TIMEOUT if stopping else REPORT_TIMEOUT
        outcomes = [self._offload(o) for o in outcomes]
        for chunk in _chunks(outcomes):
            self._send_chunk(chunk, timeout, spool)

    def _offload(self, outcome: Outcome) -> Outcome:
        """A large result uploaded to the service's blob store, the outcome changed in
        place to carry its reference (so the spool keeps the small form); a result the
        service refuses as too large becomes the task's failure."""
        upload = getattr(self.link, "upload_result", None)
        if upload is None or not could_upload(outcome):
            return outcome
        ask = getattr(self.link, "blob_threshold", None)
        threshold = self.config.blob_threshold or (ask() if ask else DEFAULT_THRESHOLD)
        if len(outcome["result"]) <= threshold:
            return outcome
        task_id = outcome["task_id"]
        try:
            outcome["result"] = upload(task_id, outcome["result"])
        except FarcallAPIError as exc:
            if exc.http_status == 413:
                replacement = failure(task_id, exc.message, outcome.get("details", {}).get(
                    "task_transitions", {}).get("received", time.time()))
            elif exc.http_status in (404, 409):
                return outcome  # no longer ours: the report is answered "rejected"
            else:
                raise
            with self.ledger.lock:
                self.ledger.unacked[task_id] = replacement
            self.spool.put([replacement])
            return replacement
        return outcome

    def _send_chunk(self, chunk: list[Outcome], timeout: float,
                    spool: Callable[[], None]) -> None:
        try:
            acknowledged, rejected = self.link.report(self.ledger.session, chunk, timeout, spool)
        except ReportTooLarge as exc:
            spool()  # the outcomes are on disk before one of them is replaced
            if len(chunk) > 1:
                half = len(chunk) // 2
                self._send_chunk(chunk[:half], timeout, spool)
                self._send_chunk(chunk[half:], timeout, spool)
                return
            outcome = chunk[0]
            replacement = failure(
                outcome["task_id"],
                "farcall endpoint: the result is larger than the service accepts in one "
                f"request ({exc}); lower max_result_size or return less data",
                outcome.get("details", {}).get("task_transitions", {}).get("received", time.time()))
            with self.ledger.lock:
                self.ledger.unacked[outcome["task_id"]] = replacement
            self.spool.put([replacement])
            self._send_chunk([replacement], timeout, spool)
            return
        if rejected:
            log.warning("the service does not know %d reported tasks; dropping them",
                        len(rejected))
        done = acknowledged + rejected
        self.spool.forget(done)
        with self.ledger.lock:
            for task_id in done:
                self.ledger.unacked.pop(task_id, None)


class _Once:
    """A call that succeeds at most once, however often it is asked for."""

    def __init__(self, call: Callable[..., Any], *args: Any) -> None:
        self._call: Callable[..., Any] | None = call
        self._args = args

    def __call__(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            try:
                call(*self._args)
            except BaseException:
                self._call = call  # asked again (the report loop's `finally`), it raises again
                raise


def _chunks(outcomes: list[Outcome]) -> list[list[Outcome]]:
    chunks: list[list[Outcome]] = []
    current: list[Outcome] = []
    size = 0
    for outcome in outcomes:
        weight = len(outcome.get("result") or "") + len(outcome.get("exception") or "") + len(
            outcome.get("exception_data") or "") + 300
        full = len(current) >= MAX_RESULTS_PER_REQUEST or size + weight > MAX_REQUEST_CHARS
        if current and full:
            chunks.append(current)
            current, size = [], 0
        current.append(outcome)
        size += weight
    if current:
        chunks.append(current)
    return chunks
